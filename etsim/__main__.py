"""``python -m etsim``: the same as the ``etsim`` command."""

import sys

from etsim.experiments.cli import main

# Guarded: the dashboard's job processes (multiprocessing "forkserver") import the main
# module again, and must not run the command a second time.
if __name__ == "__main__":
    sys.exit(main())
