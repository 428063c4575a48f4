"""Framework-free core of the Horovod training harness: config, data, loop, checkpoints."""
