"""``python -m qtrigger``: the command line."""

import sys

from qtrigger.cli import main

sys.exit(main())
