"""`python -m hub.cli`: the `hub` command, as the console script runs it."""

from hub.cli.main import main

main()
