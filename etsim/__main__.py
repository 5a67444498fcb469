"""``python -m etsim``: the same as the ``etsim`` command."""

import sys

from etsim.experiments.cli import main

sys.exit(main())
