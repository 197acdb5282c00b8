"""``python -m pgtenancy.generator``: the same arguments as ``pgtenancy generate``."""

import sys

from . import cli_main

sys.exit(cli_main(sys.argv[1:]))
