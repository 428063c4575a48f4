"""The ``harness`` command line."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import click

from harness.contract.distributed import check_hostname_resolves, is_lost_rank_error, launched_rank
from harness.contract.frameworks import FRAMEWORK_PACKAGES, check_framework, framework_module
from harness.runner.config import load_run_config
from harness.runner.generate import sample
from harness.storage.checkpoint import checkpoint_tokenizer, latest_checkpoint
from launch.build_horovod import installed_version
from launch.horovodrun import (
    CONTROLLERS,
    DEFAULT_HANG_TIMEOUT,
    GRACE_SECONDS,
    check_local_slots,
    run_horovodrun,
    train_argv,
)


def _tick(flag: bool | None) -> str:
    return "[X]" if flag else "[ ]"


def horovod_build_info() -> dict[str, dict]:
    """Per framework, what its Horovod extension was built with; one subprocess each, in parallel."""
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "launch.buildinfo", name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name in FRAMEWORK_PACKAGES
    }
    info = {}
    for name, proc in procs.items():
        out, err = proc.communicate()
        if proc.returncode != 0:  # the extension crashed on load: report its last words
            last = (err.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
            info[name] = {"available": False, "error": last}
        else:
            info[name] = json.loads(out.strip().splitlines()[-1])
    return info


class UsageLine(click.ClickException):
    """A usage mistake, said in one ``Error:`` line (click would add the usage text around it)."""

    exit_code = 2


class OneLineErrors(click.Group):
    """Every usage mistake, in the group's options or a command's, ends in one ``Error:`` line."""

    def make_context(self, *args, **kwargs) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as err:
            raise UsageLine(err.format_message()) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as err:
            raise UsageLine(err.format_message()) from None


def non_empty(ctx: click.Context, param: click.Parameter, value):
    """Refuse an empty string (alone or among a repeated option's values): it never means a default."""
    values = value if isinstance(value, tuple) else (value,)
    if any(v is not None and not str(v).strip() for v in values):
        raise click.BadParameter("must not be empty")
    return value


def finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number")
    return value


POSITIVE = click.IntRange(min=1)
HANG_TIMEOUT_RANGE = click.IntRange(1, 7 * 24 * 3600)  # a week: longer is a typo, not a timeout
NEW_TOKENS_RANGE = click.IntRange(0, 1_000_000)
SEED_RANGE = click.IntRange(0, 2**32 - 1)  # numpy's generators take non-negative seeds
OVERSUBSCRIBE_HELP = "Start more ranks than this machine has cores (without --hosts/--hostfile)."


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Train twin PyTorch and TensorFlow models with one Horovod data-parallel loop."""


@cli.command()
def doctor() -> None:
    """Report the installed stack and what Horovod was built with; fail if something is missing."""
    versions = {
        "python": platform.python_version(),
        "torch": installed_version("torch"),
        "tensorflow": installed_version("tensorflow", "tensorflow-cpu"),
        "horovod": installed_version("horovod"),
    }
    for name, version in versions.items():
        click.echo(f"{name:<12} {version or 'not installed'}")
    click.echo(f"{'cpus':<12} {os.cpu_count()}")
    missing = [name for name, version in versions.items() if version is None]
    if "horovod" in missing:
        raise click.ClickException("Horovod is not installed; run `make setup`")

    built = horovod_build_info()
    frameworks = {"TensorFlow": built["tf"]["available"], "PyTorch": built["torch"]["available"]}
    features = {f: any(info.get(f.lower()) for info in built.values()) for f in ("Gloo", "MPI", "NCCL", "CCL")}
    click.echo("frameworks   " + "  ".join(f"{_tick(ok)} {name}" for name, ok in frameworks.items()))
    click.echo(f"controllers  {_tick(features['Gloo'])} Gloo  {_tick(features['MPI'])} MPI")
    click.echo("tensor ops   " + "  ".join(f"{_tick(ok)} {name}" for name, ok in features.items()))
    if missing:
        raise click.ClickException(f"{' and '.join(missing)} not installed; run `make setup`")
    unbuilt = [name for name, ok in frameworks.items() if not ok]
    if unbuilt:
        reasons = "; ".join(info["error"] for info in built.values() if "error" in info)
        raise click.ClickException(
            f"Horovod's {' and '.join(unbuilt)} extension is unusable ({reasons}); run `make setup`"
        )
    if not (features["Gloo"] or features["MPI"]):
        raise click.ClickException("Horovod has no controller (neither Gloo nor MPI); rebuild with `make setup`")


@cli.command()
@click.option("--framework", type=click.Choice([*FRAMEWORK_PACKAGES, "all"]), default="all", show_default=True)
@click.option("--np", "num_ranks", type=POSITIVE, default=2, show_default=True, help="Number of ranks.")
@click.option("--hosts", default=None, callback=non_empty, help="Comma-separated NAME:SLOTS; default: this machine.")
@click.option("--oversubscribe", is_flag=True, help=OVERSUBSCRIBE_HELP)
def smoke(framework: str, num_ranks: int, hosts: str | None, oversubscribe: bool) -> None:
    """Run one allreduce per framework under horovodrun, to check the install end to end."""
    frameworks = list(FRAMEWORK_PACKAGES) if framework == "all" else [framework]
    for name in frameworks:
        try:
            program = [sys.executable, "-m", "launch.smoke", name]
            result = run_horovodrun(num_ranks, program, hosts=hosts, oversubscribe=oversubscribe)
        except ValueError as err:
            raise click.ClickException(str(err)) from None
        if result.returncode != 0:
            raise click.ClickException(f"{name} smoke run failed with exit code {result.returncode}")


FAMILY_HELP = "Model family: gpt (default), a name registered under harness.families, or MODULE:ATTR."


@cli.command()
@click.option("--framework", required=True, help="torch or tf.")
@click.option(
    "--np", "num_ranks", type=POSITIVE, default=1, show_default=True, help="Number of ranks (horovodrun -np)."
)
@click.option("--steps", type=POSITIVE, default=None, help="Training steps (overrides train.steps).")
@click.option("--family", default=None, callback=non_empty, help=FAMILY_HELP)
@click.option("--model", default="default", show_default=True, help="The family's model preset, e.g. tiny or default.")
@click.option(
    "--run-dir",
    required=True,
    callback=non_empty,
    type=click.Path(file_okay=False),
    help="Checkpoints and metrics go here.",
)
@click.option(
    "--config",
    "config_file",
    default=None,
    callback=non_empty,
    help="TOML file with [model], [train], [data], ... tables.",
)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override one key, e.g. train.lr=1e-3.")
@click.option("--hook", "hook_specs", multiple=True, metavar="MODULE:ATTR", help="Add a Hook factory's hook.")
@click.option("--hosts", default=None, callback=non_empty, help="Comma-separated NAME:SLOTS, e.g. h1:2,h2:2.")
@click.option("--hostfile", default=None, type=click.Path(exists=True, dir_okay=False), help="horovodrun hostfile.")
@click.option(
    "--network-interface",
    default=None,
    callback=non_empty,
    help="NIC(s) for Horovod's traffic, e.g. eth0; default: detected.",
)
@click.option("--oversubscribe", is_flag=True, help=OVERSUBSCRIBE_HELP)
@click.option(
    "--hang-timeout",
    type=HANG_TIMEOUT_RANGE,
    default=DEFAULT_HANG_TIMEOUT,
    show_default=True,
    help="Seconds a rank may stop responding before the whole job fails.",
)
@click.option("--elastic", is_flag=True, help="Keep training when ranks fail or join (needs --hosts/--hostfile).")
@click.option("--min-np", type=POSITIVE, default=None, help="Elastic: fewest ranks to go on with (default 1).")
@click.option("--max-np", type=POSITIVE, default=None, help="Elastic: most ranks (default: --np).")
@click.option(
    "--elastic-timeout",
    type=HANG_TIMEOUT_RANGE,
    default=None,
    help="Elastic: seconds to wait for hosts when fewer than --min-np ranks are left (default: --hang-timeout).",
)
@click.option(
    "--commit-every",
    type=POSITIVE,
    default=10,
    show_default=True,
    help="Elastic: steps between in-memory commits; a failure loses at most this many steps.",
)
@click.option(
    "--controller",
    type=click.Choice(CONTROLLERS),
    default="gloo",
    show_default=True,
    help="Horovod's controller: gloo, or mpi (Open MPI; faster on one machine, no elastic mode).",
)
@click.option("--resume", is_flag=True, help="Continue from the newest checkpoint in --run-dir.")
@click.option(
    "--init-from",
    default=None,
    callback=non_empty,
    type=click.Path(file_okay=False),
    help="Start from the tensors this model shares with another run's newest checkpoint (e.g. a pretrained encoder).",
)
@click.option("--progress/--no-progress", default=True, help="Rank 0's progress bar.")
@click.option("--tensorboard/--no-tensorboard", default=True, help="Rank 0's TensorBoard event files in RUN_DIR/tb.")
def train(
    framework,
    num_ranks,
    steps,
    family,
    model,
    run_dir,
    config_file,
    overrides,
    hook_specs,
    hosts,
    hostfile,
    network_interface,
    oversubscribe,
    hang_timeout,
    elastic,
    min_np,
    max_np,
    elastic_timeout,
    commit_every,
    controller,
    resume,
    init_from,
    progress,
    tensorboard,
):
    """Train a model family with one framework, under horovodrun when --np > 1.

    Started by a user's own horovodrun, it runs as one rank of that job.
    """
    from harness.data.corpus import data_tokenizer
    from harness.data.order import batch_order
    from harness.data.prepared import PreparedData
    from harness.loop.elastic import collect_waiting_survivors
    from harness.loop.preemption import StopRequest
    from harness.runner.resume import initial_state_from, resume_point
    from harness.runner.run import ElasticSettings
    from harness.storage.rundir import check_run_dir_free

    run_dir = os.path.abspath(run_dir)
    sets = [*overrides, *([f"train.steps={steps}"] if steps is not None else [])]
    sets += [f"train.init_from={os.path.abspath(init_from)}"] if init_from else []
    try:
        check_framework(framework)
        check_hostname_resolves()
        chosen, config = load_run_config(model, config_file, sets, family)
        if not (hosts or hostfile) and launched_rank() is None:
            check_local_slots(num_ranks, oversubscribe)
        settings = ElasticSettings(commit_every) if elastic else None
        hooks = [load_hook(spec) for spec in hook_specs]
        if launched_rank() is not None:  # one rank of a (possibly elastic) horovodrun job
            _train_here(framework, chosen, config, run_dir, resume, progress, settings, hooks, tensorboard)
            return
        bounds = (min_np or 1, max_np or num_ranks) if elastic else None
        # Check everything checkable here, before any rank starts and before anything is written.
        check_run_dir_free(run_dir)
        if config.data.prepared:  # every shard against its checksum, once, here rather than on each rank
            PreparedData(config.data.prepared, verify=True)
        train_split, _ = chosen.task(config.model).splits(config.data)
        largest = max(bounds[1], num_ranks) if bounds else num_ranks
        batch_order(config.train, len(train_split), largest)  # refuses a split smaller than one global batch
        start = resume_point(run_dir, chosen, config, resume)
        if config.train.init_from and not resume:  # refuse a source that does not fit, before any rank starts
            fresh = chosen.init_state(config.model, 0)
            initial_state_from(Path(config.train.init_from), chosen, fresh, data_tokenizer(config.data))
        if num_ranks == 1 and not hosts and not hostfile and not elastic:
            _train_here(framework, chosen, config, run_dir, resume, progress, None, hooks, tensorboard)
            return
        program = train_argv(
            framework, run_dir, model, num_ranks, sets, config_file, resume, progress,
            commit_every if elastic else 0, family=chosen.spec, hooks=hook_specs, tensorboard=tensorboard,
        )  # fmt: skip
        stop = StopRequest()  # SIGTERM/SIGINT while the ranks run: they checkpoint and stop
        collect_waiting_survivors(run_dir)  # marks a killed job may have left
        result = run_horovodrun(
            num_ranks,
            program,
            hosts=hosts,
            hostfile=hostfile,
            network_interface=network_interface,
            hang_timeout=hang_timeout,
            elastic=bounds,
            oversubscribe=oversubscribe,
            stop=stop,
            elastic_timeout=elastic_timeout or hang_timeout,
            controller=controller,
        )
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    survivors = collect_waiting_survivors(run_dir)
    # A stop is judged by what the ranks saved, not by horovodrun's exit code alone: once in the
    # suite (2026-11-24) horovodrun ended with 0 after its ranks had stopped on a SIGTERM and saved.
    if result.returncode != 0 or stop.requested:
        start_step = start.step if start else 0
        _explain_failure(run_dir, chosen, config, start_step, stop, result.returncode, survivors, min_np or 1)


def _explain_failure(run_dir, family, config, start_step, stop, returncode, survivors, min_ranks) -> None:
    """The one line (and exit code) for a job that horovodrun ended with ``returncode``, or that was
    asked to stop; ``survivors``: the ranks of an elastic job that were still waiting for it to
    re-form when it ended. Returns only for a job that finished before a stop took effect."""
    from harness.loop.preemption import exit_code, signal_name
    from harness.storage.rundir import wait_for_run_dir

    if stop.requested:  # ranks whose shells a scheduler killed may outlive horovodrun: let rank 0 finish
        wait_for_run_dir(run_dir, float(os.environ.get("HOROVOD_GRACEFUL_TERMINATION_TIME_S", GRACE_SECONDS)))
    try:
        latest = latest_checkpoint(run_dir, family, config.model)
    except ValueError:
        latest = None
    resume_from = f"--resume continues from {latest.path} (step {latest.step})" if latest else "no checkpoint to resume"
    if survivors:
        waited = time.time() - min(record["since"] for record in survivors)
        raise click.ClickException(
            f"elastic job ended: {len(survivors)} rank(s) left, fewer than --min-np {min_ranks}; waited {waited:.0f} s "
            f"for more hosts (--elastic-timeout); {resume_from}"
        )
    cause = signal_name(stop.signal) if stop.requested else "a stop signal sent to the ranks"
    if latest is not None and latest.step > start_step and latest.trainer.get("stopped"):
        # The ranks stopped on a signal (sent here, or to them directly) and rank 0 saved the step.
        click.echo(
            f"stopped by {cause} after step {latest.step}; checkpoint {latest.path}: --resume continues from it",
            err=True,
        )
        sys.exit(exit_code(stop.signal))
    if returncode == 0:
        return
    if stop.requested:
        click.echo(f"stopped by {cause} before a step completed; nothing new to resume", err=True)
        sys.exit(exit_code(stop.signal))
    raise click.ClickException(f"training failed: horovodrun exited with code {returncode}")


def load_hook(spec: str):
    """``MODULE:ATTR`` of a callable that returns a ``harness.Hook`` (a Hook subclass will do)."""
    from harness.contract.family import import_attr
    from harness.loop.hook import Hook

    factory = import_attr(spec, f"--hook {spec}")
    hook = factory() if callable(factory) else factory
    if not isinstance(hook, Hook):
        raise ValueError(f"--hook {spec} made a {type(hook).__name__}, expected a harness.Hook")
    return hook


def _train_here(framework, family, config, run_dir, resume, progress, elastic, hooks, tensorboard) -> None:
    from harness.loop.preemption import Preempted
    from harness.loop.trainer import NonFiniteError
    from harness.runner.run import run
    from harness.storage.rundir import DiskFullError

    try:
        summary = run(
            framework,
            family,
            config,
            run_dir,
            resume=resume,
            progress=progress,
            elastic=elastic,
            hooks=hooks,
            tensorboard=tensorboard,
        )
    except (NonFiniteError, DiskFullError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    except Preempted as err:
        if not launched_rank():
            click.echo(str(err), err=True)
        sys.exit(err.exit_code)
    except Exception as err:
        # Another rank died or stopped responding (hang timeout): say so in one line.
        if not is_lost_rank_error(err):
            raise
        raise click.ClickException(
            f"rank {launched_rank() or 0} lost the job: another rank exited or stopped "
            f"responding for {os.environ.get('HOROVOD_GLOO_TIMEOUT_SECONDS', '?')} s (--hang-timeout)"
        ) from None
    if summary is not None:  # rank 0
        _echo_summary(summary.__dict__)


def _echo_summary(summary: dict) -> None:
    click.echo(
        f"{summary['framework']} x{summary['world_size']}: {summary['steps']} steps, "
        f"final loss {summary['final_loss']:.4f}, "
        + "".join(f"{name} {value:.4f}, " for name, value in summary["final_val_metrics"].items())
        + f"{summary['tokens_per_second']:.0f} tokens/s, "
        f"peak RSS per rank {summary['peak_rss_mib_per_rank']} MiB, hosts {summary['hostname_per_rank']}"
    )
    click.echo(f"checkpoint: {summary['checkpoint']}")


@cli.command()
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

    try:
        check_framework(framework)
        if not prompt:
            raise ValueError("--prompt must not be empty")
        checkpoint = latest_checkpoint(Path(run_dir), load_family(family) if family else None)
        if not checkpoint.family.causal_lm:
            raise ValueError(f"model family {checkpoint.family.name!r} is not a causal LM: it cannot generate text")
        tokenizer = checkpoint_tokenizer(checkpoint)
        backend = framework_module(framework, "backend")
        predict = backend.make_predictor(checkpoint.family, checkpoint.model_config, checkpoint.model)
        block_size = checkpoint.model_config.block_size
        prompt_ids = tokenizer.encode(prompt)
        tokens = sample(predict, prompt_ids, max_new_tokens, block_size, temperature, top_k, seed=seed)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(tokenizer.decode(tokens))


@cli.command()
@click.option(
    "--run-dir", required=True, callback=non_empty, type=click.Path(file_okay=False), help="A training run's directory."
)
@click.option(
    "--format",
    "export_format",
    default="hf",
    show_default=True,
    callback=non_empty,
    help="One of the run's family's external formats (gpt: hf, a Hugging Face GPT-2 directory).",
)
@click.option("--out", required=True, callback=non_empty, type=click.Path(file_okay=False), help="Directory to create.")
def export(run_dir, export_format, out):
    """Export the newest checkpoint of --run-dir in an external format of its family."""
    from harness.contract.family import format_keys

    out = Path(out)
    try:
        if export_format not in format_keys():
            raise ValueError(f"--format {export_format!r} is no family's format; expected one of {format_keys()}")
        if out.exists():
            raise ValueError(f"--out {out} already exists; choose a new directory")
        checkpoint = latest_checkpoint(Path(run_dir))
        known = checkpoint.family.format(export_format)
        written = known.export(checkpoint.model, checkpoint.model_config, out, checkpoint_tokenizer(checkpoint).path)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(
        f"exported {checkpoint.path} (step {checkpoint.step}) as {known.description}: {', '.join(written)} -> {out}"
    )


DATA_OPTIONS = [
    click.option("--config", "config_file", default=None, callback=non_empty, help="TOML file; its [data] is read."),
    click.option(
        "--set", "overrides", multiple=True, metavar="KEY=VALUE", help='Override one key, e.g. data.paths=["corpus/"].'
    ),
]


def data_options(command):
    for option in reversed(DATA_OPTIONS):
        command = option(command)
    return command


@cli.group()
def tokenizer() -> None:
    """Train a byte-level BPE tokenizer for the configured data."""


@tokenizer.command("train")
@click.option("--vocab-size", type=click.IntRange(257, 2**20), required=True, help="Ids: 256 bytes, 1 special, merges.")
@click.option(
    "--out", required=True, callback=non_empty, type=click.Path(dir_okay=False), help="tokenizer.json to write."
)
@data_options
def tokenizer_train(vocab_size, out, config_file, overrides):
    """Train a byte-level BPE (Hugging Face tokenizers) over the configured data and write --out."""
    from harness.data.inputs import pieces
    from harness.data.tokenizer import train_bpe

    out = Path(out)
    try:
        if out.exists():
            raise ValueError(f"--out {out} already exists; choose another path (a tokenizer is never overwritten)")
        if not out.parent.resolve().is_dir():
            raise ValueError(f"--out {out}: its directory does not exist")
        _, config = load_run_config("default", config_file, list(overrides))
        started = time.perf_counter()
        texts = (piece.decode("utf-8", errors="replace") for piece, _ in pieces(config.data))
        trained = train_bpe(texts, vocab_size, out)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"tokenizer: {trained.vocab_size} ids, sha256 {trained.sha256[:12]}, "
               f"trained in {time.perf_counter() - started:.1f} s -> {out}")  # fmt: skip


@cli.command()
@click.option("--out", required=True, callback=non_empty, type=click.Path(file_okay=False), help="Directory to create.")
@click.option(
    "--shard-tokens",
    type=click.IntRange(1024, 2**31),
    default=1 << 28,
    show_default=True,
    help="Tokens per shard file.",
)
@data_options
def prepare(out, shard_tokens, config_file, overrides):
    """Tokenize the configured inputs once into token shards and an index, for data.prepared=OUT."""
    from tqdm import tqdm

    from harness.data.inputs import sources
    from harness.data.prepared import prepare as prepare_data

    try:
        _, config = load_run_config("default", config_file, list(overrides))
        if config.data.prepared:
            raise ValueError("data.prepared is set: prepare reads data.paths (and data.tokenizer), not prepared data")
        found = sources(config.data)
        known = all(source.kind == "text" for source in found)  # else the text's size is not known up front
        total = sum(source.path.stat().st_size for source in found) if known else None
        started = time.perf_counter()
        with tqdm(total=total, unit="B", unit_scale=True, desc="prepare", file=sys.stderr, delay=2) as bar:
            index = prepare_data(config.data, Path(out), shard_tokens, progress=lambda done: bar.update(done - bar.n))
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    seconds = time.perf_counter() - started
    megabytes = index["input_bytes"] / 1e6
    click.echo(
        f"prepared {index['total_tokens']} tokens ({index['dtype']}, {len(index['shards'])} shard(s)) from "
        f"{megabytes:.1f} MB of input in {seconds:.1f} s ({megabytes / seconds:.1f} MB/s); train "
        f"{index['train_tokens']} / validation {index['val_tokens']} tokens -> {out}"
    )


@cli.command()
@click.option("--steps", type=POSITIVE, required=True, help="Training steps for each framework.")
@click.option("--np", "num_ranks", type=POSITIVE, default=1, show_default=True, help="Ranks per run.")
@click.option("--family", default=None, callback=non_empty, help=FAMILY_HELP)
@click.option("--model", default="tiny", show_default=True, help="The family's model preset.")
@click.option("--out", required=True, callback=non_empty, type=click.Path(file_okay=False), help="Report directory.")
@click.option("--oversubscribe", is_flag=True, help=OVERSUBSCRIBE_HELP)
@click.option(
    "--tol",
    type=click.FloatRange(0, 1),
    callback=finite,
    default=None,
    help="Largest allowed relative loss gap [default: 1e-3 fp32, 1e-2 bf16/fp16].",
)
@click.option("--config", "config_file", default=None, callback=non_empty, help="TOML file, as for train.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override one key, as for train.")
def parity(steps, num_ranks, family, model, out, oversubscribe, tol, config_file, overrides):
    """Train the torch and the TF twin from the same weights on the same batches and compare them.

    Dropout is off and deterministic kernels are on in both. Writes OUT/parity.json and
    OUT/parity.png; exits 1 when the largest per-step relative loss difference exceeds --tol.
    """
    from harness.runner.parity import DEFAULT_TOLERANCES, compare_runs, plot_report

    try:
        chosen, config = load_run_config(model, config_file, list(overrides), family)
        check_local_slots(num_ranks, oversubscribe)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    tol = DEFAULT_TOLERANCES[config.train.precision] if tol is None else tol
    out = Path(out).resolve()
    runs = {name: out / name for name in FRAMEWORK_PACKAGES}
    if any(path.exists() for path in runs.values()):
        raise click.ClickException(f"{out} already holds a parity run; choose a new --out")
    sets = [f"checkpoint.every={max(1, steps // 2)}", "eval.every=0", *overrides]
    dropout = ["model.dropout=0.0"] if "dropout" in {f.name for f in dataclasses.fields(chosen.config_class)} else []
    sets += [*dropout, "train.deterministic=true", f"train.steps={steps}"]
    for name, run_dir in runs.items():
        # Each framework in its own process: never both Horovod bindings in one.
        cmd = train_argv(name, str(run_dir), model, num_ranks, sets, config_file, family=chosen.spec)
        cmd += ["--oversubscribe"] if oversubscribe else []
        click.echo(f"parity: training {name} ({num_ranks} rank(s), {steps} steps)")
        result = subprocess.run(cmd)
        if result.returncode != 0:
            raise click.ClickException(f"parity: the {name} run failed with exit code {result.returncode}")
    report = {"family": chosen.spec, "model": model, "np": num_ranks, "tol": tol}
    report.update(compare_runs(runs["torch"], runs["tf"]))
    (out / "parity.json").write_text(json.dumps(report, indent=2) + "\n")
    title = f"{chosen.name} {model} model, {num_ranks} rank(s): PyTorch vs TensorFlow"
    plot_report(report, out / "parity.png", title)
    click.echo(
        f"parity: max relative loss difference {report['max_rel_loss_diff']:.2e} over {steps} steps "
        f"(tolerance {tol:g}); largest final weight difference (relative norm) "
        f"{report['max_weight_rel_norm_diff']:.2e}; report {out / 'parity.json'}, plot {out / 'parity.png'}"
    )
    if report["max_rel_loss_diff"] > tol:
        raise click.ClickException(
            f"parity failed: max_rel_loss_diff {report['max_rel_loss_diff']:.3e} exceeds --tol {tol:g}"
        )


@cli.command()
@click.option("--quick", is_flag=True, help="Tiny model, few steps, 1 MB allreduce, no tuning: checks the plumbing.")
@click.option(
    "--out", required=True, callback=non_empty, type=click.Path(file_okay=False), help="Writes bench.json and bench.md."
)
@click.option("--family", default=None, callback=non_empty, help=FAMILY_HELP)
@click.option(
    "--model", default=None, callback=non_empty, help="The family's preset [default: default, or tiny with --quick]."
)
def bench(quick, out, family, model):
    """Measure step time, tokens/s, MFU, harness overhead, scaling and allreduce bandwidth in one run."""
    from harness.contract.family import load_family
    from launch.bench import FULL, QUICK, markdown_table, run_bench

    plan = QUICK if quick else FULL
    try:
        chosen = load_family(family or plan.family)
        plan = dataclasses.replace(plan, family=chosen.spec, model=model or plan.model)
        chosen.preset(plan.model)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    result = run_bench(plan, log=lambda text: click.echo(f"bench: {text}", err=True))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown_table(result)
    (out / "bench.md").write_text(table)
    click.echo(table)


def main() -> None:
    cli(prog_name="harness")


if __name__ == "__main__":
    main()
