"""``python -m sim`` is the ``portsim`` command."""

import sys

from sim.cli import main

sys.exit(main())
