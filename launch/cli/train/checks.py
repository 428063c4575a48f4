"""What `harness train` checks before any rank starts and before anything is written: a mistake found
here is one line and an untouched run directory, not a started (perhaps multi-host) job that fails."""

from __future__ import annotations

from pathlib import Path

from harness.contract.config import RunConfig
from harness.contract.family import Family
from harness.storage.checkpoint import Checkpoint
from launch.cli.train.options import TrainOptions


def check_before_launch(options: TrainOptions, family: Family, config: RunConfig) -> Checkpoint | None:
    """The run directory, the prepared data, the global batch, the resume point and the --init-from
    source; returns the checkpoint the run resumes from (None: a fresh run), ``ValueError`` otherwise."""
    from harness.data.corpus import data_tokenizer
    from harness.data.order import batch_order
    from harness.data.prepared import PreparedData
    from harness.runner.resume import initial_state_from, resume_point
    from harness.storage.rundir import check_run_dir_free

    check_run_dir_free(options.run_dir)
    if config.data.prepared:  # every shard against its checksum, once, here rather than on each rank
        PreparedData(config.data.prepared, verify=True)
    train_split, _ = family.task(config.model).splits(config.data)
    bounds = options.elastic_bounds
    largest = max(bounds[1], options.num_ranks) if bounds else options.num_ranks
    batch_order(config.train, len(train_split), largest)  # refuses a split smaller than one global batch
    start = resume_point(options.run_dir, family, config, options.resume)
    if config.train.init_from and not options.resume:  # refuse a source that does not fit, before any rank starts
        fresh = family.init_state(config.model, 0)
        initial_state_from(Path(config.train.init_from), family, fresh, data_tokenizer(config.data))
    return start
