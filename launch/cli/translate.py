"""`harness translate`: a sequence-to-sequence checkpoint's translations, in either framework."""

from __future__ import annotations

import click

from harness.contract.frameworks import check_framework, framework_module
from launch.cli.options import POSITIVE, finite, non_empty

BATCH = 32  # sources decoded at once


@click.command()
@click.option(
    "--run-dir", required=True, callback=non_empty, type=click.Path(file_okay=False), help="A training run's directory."
)
@click.option("--framework", required=True, help="torch or tf: either can decode any checkpoint.")
@click.option("--source", "sources", multiple=True, help="A text to translate (repeat for more).")
@click.option(
    "--input",
    "input_file",
    type=click.File("r", encoding="utf-8"),
    default=None,
    help="A file of sources, one a line ('-': standard input); translated after the --source texts.",
)
@click.option("--num-beams", type=click.IntRange(1, 64), default=4, show_default=True, help="1: greedy decoding.")
@click.option(
    "--length-penalty",
    type=float,
    callback=finite,
    default=0.6,
    show_default=True,
    help="Beam scores are divided by length ** this (above 0 favours longer outputs).",
)
@click.option("--max-new-tokens", type=POSITIVE, default=None, help="[default: the model's target positions]")
@click.option("--truncate", is_flag=True, help="Cut a source longer than the model's positions instead of refusing it.")
@click.option("--family", default=None, callback=non_empty, help="Override the family the checkpoint names (seq2seq).")
def translate(
    run_dir, framework, sources, input_file, num_beams, length_penalty, max_new_tokens, truncate, family
):  # fmt: skip
    """Translate each source with the newest checkpoint of --run-dir: one output line each, in order.

    Beam search is the harness's own, written once for both frameworks (harness.data.seq2seq), so a
    checkpoint gives the same translations in either up to ties of the two models' logits (~1e-7)."""
    from harness.contract.config import Decoding
    from harness.contract.family import load_family
    from harness.data.seq2seq import output_text
    from harness.data.tokenizer import seq2seq_ids
    from harness.runner.resume import newest_checkpoint, say_skipped
    from harness.storage.checkpoint import checkpoint_tokenizer

    try:
        check_framework(framework)
        texts = [(f"--source {text!r}", text) for text in sources]
        if input_file is not None:
            lines = enumerate(input_file, start=1)
            texts += [(f"--input {input_file.name} line {n}", line.rstrip("\r\n")) for n, line in lines]
        if not texts:
            raise ValueError("nothing to translate: give --source TEXT or --input FILE")
        empty = [where for where, text in texts if not text.strip()]
        if empty:
            raise ValueError(f"{empty[0]} is empty: every source needs text")
        texts = [text for _, text in texts]
        checkpoint = newest_checkpoint(run_dir, "--run-dir", load_family(family) if family else None)
        task = checkpoint.family.task(checkpoint.model_config)
        if not hasattr(task, "encode_sources"):
            name = checkpoint.family.name
            raise ValueError(f"model family {name!r} is not a sequence-to-sequence model: it cannot translate")
        say_skipped(checkpoint)
        tokenizer = checkpoint_tokenizer(checkpoint)
        _, end = seq2seq_ids(tokenizer)
        decoding = Decoding(num_beams, length_penalty, max_new_tokens or task.max_target_len)
        batches = [task.encode_sources(tokenizer, texts[i : i + BATCH], truncate) for i in range(0, len(texts), BATCH)]
        checkpoint.family.enter_environment()
        backend = framework_module(framework, "backend")
        predict = backend.make_predictor(checkpoint.family, checkpoint.model_config, checkpoint.model)
        outputs = [
            output_text(tokenizer, ids, end)
            for inputs in batches
            for ids in task.decode(predict, inputs, decoding, tokenizer)
        ]
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    for line in outputs:
        click.echo(line)
