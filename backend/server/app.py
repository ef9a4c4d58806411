"""The local backend's Flask app: the page and a JSON-RPC endpoint on 127.0.0.1.

Routes:

* ``POST /rpc`` -- JSON-RPC 2.0 (the dispatcher is :mod:`radfeat.server.rpc`, the methods
  :mod:`radfeat.server.api`; README, "JSON-RPC methods", lists them); header ``X-Radfeat-Token`` required.
* ``GET /?token=TOKEN`` -- the page (``radfeat.web``/``frontend/index.html``) with the
  token injected as ``<meta name="radfeat-token" content="...">`` (or in place of
  a ``{{RADFEAT_TOKEN}}`` placeholder).  Without the right token: 403.
* ``GET /<asset>`` -- the page's static scripts, styles and images (no data, no token).

:mod:`radfeat.server.serve` runs the app (``radfeat serve``, :class:`~radfeat.server.serve.BackgroundServer`
for the desktop window and tests); :mod:`radfeat.server.security` holds the checks and
:mod:`radfeat.server.jobs` the jobs (and why progress is polled).
"""

from __future__ import annotations

import html
import importlib.resources
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, request, send_from_directory
from radfeat.server.api import METHODS, Api
from radfeat.server.jobs import ExtractFn, JobManager
from radfeat.server.launch import LAUNCH_QUERY, LaunchCodes
from radfeat.server.methods import install as install_methods
from radfeat.server.rpc import CANNOT_READ, NOT_FOUND, Dispatcher, RpcError
from radfeat.server.security import TOKEN_HEADER, TOKEN_QUERY, Guard, PathPolicy, new_token
from werkzeug.exceptions import HTTPException

log = logging.getLogger("radfeat.server")

TOKEN_PLACEHOLDER = "{{RADFEAT_TOKEN}}"
STATIC_SUFFIXES = {".js", ".mjs", ".css", ".svg", ".png", ".ico", ".woff", ".woff2", ".ttf", ".map", ".json",
                   ".webp", ".gif"}
MAX_BODY = 4 * 1024 * 1024

# Keep the page from talking to anything but this service (patient data never leaves the machine).
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
       "script-src 'self' 'unsafe-inline'; connect-src 'self'; font-src 'self' data:; object-src 'none'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")

# The desktop window's bridge (pywebview) returns every js_api value to the page through ``eval``;
# only the window's own private server allows it (``radfeat serve`` keeps the strict policy).
CSP_WINDOW = CSP.replace("script-src 'self' 'unsafe-inline'", "script-src 'self' 'unsafe-inline' 'unsafe-eval'")

FALLBACK_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>radfeat</title></head>
<body><h1>radfeat backend is running</h1>
<p>The page (radfeat.web) is not installed; the JSON-RPC endpoint is POST /rpc.</p></body></html>
"""


def _map_error(exc: BaseException) -> RpcError | None:
    """Built-in file errors become JSON-RPC errors with a readable message (radfeat's own errors carry theirs)."""
    if isinstance(exc, FileNotFoundError):
        return RpcError(NOT_FOUND, f"Not found: {exc.filename or exc}")
    if isinstance(exc, PermissionError):
        return RpcError(CANNOT_READ, f"Permission denied: {exc.filename or exc}")
    return None


def find_frontend() -> Path | None:
    """The page's folder: the installed ``radfeat.web`` package, else the repository's ``frontend/``."""
    try:
        index = importlib.resources.files("radfeat.web").joinpath("index.html")
        if isinstance(index, Path) and index.is_file():
            return index.parent
    except (ModuleNotFoundError, TypeError, ValueError, OSError):
        pass
    repo = Path(__file__).resolve().parents[2] / "frontend"
    return repo if repo.is_dir() else None


def inject_token(page: str, token: str) -> str:
    """Put the token into the page: replace ``{{RADFEAT_TOKEN}}`` or add a meta tag at the top of ``<head>``."""
    safe = html.escape(token, quote=True)
    if TOKEN_PLACEHOLDER in page:
        return page.replace(TOKEN_PLACEHOLDER, safe)
    tag = f'<meta name="radfeat-token" content="{safe}">'
    match = re.search(r"<head(\s[^>]*)?>", page, re.IGNORECASE)
    if match:
        return page[: match.end()] + tag + page[match.end():]
    return tag + page


@dataclass
class ServerState:
    guard: Guard
    policy: PathPolicy
    jobs: JobManager
    api: Api
    dispatcher: Dispatcher
    frontend: Path | None
    launch: LaunchCodes


def create_app(
    workspace: str | Path = ".",
    token: str | None = None,
    *,
    port: int | None = None,
    frontend: str | Path | None = None,
    extract_fn: ExtractFn | None = None,
    window_bridge: bool = False,
) -> Flask:
    """Build the Flask app.  ``port`` (set later by :class:`BackgroundServer`) fixes the allowed Host/Origin.

    ``extract_fn`` replaces :func:`radfeat.pipeline.run.extract` (embedding, tests); it gets the same arguments.
    ``window_bridge`` relaxes the page's script policy for the desktop window's bridge (see ``CSP_WINDOW``).
    """
    app = Flask("radfeat.server", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    policy = PathPolicy(workspace)
    jobs = JobManager(extract_fn)
    api = Api(policy, jobs)
    dispatcher = Dispatcher(error_mapper=_map_error)
    dispatcher.register_object(api, METHODS)
    from radfeat.server.page_settings import PageSettings

    page_settings = PageSettings(policy.workspace)  # the page's settings, per workspace (not per port)
    dispatcher.register_object(page_settings, PageSettings.NAMES)
    state = ServerState(
        guard=Guard(token or new_token(), port),
        policy=policy,
        jobs=jobs,
        api=api,
        dispatcher=dispatcher,
        frontend=Path(frontend) if frontend is not None else find_frontend(),
        launch=LaunchCodes(),
    )
    app.extensions["radfeat"] = state
    install_methods(app, state)  # radfeat.server.methods: the method groups outside api.py, the 403 page

    _install_checks(app, state, CSP_WINDOW if window_bridge else CSP)
    _install_routes(app, state)
    return app


def _install_checks(app: Flask, state: ServerState, csp: str) -> None:
    """Token, Host and Origin before every request; security headers after it."""

    def forbidden(reason: str) -> Response:
        if request.path == "/rpc":
            body = json.dumps({"error": "forbidden", "message": reason})
            return Response(body, status=403, mimetype="application/json")
        return Response(reason + "\n", status=403, mimetype="text/plain")

    @app.before_request
    def _guard() -> Response | None:
        path = request.path
        if path in ("/", "/index.html") and LAUNCH_QUERY in request.args:
            return _launch()
        if path == "/rpc":
            need, token_value = True, request.headers.get(TOKEN_HEADER)
        elif path in ("/", "/index.html"):
            need, token_value = True, request.args.get(TOKEN_QUERY)
        else:
            need, token_value = False, None
        reason = state.guard.refusal(host=request.headers.get("Host"), origin=request.headers.get("Origin"),
                                     token=token_value, need_token=need)
        if reason:
            log.warning("Refused %s %s: %s", request.method, path, reason)
            return forbidden(reason)
        return None

    def _launch() -> Response:
        """``/?launch=CODE`` (from the private launch page): one redirect to the tokened address, once."""
        reason = state.guard.refusal(host=request.headers.get("Host"), origin=request.headers.get("Origin"),
                                     token=None, need_token=False)
        if reason:
            return forbidden(reason)
        if not state.launch.consume(request.args.get(LAUNCH_QUERY)):
            return forbidden("Forbidden: this launch link was already used or has expired; open the address "
                             "printed when radfeat started")
        resp = Response(status=303)
        resp.headers["Location"] = f"/?{TOKEN_QUERY}={state.guard.token}"
        return resp

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Cross-Origin-Resource-Policy"] = "same-origin"
        resp.headers["Content-Security-Policy"] = csp
        if request.path in ("/", "/index.html", "/rpc"):
            resp.headers["Cache-Control"] = "no-store"
        return resp


def _install_routes(app: Flask, state: ServerState) -> None:
    """``POST /rpc``, the page with its token, and the page's static files."""

    @app.post("/rpc")
    def rpc() -> Response:
        try:
            answer = state.dispatcher.handle_text(request.get_data(cache=False))
        except HTTPException:
            raise
        except Exception:  # never an HTML error page for a JSON-RPC client
            log.exception("RPC request failed")
            answer = {"jsonrpc": "2.0", "id": None,
                      "error": {"code": -32603, "message": "Internal error; the details are in the server log"}}
        if answer is None:  # notifications only
            return Response(status=204)
        return Response(json.dumps(answer, allow_nan=False), mimetype="application/json")

    @app.get("/")
    @app.get("/index.html")
    def index() -> Response:
        page = FALLBACK_PAGE
        if state.frontend is not None and (state.frontend / "index.html").is_file():
            page = (state.frontend / "index.html").read_text(encoding="utf-8")
        return Response(inject_token(page, state.guard.token), mimetype="text/html")

    @app.get("/<path:name>")
    def asset(name: str) -> Response:
        if state.frontend is None or Path(name).suffix.lower() not in STATIC_SUFFIXES:
            abort(404)
        return send_from_directory(state.frontend, name, max_age=0)


def app_state(app: Flask) -> ServerState:
    return app.extensions["radfeat"]


def __getattr__(name: str) -> Any:
    """``BackgroundServer``, ``serve`` and ``main`` moved to :mod:`radfeat.server.serve`; old imports keep working."""
    if name in ("BackgroundServer", "serve", "main"):
        from radfeat.server import serve

        return getattr(serve, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
