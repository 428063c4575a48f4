"""Reference programs that `harness bench` measures the harness against."""
