"""The `harness` command line and the horovodrun plumbing behind it."""
