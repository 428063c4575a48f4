"""A run put together: its config, where it starts, the run itself, parity reports and sampling."""
