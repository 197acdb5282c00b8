"""``python -m pgtenancy.testing create [--seeded] | drop URL``."""

import sys

from .template import main

sys.exit(main(sys.argv[1:]))
