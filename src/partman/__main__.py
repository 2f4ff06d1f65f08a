"""`python -m partman`: the same as the `partman` command."""

from .cli import main

main()
