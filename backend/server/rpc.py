"""A small JSON-RPC 2.0 dispatcher with typed parameters, and a client for scripts.

Why not a library: the maintained Python JSON-RPC servers either bring their own
transport and event loop or validate parameters less strictly than we want.  The
spec is short; this module implements all of it that a single HTTP endpoint
needs: single and batch calls, notifications (no ``id``: no answer), parameters
by name or by position, and error objects with the standard codes:

=========  ==================  =====================================================
code       name                when
=========  ==================  =====================================================
-32700     Parse error         the body is not JSON
-32600     Invalid Request     not a JSON-RPC 2.0 request object (or an empty batch)
-32601     Method not found    unknown method name
-32602     Invalid params      missing, unknown or mistyped parameter
-32603     Internal error      a bug; the traceback goes to the server log only
-32000     Invalid options     extraction options refused; ``data.problems`` lists them
-32001     Access denied       a path outside the workspace and the chosen folders
-32002     Not found           a file, folder or job that does not exist
-32003     Busy                a job already runs for these weights; ``data.job_id``
-32004     Cannot read         a file exists but cannot be read as asked
-32005     Failed              an operation failed; the message says why
-32006     Cancelled           the work was stopped on request
=========  ==================  =====================================================

Every :class:`radfeat.errors.RadfeatError` raised by a method becomes the error object its class
declares (code, message, data); see :mod:`radfeat.errors`.

Messages are human sentences meant to be shown as they are; clients never see a
stack trace.
"""

from __future__ import annotations

import difflib
import inspect
import json
import logging
import math
import types
import typing
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from radfeat.errors import (  # noqa: F401  (the codes are part of this module's interface)
    ACCESS_DENIED,
    BUSY,
    CANCELLED,
    CANNOT_READ,
    FAILED,
    INTERNAL_ERROR,
    INVALID_OPTIONS,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    NOT_FOUND,
    PARSE_ERROR,
    RadfeatError,
)

log = logging.getLogger("radfeat.server")

MAX_BATCH = 100


class RpcError(RadfeatError):
    """An error to return to the caller as a JSON-RPC error object (its code chosen where it is raised)."""

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(message)
        self.code = self.rpc_code = code
        self.message = message
        self.data = data

    @classmethod
    def of(cls, exc: RadfeatError) -> RpcError:
        """The error object for any radfeat error: its class's code, message and data."""
        return exc if isinstance(exc, RpcError) else cls(exc.rpc_code, exc.rpc_message(), exc.rpc_data())

    def to_dict(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


# ---------------------------------------------------------------------------
# JSON safety: NaN/inf are not JSON, numpy scalars and paths are not JSON types.
def json_safe(value: Any) -> Any:
    """Return ``value`` with NaN/inf turned into ``null`` and numpy scalars/paths into plain types."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, PurePath):
        return str(value)
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and not hasattr(value, "__len__"):
        return json_safe(item())
    tolist = getattr(value, "tolist", None)  # numpy arrays
    if callable(tolist):
        return json_safe(tolist())
    return str(value)


# ---------------------------------------------------------------------------
# Typed parameters
_TYPE_WORDS = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               dict: "an object", list: "a list"}


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is list:
        args = typing.get_args(tp)
        return f"a list of {_describe(args[0]).split(' ', 1)[-1]}s" if args else "a list"
    if origin is dict:
        return "an object"
    return _TYPE_WORDS.get(tp, getattr(tp, "__name__", str(tp)))


def _matches(value: Any, tp: Any) -> bool:
    if tp is Any or tp is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if origin is list:
        args = typing.get_args(tp)
        return isinstance(value, list) and (not args or all(_matches(v, args[0]) for v in value))
    if origin is dict:
        return isinstance(value, dict)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


class _Method:
    def __init__(self, name: str, func: Callable[..., Any]):
        self.name = name
        self.func = func
        self.signature = inspect.signature(func)
        self.hints = typing.get_type_hints(func)
        self.params = [p for p in self.signature.parameters.values() if p.name != "self"]

    def bind(self, params: Any) -> dict[str, Any]:
        names = [p.name for p in self.params]
        if params is None:
            params = {}
        if isinstance(params, list):
            if len(params) > len(names):
                raise RpcError(INVALID_PARAMS, f"{self.name} takes at most {len(names)} parameters, got {len(params)}")
            params = dict(zip(names, params, strict=False))
        unknown = [k for k in params if k not in names]
        if unknown:
            expected = ", ".join(names) or "no parameters"
            raise RpcError(
                INVALID_PARAMS,
                f"Unknown parameter '{unknown[0]}' for {self.name}; expected: {expected}",
                {"parameter": unknown[0]},
            )
        bound: dict[str, Any] = {}
        for p in self.params:
            if p.name not in params:
                if p.default is inspect.Parameter.empty:
                    raise RpcError(INVALID_PARAMS, f"Missing parameter '{p.name}' for {self.name}",
                                   {"parameter": p.name})
                continue
            value = params[p.name]
            tp = self.hints.get(p.name, Any)
            if not _matches(value, tp):
                raise RpcError(
                    INVALID_PARAMS,
                    f"Parameter '{p.name}' of {self.name} must be {_describe(tp)}",
                    {"parameter": p.name},
                )
            bound[p.name] = value
        return bound


ErrorMapper = Callable[[BaseException], "RpcError | None"]


class Dispatcher:
    """Routes JSON-RPC requests (already parsed from JSON) to registered Python callables."""

    def __init__(self, error_mapper: ErrorMapper | None = None):
        self._methods: dict[str, _Method] = {}
        self._error_mapper = error_mapper

    def register(self, name: str, func: Callable[..., Any]) -> None:
        self._methods[name] = _Method(name, func)

    def register_object(self, obj: Any, names: list[str]) -> None:
        for name in names:
            self.register(name, getattr(obj, name))

    @property
    def methods(self) -> list[str]:
        return sorted(self._methods)

    # -- entry points ------------------------------------------------------
    def handle_text(self, body: bytes | str) -> Any:
        """Handle a raw HTTP body; returns the JSON-able response, or ``None`` when nothing is due."""
        if _nesting(body) > MAX_NESTING:  # checked on the text, before the parser recurses
            return _error(None, RpcError(INVALID_REQUEST, f"Invalid Request: nested deeper than {MAX_NESTING} levels"))
        try:
            data = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return _error(None, RpcError(PARSE_ERROR, "Parse error: the request body is not valid JSON "
                                                      "(NaN, Infinity and numbers out of range are not JSON)"))
        return self.handle(data)

    def handle(self, data: Any) -> Any:
        if isinstance(data, list):
            if not data:
                return _error(None, RpcError(INVALID_REQUEST, "Invalid Request: empty batch"))
            if len(data) > MAX_BATCH:
                return _error(None, RpcError(INVALID_REQUEST, f"Invalid Request: at most {MAX_BATCH} calls per batch"))
            answers = [a for a in (self.handle_one(item) for item in data) if a is not None]
            return answers or None
        return self.handle_one(data)

    def handle_one(self, req: Any) -> dict[str, Any] | None:
        if not isinstance(req, dict):
            return _error(None, RpcError(INVALID_REQUEST, "Invalid Request: expected a JSON-RPC 2.0 request object"))
        req_id = req.get("id")
        id_ok = req_id is None or (isinstance(req_id, str | int | float) and not isinstance(req_id, bool))
        answer_id = req_id if id_ok else None
        problem = None
        if req.get("jsonrpc") != "2.0":
            problem = "Invalid Request: 'jsonrpc' must be \"2.0\""
        elif not isinstance(req.get("method"), str):
            problem = "Invalid Request: 'method' must be a string"
        elif "params" in req and not isinstance(req["params"], dict | list):
            problem = "Invalid Request: 'params' must be an object or a list"
        elif not id_ok:
            problem = "Invalid Request: 'id' must be a string, a number or null"
        elif set(req) - {"jsonrpc", "method", "params", "id"}:
            extra = sorted(set(req) - {"jsonrpc", "method", "params", "id"})[0]
            problem = f"Invalid Request: unexpected member '{extra}'"
        if problem:
            return _error(answer_id, RpcError(INVALID_REQUEST, problem))

        notification = "id" not in req
        try:
            result = self.call(req["method"], req.get("params"))
        except RpcError as exc:
            if notification:
                return None
            return _error(req_id, exc)
        if notification:
            return None
        return {"jsonrpc": "2.0", "id": req_id, "result": json_safe(result)}

    def call(self, name: str, params: Any) -> Any:
        """Run one method; every failure comes out as :class:`RpcError`."""
        method = self._methods.get(name)
        if method is None:
            close = difflib.get_close_matches(name, self.methods, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise RpcError(METHOD_NOT_FOUND, f"Method not found: '{name}'{hint}")
        kwargs = method.bind(params)
        try:
            return method.func(**kwargs)
        except RadfeatError as exc:
            raise RpcError.of(exc) from exc
        except Exception as exc:  # turned into an error object, never a traceback
            mapped = self._error_mapper(exc) if self._error_mapper else None
            if mapped is not None:
                raise mapped from exc
            log.exception("RPC method %s failed", name)
            raise RpcError(
                INTERNAL_ERROR,
                f"Internal error in {name} ({type(exc).__name__}); the details are in the server log",
            ) from None


MAX_NESTING = 64


def _nesting(body: bytes | str) -> int:
    """How deeply arrays and objects nest in a JSON text (brackets inside strings are not counted)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes | bytearray) else str(body)
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _error(req_id: Any, err: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": req_id, "error": json_safe(err.to_dict())}


# ---------------------------------------------------------------------------
class RpcClient:
    """Call a running ``radfeat serve`` from Python (stdlib only).

    >>> client = RpcClient("http://127.0.0.1:8765", token)      # doctest: +SKIP
    >>> client.call("list_folders", root="/data/cxr", depth=1)   # doctest: +SKIP
    """

    def __init__(self, url: str, token: str, timeout: float = 30.0):
        self.url = url.rstrip("/") + "/rpc" if not url.rstrip("/").endswith("/rpc") else url
        self.token = token
        self.timeout = timeout
        self._next_id = 0

    def _post(self, payload: Any) -> Any:
        body = json.dumps(payload).encode("utf-8")
        req = urllib.request.Request(
            self.url, data=body, method="POST",
            headers={"Content-Type": "application/json", "X-Radfeat-Token": self.token},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise RpcError(exc.code, f"HTTP {exc.code}: {exc.read().decode('utf-8', 'replace')}") from None
        return json.loads(raw) if raw else None

    def call(self, method: str, /, **params: Any) -> Any:
        self._next_id += 1
        answer = self._post({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params})
        if "error" in answer:
            err = answer["error"]
            raise RpcError(err["code"], err["message"], err.get("data"))
        return answer["result"]

    def batch(self, calls: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Send several calls at once; returns the raw answers in call order."""
        payload = []
        for method, params in calls:
            self._next_id += 1
            payload.append({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params})
        answers = self._post(payload) or []
        order = {p["id"]: i for i, p in enumerate(payload)}
        return sorted(answers, key=lambda a: order.get(a.get("id"), len(order)))
