"""What a run leaves on disk: atomic checkpoints and the run directory's lock."""
