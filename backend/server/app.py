"""The local backend: one Flask app on 127.0.0.1 serving the page and a JSON-RPC endpoint.

``radfeat serve [--port N] [--workspace DIR] [--open]`` prints
``http://127.0.0.1:PORT/?token=TOKEN``; open it in a browser (the desktop window
does the same in-process through :class:`BackgroundServer`).  Routes:

* ``POST /rpc`` -- JSON-RPC 2.0 (see :mod:`radfeat.server.rpc` and ``docs/rpc.md``);
  header ``X-Radfeat-Token`` required.
* ``GET /?token=TOKEN`` -- the page (``radfeat.web``/``frontend/index.html``) with the
  token injected as ``<meta name="radfeat-token" content="...">`` (or in place of
  a ``{{RADFEAT_TOKEN}}`` placeholder).  Without the right token: 403.
* ``GET /<asset>`` -- the page's static scripts, styles and images (no data, no token).

See :mod:`radfeat.server.security` for the checks and :mod:`radfeat.server.jobs`
for jobs and why progress is polled.
"""

from __future__ import annotations

import argparse
import base64
import errno
import html
import importlib.resources
import io
import json
import logging
import re
import signal
import sys
import threading
import webbrowser
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, request, send_from_directory
from radfeat import __version__
from radfeat.options import (
    FORMATS,
    ExtractOptions,
    OptionsError,
    Problem,
    validate,
    validate_filename,
    weights_label,
)
from radfeat.server.jobs import LOG_SHOWN, ExtractFn, JobBusy, JobManager, JobNotFound
from radfeat.server.methods import install as install_methods
from radfeat.server.rpc import (
    ACCESS_DENIED,
    BUSY,
    CANNOT_READ,
    INVALID_OPTIONS,
    INVALID_PARAMS,
    NOT_FOUND,
    Dispatcher,
    RpcError,
)
from radfeat.server.security import (
    LOOPBACK_HOST,
    TOKEN_HEADER,
    TOKEN_QUERY,
    Guard,
    PathDenied,
    PathPolicy,
    new_token,
)
from werkzeug.serving import WSGIRequestHandler, make_server

log = logging.getLogger("radfeat.server")

TOKEN_PLACEHOLDER = "{{RADFEAT_TOKEN}}"
STATIC_SUFFIXES = {".js", ".mjs", ".css", ".svg", ".png", ".ico", ".woff", ".woff2", ".ttf", ".map", ".json",
                   ".webp", ".gif"}
TABLE_SUFFIXES = {".csv", ".parquet", ".arff"}
SIDECAR_SUFFIXES = (".errors.csv", ".unmatched.csv", ".partial.csv")
MAX_BODY = 4 * 1024 * 1024
MAX_TABLE_PAGE = 1000
MAX_DEPTH = 32

# Keep the page from talking to anything but this service (patient data never leaves the machine).
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
       "script-src 'self' 'unsafe-inline'; connect-src 'self'; font-src 'self' data:; object-src 'none'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")

# The desktop window's bridge (pywebview) returns every js_api value to the page through ``eval``;
# only the window's own private server allows it (``radfeat serve`` keeps the strict policy).
CSP_WINDOW = CSP.replace("script-src 'self' 'unsafe-inline'", "script-src 'self' 'unsafe-inline' 'unsafe-eval'")

METHODS = ["list_folders", "list_weights", "validate_options", "inspect_dates", "start_extraction", "job_status",
           "cancel_job", "list_jobs", "read_table", "list_files", "thumbnail", "version"]

FALLBACK_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>radfeat</title></head>
<body><h1>radfeat backend is running</h1>
<p>The page (radfeat.web) is not installed; the JSON-RPC endpoint is POST /rpc.</p></body></html>
"""


# ---------------------------------------------------------------------------
def _problem_dicts(problems: Sequence[Problem]) -> list[dict[str, str]]:
    return [{"field": p.field, "message": p.message} for p in problems]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _map_error(exc: BaseException) -> RpcError | None:
    """Known failures become JSON-RPC errors with a readable message; the rest are internal errors."""
    if isinstance(exc, PathDenied):
        return RpcError(ACCESS_DENIED, str(exc), {"path": exc.path})
    if isinstance(exc, JobNotFound):
        return RpcError(NOT_FOUND, str(exc), {"job_id": exc.job_id})
    if isinstance(exc, JobBusy):
        return RpcError(BUSY, str(exc), {"job_id": exc.job.id})
    if isinstance(exc, OptionsError):
        return RpcError(INVALID_OPTIONS, f"Invalid options: {exc}", {"problems": _problem_dicts(exc.problems)})
    if isinstance(exc, FileNotFoundError):
        return RpcError(NOT_FOUND, f"Not found: {exc.filename or exc}")
    if isinstance(exc, PermissionError):
        return RpcError(CANNOT_READ, f"Permission denied: {exc.filename or exc}")
    return None


def _provenance_context(path: str) -> dict[str, Any]:
    """What the page needs to label a table it did not produce: its weights, input folder and depth."""
    try:
        prov = json.loads(Path(path).read_text(encoding="utf-8"))
        opts = prov.get("options") or {}
        return {"weights": (prov.get("weights") or {}).get("name"), "input": opts.get("input"),
                "depth": opts.get("depth")}
    except (OSError, ValueError, AttributeError):
        return {"weights": None, "input": None, "depth": None}


class Api:
    """The JSON-RPC methods.  Parameters are typed; see ``docs/rpc.md`` for the table."""

    def __init__(self, policy: PathPolicy, jobs: JobManager):
        self.policy = policy
        self.jobs = jobs

    # -- options -------------------------------------------------------------
    def _prepare(self, raw: dict[str, Any]) -> tuple[ExtractOptions | None, list[Problem]]:
        """Options from the page -> checked :class:`ExtractOptions` and every problem (CLI words + paths)."""
        raw = dict(raw)
        problems: list[Problem] = []
        ws = self.policy.workspace
        if raw.get("workspace") not in (None, ""):
            given = raw["workspace"]
            if not isinstance(given, str) or self.policy.resolve(given) != ws:
                problems.append(Problem("workspace", f"The workspace is fixed when radfeat starts ({ws}); "
                                                     "it cannot be changed from here"))
        raw["workspace"] = str(ws)
        if raw.get("master_table") is not None and not isinstance(raw["master_table"], dict):
            return None, [*problems, Problem("master_table", "Master table options must be an object")]
        try:
            opts = ExtractOptions.from_dict(raw)
        except OptionsError as exc:
            return None, [*problems, *exc.problems]
        except TypeError as exc:
            return None, [*problems, Problem("options", f"Options could not be read: {exc}")]

        # Paths from the page: relative ones are taken from the workspace, all are made absolute.
        for owner, key, label in ((opts, "input", "input"), (opts.master_table, "dates_csv", "master_table.dates_csv")):
            if owner is None:
                continue
            value = getattr(owner, key)
            if value in (None, ""):
                continue
            if not isinstance(value, str):
                problems.append(Problem(label, "Must be a path"))
                setattr(owner, key, "")
                continue
            setattr(owner, key, str(self.policy.resolve(value)))

        try:
            problems.extend(validate(opts))
        except (TypeError, AttributeError, ValueError) as exc:
            problems.append(Problem("options", f"Options have the wrong types: {exc}"))

        if opts.select is not None:
            if not isinstance(opts.select, list) or not all(isinstance(s, str) for s in opts.select):
                problems.append(Problem("select", "Selected folders must be a list of folder paths"))
            elif opts.input and isinstance(opts.input, str):
                root = Path(opts.input)
                for sel in opts.select:
                    try:
                        self.policy.check_below(root, sel)
                    except PathDenied:
                        problems.append(Problem("select", f"Selected folder '{sel}' is not below the input folder"))

        if opts.output not in (None, ""):
            if not isinstance(opts.output, str):
                problems.append(Problem("output", "Output must be a file name in the workspace"))
            else:
                out = self.policy.resolve(opts.output)
                name_problem = validate_filename(out.name, opts.format if opts.format in FORMATS else "csv")
                if not self.policy.output_allowed(out):
                    problems.append(Problem("output", f"Output must be written to {self.policy.output_dir}"))
                elif name_problem:
                    problems.append(Problem("filename", name_problem))
                else:
                    opts.output = str(out)
        else:
            opts.output = None
        return opts, problems

    def _output_path(self, opts: ExtractOptions | None, problems: list[Problem]) -> str | None:
        if opts is None or any(p.field in ("filename", "output", "format", "workspace") for p in problems):
            return None
        try:
            return str(opts.output_path())
        except (TypeError, ValueError):
            return None

    # -- methods -------------------------------------------------------------
    def list_folders(self, root: str, depth: int = 1) -> dict[str, Any]:
        """Folders ``depth`` levels below ``root`` (relative posix paths); ``root`` becomes a chosen folder."""
        from radfeat.pipeline.discovery import folders_at_depth

        if not 1 <= depth <= MAX_DEPTH:
            raise RpcError(INVALID_PARAMS, f"Parameter 'depth' of list_folders must be between 1 and {MAX_DEPTH}",
                           {"parameter": "depth"})
        path = self.policy.resolve(root)
        if not path.is_dir():
            raise RpcError(NOT_FOUND, f"Folder not found: {root}", {"path": root})
        folders = list(folders_at_depth(path, depth))
        self.policy.choose(path)
        return {"root": str(path), "depth": depth, "folders": folders, "count": len(folders)}

    def list_weights(self) -> dict[str, Any]:
        """Every weight set with its labels and whether it is downloaded and exported to ONNX."""
        from radfeat.options import type_of
        from radfeat.weights.catalog import Catalog
        from radfeat.weights.export import is_exported

        cat = Catalog()
        weights = []
        for ws in cat.entries():
            try:
                exported = bool(is_exported(ws))
            except Exception:  # a broken cache must not hide the list
                log.warning("is_exported(%s) failed", ws.name, exc_info=True)
                exported = False
            weights.append({
                "name": ws.name,
                "description": ws.description,
                "labels": list(ws.labels),
                "trained_labels": list(ws.trained_labels),
                "downloaded": bool(ws.downloaded),
                "exported": exported,
                "size": ws.size,
                "source": ws.source,
                "input_size": ws.input_size,
                "architecture": ws.architecture,
                "type": type_of(ws.architecture),
            })
        return {"default": cat.default, "weights": weights}

    def validate_options(self, options: dict) -> dict[str, Any]:
        """Every problem with ``options`` (same words as the CLI) and where the table would be written."""
        opts, problems = self._prepare(options)
        return {"valid": not problems, "problems": _problem_dicts(problems),
                "output_path": self._output_path(opts, problems)}

    def inspect_dates(self, path: str, sample: int = 5) -> dict[str, Any]:
        """Columns, row count and first rows of a dates CSV; the file becomes a chosen path."""
        from radfeat.output.dates import inspect_csv

        if not 0 <= sample <= 100:
            raise RpcError(INVALID_PARAMS, "Parameter 'sample' of inspect_dates must be between 0 and 100",
                           {"parameter": "sample"})
        resolved = self.policy.resolve(path)
        if not resolved.is_file():
            raise RpcError(NOT_FOUND, f"File not found: {path}", {"path": path})
        try:
            info = inspect_csv(resolved, sample=sample)
        except (ValueError, UnicodeDecodeError, OSError) as exc:
            raise RpcError(CANNOT_READ, f"Cannot read the dates CSV {resolved.name}: {exc}", {"path": path}) from None
        self.policy.choose(resolved)
        return {**dict(info), "path": str(resolved)}

    def start_extraction(self, options: dict) -> dict[str, Any]:
        """Start a job (returns at once); invalid options: -32000 with ``data.problems``; busy: -32003."""
        opts, problems = self._prepare(options)
        if problems or opts is None:
            words = "; ".join(p.message for p in problems)
            raise RpcError(INVALID_OPTIONS, f"Invalid options: {words}", {"problems": _problem_dicts(problems)})
        weights = weights_label(opts)  # the weight set's name, or the type (fractal) when it uses none
        output = str(opts.output_path())
        self.policy.choose(opts.input)
        if opts.master_table is not None and opts.master_table.dates_csv:
            self.policy.choose(opts.master_table.dates_csv)
        job = self.jobs.start(opts, weights=weights, output=output)
        return {"job_id": job.id, "output": output, "weights": weights}

    def job_status(self, job_id: str, log_lines: int = LOG_SHOWN) -> dict[str, Any]:
        """State, progress, images/s, ETA, last log lines, errors so far and (when ended) the summary."""
        if not 0 <= log_lines <= 500:
            raise RpcError(INVALID_PARAMS, "Parameter 'log_lines' of job_status must be between 0 and 500",
                           {"parameter": "log_lines"})
        return self.jobs.get(job_id).snapshot(log_lines)

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        """Stop a job after its current batch; ``cancelled`` is false if it had already ended."""
        return {"job_id": job_id, "cancelled": self.jobs.cancel(job_id)}

    def list_jobs(self) -> dict[str, Any]:
        """Known jobs, newest last (a reloaded page finds its running job here)."""
        return {"jobs": [job.snapshot(0) for job in self.jobs.jobs()]}

    def read_table(self, path: str, offset: int = 0, limit: int = 50) -> dict[str, Any]:
        """One page of a result table in the workspace (or under a chosen folder)."""
        from radfeat.output.table import read_page

        if offset < 0:
            raise RpcError(INVALID_PARAMS, "Parameter 'offset' of read_table must not be negative",
                           {"parameter": "offset"})
        if not 1 <= limit <= MAX_TABLE_PAGE:
            raise RpcError(INVALID_PARAMS, f"Parameter 'limit' of read_table must be between 1 and {MAX_TABLE_PAGE}",
                           {"parameter": "limit"})
        resolved = self.policy.check_read(path)
        if not resolved.is_file():
            raise RpcError(NOT_FOUND, f"File not found: {path}", {"path": path})
        if resolved.suffix.lower() not in TABLE_SUFFIXES:
            raise RpcError(CANNOT_READ, f"Not a table (.csv or .parquet): {resolved.name}", {"path": path})
        try:
            page = read_page(resolved, offset=offset, limit=limit)
        except (ValueError, UnicodeDecodeError, OSError) as exc:
            raise RpcError(CANNOT_READ, f"Cannot read the table {resolved.name}: {exc}", {"path": path}) from None
        return {**dict(page), "path": str(resolved), "offset": offset, "limit": limit}

    def list_files(self) -> dict[str, Any]:
        """Result tables in ``<workspace>/DATA/extracted_features``, newest first, with their side files."""
        out_dir = self.policy.output_dir
        files = []
        if out_dir.is_dir():
            for entry in out_dir.iterdir():
                name = entry.name
                if (name.startswith(".") or entry.suffix.lower() not in TABLE_SUFFIXES
                        or name.endswith(SIDECAR_SUFFIXES) or not entry.is_file()):
                    continue
                st = entry.stat()
                side = {key: str(entry.with_name(entry.stem + suffix)) for key, suffix in
                        (("errors_path", ".errors.csv"), ("provenance_path", ".json"))}
                files.append({"name": name, "path": str(entry), "size": st.st_size, "modified": _iso(st.st_mtime),
                              "mtime": st.st_mtime, "format": entry.suffix.lower().lstrip("."),
                              **{k: (v if Path(v).is_file() else None) for k, v in side.items()},
                              **_provenance_context(side["provenance_path"])})
        files.sort(key=lambda f: (-f["mtime"], f["name"]))
        return {"workspace": str(self.policy.workspace), "folder": str(out_dir), "files": files}

    def thumbnail(self, path: str, size: int = 128) -> dict[str, Any]:
        """A PNG thumbnail (data URL) of an image under a chosen folder or the workspace."""
        import numpy as np
        from PIL import Image, UnidentifiedImageError

        if not 16 <= size <= 1024:
            raise RpcError(INVALID_PARAMS, "Parameter 'size' of thumbnail must be between 16 and 1024",
                           {"parameter": "size"})
        resolved = self.policy.check_read(path)
        if not resolved.is_file():
            raise RpcError(NOT_FOUND, f"File not found: {path}", {"path": path})
        from radfeat.pipeline import dicom

        if dicom.is_dicom(resolved):
            return _dicom_thumbnail(resolved, size, path)
        try:
            with Image.open(resolved) as img:
                width, height = img.size
                img.draft("L", (size, size))  # JPEG: decode at reduced scale
                if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                    arr = np.asarray(img, dtype=np.float32)
                    lo, hi = float(arr.min()), float(arr.max())
                    arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
                    small = Image.fromarray(arr.astype(np.uint8), "L")
                else:
                    small = img.convert("L" if img.mode in ("L", "LA", "1", "P") else "RGB")
                small.thumbnail((size, size))
                buf = io.BytesIO()
                small.save(buf, format="PNG")
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
            raise RpcError(CANNOT_READ, f"Cannot make a thumbnail of {resolved.name}: {exc}", {"path": path}) from None
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        return {"data_url": f"data:image/png;base64,{data}", "width": small.width, "height": small.height,
                "original_width": width, "original_height": height}

    def version(self) -> dict[str, Any]:
        """Versions and the ONNX Runtime execution providers available here."""
        try:
            import onnxruntime as ort

            ort_version, providers = ort.__version__, list(ort.get_available_providers())
        except ImportError:
            ort_version, providers = None, []
        return {"radfeat": __version__, "onnxruntime": ort_version, "providers": providers,
                "python": sys.version.split()[0]}


# ---------------------------------------------------------------------------
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
    csp = CSP_WINDOW if window_bridge else CSP
    app = Flask("radfeat.server", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    policy = PathPolicy(workspace)
    jobs = JobManager(extract_fn)
    api = Api(policy, jobs)
    dispatcher = Dispatcher(error_mapper=_map_error)
    dispatcher.register_object(api, METHODS)
    state = ServerState(
        guard=Guard(token or new_token(), port),
        policy=policy,
        jobs=jobs,
        api=api,
        dispatcher=dispatcher,
        frontend=Path(frontend) if frontend is not None else find_frontend(),
    )
    app.extensions["radfeat"] = state
    install_methods(app, state)  # radfeat.server.methods: the method groups outside this module

    def forbidden(reason: str) -> Response:
        if request.path == "/rpc":
            body = json.dumps({"error": "forbidden", "message": reason})
            return Response(body, status=403, mimetype="application/json")
        return Response(reason + "\n", status=403, mimetype="text/plain")

    @app.before_request
    def _guard() -> Response | None:
        path = request.path
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

    @app.post("/rpc")
    def rpc() -> Response:
        answer = state.dispatcher.handle_text(request.get_data(cache=False))
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

    return app


def app_state(app: Flask) -> ServerState:
    return app.extensions["radfeat"]


class _QuietHandler(WSGIRequestHandler):
    """No access log: the page polls twice a second and the page URL carries the token."""

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
    ):
        host = _loopback(host)
        self.token = token or new_token()
        self.app = create_app(workspace, self.token, frontend=frontend, extract_fn=extract_fn,
                              window_bridge=window_bridge)
        try:
            self._server = make_server(host, port, self.app, threaded=True, request_handler=_QuietHandler)
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
    if open_browser:
        webbrowser.open(srv.launch_url)

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
        srv._server.server_close()
    return 0


def main(argv: Sequence[str] | argparse.Namespace | None = None) -> int:
    """``radfeat serve``: ``argv`` are the arguments after ``serve``, or the CLI's parsed namespace
    (``port``, ``workspace`` and optionally ``no_browser`` / ``open_browser``)."""
    parser = argparse.ArgumentParser(
        prog="radfeat serve",
        description="Run the local backend (page + JSON-RPC) on 127.0.0.1 with a per-launch token.",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--workspace", default=".", help="workspace folder; tables go to DATA/extracted_features")
    parser.add_argument("--open", action="store_true", dest="open_browser", help="open the page in a browser")
    if isinstance(argv, argparse.Namespace):
        port = int(getattr(argv, "port", 0) or 0)
        workspace = getattr(argv, "workspace", ".") or "."
        open_browser = bool(getattr(argv, "open_browser", False)) or (
            hasattr(argv, "no_browser") and not argv.no_browser)
    else:
        args = parser.parse_args(list(argv) if argv is not None else None)
        port, workspace, open_browser = args.port, args.workspace, args.open_browser
    if not 0 <= port <= 65535:
        print("radfeat serve: --port must be between 0 and 65535", file=sys.stderr)
        return 2
    ws = Path(workspace).expanduser()
    if not ws.is_dir():
        print(f"radfeat serve: workspace folder not found: {workspace}", file=sys.stderr)
        return 2
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return serve(LOOPBACK_HOST, port, ws, open_browser=open_browser)
    except OSError as exc:
        print(f"radfeat serve: cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}; "
              "choose another --port or leave it out for a free one", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def _dicom_thumbnail(resolved: Path, size: int, path: str) -> dict[str, Any]:
    """A DICOM's thumbnail: its pixels as radfeat reads them (VOI LUT applied for viewing), min-max scaled."""
    import numpy as np
    from PIL import Image
    from radfeat.pipeline.dicom import read_dicom
    from radfeat.pipeline.images import MAX_PIXELS, ImageError

    try:
        pixels, _ = read_dicom(resolved, voi_lut=True, max_pixels=MAX_PIXELS)
    except ImageError as exc:
        raise RpcError(CANNOT_READ, f"Cannot make a thumbnail of {resolved.name}: {exc}", {"path": path}) from None
    arr = pixels.astype(np.float32)
    lo, hi = float(arr.min()), float(arr.max())
    arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
    small = Image.fromarray(arr.astype(np.uint8), "L")
    height, width = pixels.shape
    small.thumbnail((size, size))
    buf = io.BytesIO()
    small.save(buf, format="PNG")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return {"data_url": f"data:image/png;base64,{data}", "width": small.width, "height": small.height,
            "original_width": width, "original_height": height}
