"""`harness generate`: text from a causal-LM checkpoint, in either framework."""

from __future__ import annotations

import click

from harness.contract.frameworks import check_framework, framework_module
from harness.runner.generate import sample
from harness.storage.checkpoint import checkpoint_tokenizer
from launch.cli.options import NEW_TOKENS_RANGE, POSITIVE, SEED_RANGE, finite, non_empty


@click.command()
@click.option(
    "--run-dir", required=True, callback=non_empty, type=click.Path(file_okay=False), help="A training run's directory."
)
@click.option("--framework", required=True, help="torch or tf: either can sample from any checkpoint.")
@click.option("--prompt", required=True, help="Text to continue.")
@click.option("--max-new-tokens", type=NEW_TOKENS_RANGE, default=200, show_default=True)
@click.option(
    "--temperature",
    type=click.FloatRange(0, 100),
    callback=finite,
    default=0.8,
    show_default=True,
    help="0 samples greedily.",
)
@click.option("--top-k", type=POSITIVE, default=None, help="Sample only among the k most likely tokens.")
@click.option("--seed", type=SEED_RANGE, default=0, show_default=True)
@click.option(
    "--family", default=None, callback=non_empty, help="Override the family the checkpoint names (a causal LM)."
)
def generate(run_dir, framework, prompt, max_new_tokens, temperature, top_k, seed, family):
    """Continue --prompt with the newest checkpoint of --run-dir (a causal-LM family's)."""
    from harness.contract.family import load_family
    from harness.runner.resume import newest_checkpoint, say_skipped

    try:
        check_framework(framework)
        if not prompt:
            raise ValueError("--prompt must not be empty")
        checkpoint = newest_checkpoint(run_dir, "--run-dir", load_family(family) if family else None)
        if not checkpoint.family.causal_lm:
            raise ValueError(f"model family {checkpoint.family.name!r} is not a causal LM: it cannot generate text")
        say_skipped(checkpoint)
        tokenizer = checkpoint_tokenizer(checkpoint)
        checkpoint.family.enter_environment()
        backend = framework_module(framework, "backend")
        predictor = backend.make_predictor(checkpoint.family, checkpoint.model_config, checkpoint.model)
        task = checkpoint.family.task(checkpoint.model_config)  # its model_inputs name the token ids
        predict = lambda tokens: predictor(task.model_inputs(tokens))  # noqa: E731
        block_size = checkpoint.model_config.block_size
        prompt_ids = tokenizer.encode(prompt)
        tokens = sample(predict, prompt_ids, max_new_tokens, block_size, temperature, top_k, seed=seed)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(tokenizer.decode(tokens))
