"""The training loop: the trainer, the hook interface and the loop's own hooks."""
