"""``python -m launch.cli``: the command line without the installed script, as train_argv starts each rank."""

from launch.cli import main

main()
