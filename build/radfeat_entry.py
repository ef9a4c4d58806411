"""Entry point of the frozen ``radfeat`` executable (PyInstaller bundle).

The same thing as the ``radfeat`` console script (``radfeat.cli:main``).  It is
a file of its own because PyInstaller needs a script, not an entry-point string.
"""

import multiprocessing
import os
import sys

if __name__ == "__main__":
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"  # also done by radfeat/__init__; here before any import at all
    multiprocessing.freeze_support()  # harmless unless a library starts worker processes
    from radfeat.cli import main

    sys.exit(main())
