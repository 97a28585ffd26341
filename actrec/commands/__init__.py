"""What each `actrec` subcommand does, one module per command; `actrec/cli.py` parses the command line.

torch, pandas and matplotlib load inside the commands: `--help` or a missing input answers at once.
"""
