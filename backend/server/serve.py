"""Running the backend: ``radfeat serve`` in the foreground, :class:`BackgroundServer` in a thread.

``radfeat serve [--port N] [--workspace DIR] [--no-browser]`` prints
``http://127.0.0.1:PORT/?token=TOKEN`` and opens it in a browser unless ``--no-browser``; the
desktop window runs the same app in-process through :class:`BackgroundServer`.
"""

from __future__ import annotations

import argparse
import errno
import logging
import signal
import sys
import threading
import webbrowser
from collections.abc import Sequence
from pathlib import Path

from radfeat import __version__
from radfeat.server import add_serve_args
from radfeat.server.app import ServerState, app_state, create_app
from radfeat.server.jobs import ExtractFn
from radfeat.server.security import LOOPBACK_HOST, TOKEN_QUERY, new_token
from werkzeug.serving import WSGIRequestHandler, make_server

REQUEST_TIMEOUT_S = 20.0


class _QuietHandler(WSGIRequestHandler):
    """No access log: the page polls twice a second and the page URL carries the token.

    ``timeout``: a client that sends nothing for that long (a half-sent request, an idle keep-alive
    connection, a deliberately slow client) is disconnected instead of holding a thread forever.
    """

    timeout = REQUEST_TIMEOUT_S

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def _loopback(host: str) -> str:
    if host in ("127.0.0.1", "localhost"):
        return LOOPBACK_HOST
    raise ValueError(f"radfeat serves on 127.0.0.1 only; refusing to listen on {host!r}")


class BackgroundServer:
    """The app on 127.0.0.1 (a free port unless given) served from a thread: tests and the desktop window.

    >>> with BackgroundServer("~/radfeat-workspace") as srv:   # doctest: +SKIP
    ...     print(srv.launch_url)
    """

    def __init__(
        self,
        workspace: str | Path = ".",
        *,
        port: int = 0,
        token: str | None = None,
        host: str = LOOPBACK_HOST,
        frontend: str | Path | None = None,
        extract_fn: ExtractFn | None = None,
        window_bridge: bool = False,
        request_timeout: float = REQUEST_TIMEOUT_S,
    ):
        host = _loopback(host)
        handler = type("_Handler", (_QuietHandler,), {"timeout": float(request_timeout)})
        self.token = token or new_token()
        self.app = create_app(workspace, self.token, frontend=frontend, extract_fn=extract_fn,
                              window_bridge=window_bridge)
        try:
            self._server = make_server(host, port, self.app, threaded=True, request_handler=handler)
        except SystemExit:  # werkzeug exits on "address in use"; callers get an OSError instead
            raise OSError(errno.EADDRINUSE, f"port {port} is in use by another program") from None
        self.host = host
        self.port = int(self._server.server_port)
        app_state(self.app).guard.port = self.port
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> ServerState:
        return app_state(self.app)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def launch_url(self) -> str:
        return f"{self.url}/?{TOKEN_QUERY}={self.token}"

    def start(self) -> BackgroundServer:
        # A short poll interval only makes stop() quick; requests are served as they come either way.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="radfeat-server", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel running jobs (they stay resumable), stop answering and close the socket."""
        self.state.jobs.shutdown(timeout)
        self.state.launch.close()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    host: str = LOOPBACK_HOST,
    port: int = 0,
    workspace: str | Path = ".",
    token: str | None = None,
    open_browser: bool = False,
) -> int:
    """Run the backend in the foreground until Ctrl+C; prints the URL (with its token) first."""
    srv = BackgroundServer(workspace, port=port, token=token, host=host)
    print(f"radfeat {__version__} backend for workspace {srv.state.policy.workspace}", flush=True)
    print(f"Open {srv.launch_url}", flush=True)
    print("Press Ctrl+C to stop.", flush=True)
    if open_browser:  # the browser's command line shows only a private file's path, never the token
        webbrowser.open(srv.state.launch.write_file(srv.url).as_uri())

    def _interrupt(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = None
    if threading.current_thread() is threading.main_thread():  # SIGTERM stops as cleanly as Ctrl+C
        previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        srv.serve_forever()  # werkzeug returns quietly on KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    finally:
        print("Stopping (running jobs are cancelled and can be resumed)...", flush=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        srv.state.jobs.shutdown()
        srv.state.launch.close()
        srv._server.server_close()
    return 0


def main(argv: Sequence[str] | argparse.Namespace | None = None) -> int:
    """``radfeat serve``: ``argv`` are the arguments after ``serve``, or the CLI's parsed namespace."""
    if isinstance(argv, argparse.Namespace):
        args = argv
    else:
        parser = argparse.ArgumentParser(
            prog="radfeat serve",
            description="Run the local backend (page + JSON-RPC) on 127.0.0.1 with a per-launch token.")
        add_serve_args(parser)
        args = parser.parse_args(list(argv) if argv is not None else None)
    port, workspace = int(args.port or 0), args.workspace or "."
    if not 0 <= port <= 65535:
        print("radfeat serve: --port must be between 0 and 65535", file=sys.stderr)
        return 2
    folder = Path(workspace).expanduser()
    if not folder.is_dir():
        print(f"radfeat serve: workspace folder not found: {workspace}", file=sys.stderr)
        return 2
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return serve(LOOPBACK_HOST, port, folder, open_browser=not args.no_browser)
    except OSError as exc:
        print(f"radfeat serve: cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}; "
              "choose another --port or leave it out for a free one", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
