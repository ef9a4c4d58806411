"""``python -m radfeat.cli``, the same as ``radfeat``."""

import sys

from radfeat.cli import main

sys.exit(main())
