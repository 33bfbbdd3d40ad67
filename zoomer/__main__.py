"""`python -m zoomer` is the `zoomer` command."""
from .cli import main

main()
