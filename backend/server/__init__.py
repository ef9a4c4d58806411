"""The local backend: JSON-RPC 2.0 over Flask on 127.0.0.1, locked to its own window.

* :mod:`radfeat.server.app` -- the Flask app factory (routes, headers, the page).
* :mod:`radfeat.server.api` -- the JSON-RPC method bodies.
* :mod:`radfeat.server.serve` -- :class:`BackgroundServer` and ``radfeat serve``.
* :mod:`radfeat.server.rpc` -- the JSON-RPC dispatcher and a small client.
* :mod:`radfeat.server.jobs` -- extraction jobs in background threads, progress and cancel.
* :mod:`radfeat.server.security` -- token, Host/Origin and path checks.

Importing this package is cheap: Flask is imported only with :mod:`radfeat.server.app`.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["BackgroundServer", "create_app"]


def add_serve_args(parser: argparse.ArgumentParser) -> None:
    """The flags of ``radfeat serve``: the one definition, used by the CLI and by ``serve.main``."""
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--workspace", default=".", help="workspace folder; tables go to DATA/extracted_features")
    parser.add_argument("--no-browser", action="store_true", help="do not open the page in a browser")


def __getattr__(name: str) -> Any:
    if name in __all__:
        from radfeat.server import app, serve

        return getattr(app if name == "create_app" else serve, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
