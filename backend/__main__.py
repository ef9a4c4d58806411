"""``python -m radfeat``."""

import sys

from radfeat.cli import main

sys.exit(main())
