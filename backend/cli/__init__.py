"""``radfeat`` command line: extract, fit, models, demo, serve, gui.

The parser (:mod:`radfeat.cli.parser`) is built from light modules only: the options' names and words,
the extraction types' declarations, no model runtime.  The code of a command — and with it ONNX Runtime,
pandas, pydicom, Flask … — is imported through :data:`COMMANDS` only when that command runs, so
``radfeat --version`` and ``radfeat --help`` answer at once.
"""

from __future__ import annotations

import argparse
import logging
import pkgutil
import sys
from collections.abc import Callable

from radfeat.cli.parser import build_parser
from radfeat.errors import RadfeatError

__all__ = ["COMMANDS", "build_parser", "main"]

# command → the "module:function" that runs it, given the parsed arguments; the one place commands are imported
COMMANDS: dict[str, str] = {
    "extract": "radfeat.cli.extract:run",
    "fit": "radfeat.fit.cli:cmd_fit",
    "models": "radfeat.cli.models:run",
    "demo": "radfeat.cli.demo:run",
    "serve": "radfeat.server.serve:main",
    "gui": "radfeat.desktop.window:main",
}


def command(name: str) -> Callable[[argparse.Namespace], int | None]:
    """The function that runs command ``name`` (its module imported now)."""
    return pkgutil.resolve_name(COMMANDS[name])  # type: ignore[no-any-return]


def fail(msg: str, code: int = 1) -> int:
    print(f"radfeat: error: {msg}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    try:
        return int(command(args.cmd)(args) or 0)
    except RadfeatError as exc:  # a refusal or failure with a readable message: never a traceback
        return fail(str(exc), exc.exit_status)
