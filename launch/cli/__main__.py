"""``python -m launch.cli``: how horovodrun starts each rank of `harness train`."""

from launch.cli import main

main()
