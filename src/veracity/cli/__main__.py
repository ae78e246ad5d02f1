"""``python -m veracity.cli``: the same entry point as the ``veracity`` script."""

from veracity.cli import main

main()
