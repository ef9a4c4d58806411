"""The local backend: JSON-RPC 2.0 over Flask on 127.0.0.1, locked to its own window.

* :mod:`radfeat.server.app` -- the app factory, :class:`BackgroundServer`, ``radfeat serve``.
* :mod:`radfeat.server.rpc` -- the JSON-RPC dispatcher, error codes and a small client.
* :mod:`radfeat.server.jobs` -- extraction jobs in background threads, progress and cancel.
* :mod:`radfeat.server.security` -- token, Host/Origin and path checks.

Importing this package is cheap: Flask is imported only with :mod:`radfeat.server.app`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BackgroundServer", "create_app", "main", "serve"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from radfeat.server import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
