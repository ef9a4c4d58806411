"""Connecting to Ray for the ``ray`` engine, safely, and sizing the work to the cluster.

* ``address`` None starts a private Ray on this machine (all its cores), with its temporary folder under
  ``$RADFEAT_HOME/ray`` (or ``$RADFEAT_RAY_TEMP``), token authentication with a fresh random token, no
  dashboard and no usage statistics: nothing leaves the machine and nothing is written under ``$HOME``.
* ``"auto"``, ``HOST:PORT`` (the cluster's GCS port, e.g. 6379) or ``ray://HOST:10001`` (Ray Client)
  joins an existing cluster; its token, if it uses one, comes from the usual ``RAY_AUTH_TOKEN`` /
  ``RAY_AUTH_TOKEN_PATH`` settings.

One process may run several Ray jobs at once (the backend's jobs): the connection is shared and
counted, and closed with the last one.  Closing it ends the driver's Ray job, which stops its tasks and
actors on every node.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import secrets
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from radfeat.errors import OptionsError, Problem, RadfeatError

MAX_TEMP_DIR = 40  # Ray's socket paths (<temp>/session_<date>_<pid>/sockets/…) must stay under 107 bytes
_ADDRESS_RE = re.compile(r"(auto|ray://[^\s/:]+(:\d{1,5})?|[A-Za-z0-9.\-\[\]:]+:\d{1,5})")


class RayEngineError(RadfeatError, RuntimeError):
    """The Ray cluster cannot be used (connection refused, no resources …); the message says why."""


def ray_missing() -> str | None:
    if importlib.util.find_spec("ray") is None:
        return "The Ray engine needs Ray: pip install 'radfeat[ray]'"
    return None


def address_problem(address: str | None) -> str | None:
    if address is None:
        return None
    if not isinstance(address, str) or not _ADDRESS_RE.fullmatch(address):
        return "Ray address must be auto, HOST:PORT or ray://HOST:10001"
    return None


def temp_dir() -> Path:
    """Where a private Ray keeps its sockets, logs and spilled objects."""
    own = os.environ.get("RADFEAT_RAY_TEMP")
    if own:
        path = Path(own).expanduser().resolve()
    else:
        from radfeat.weights.home import home

        path = home() / "ray"
    if len(str(path)) > MAX_TEMP_DIR:
        raise RayEngineError(f"Ray's temporary folder {path} is too long for its socket paths; set "
                             f"RADFEAT_RAY_TEMP to a short folder (at most {MAX_TEMP_DIR} characters)")
    return path


@dataclass
class Cluster:
    """What the run used, recorded in the provenance."""

    address: str
    ray: str
    nodes: int
    cpus: float
    gpus: float
    node_resources: list[dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Plan:
    """How the work is spread: decoding tasks on the CPUs, one ONNX Runtime session per actor.

    ``decode_cpus`` always differs from ``actor_cpus``: Ray Data would otherwise fuse decoding into the
    actors, and decoding must stay in CPU tasks that run beside them.
    """

    actors: int
    actor_cpus: float
    actor_gpus: float
    threads: int  # ONNX Runtime threads per actor (fractal: threads per image)
    decode_cpus: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan(cluster: Cluster, device: str, threads: int | None) -> Plan:
    """Size the actor pool and the CPU requests so that decoding and inference share every node's cores.

    With GPUs (and ``device`` not ``cpu``): one actor per GPU, every other core decodes.  CPU only: one
    actor per node, asking for half the node's cores while its ONNX Runtime uses them all (inference and
    decoding overlap, as the local engine's threads do); decoding tasks take half a core each.  Asking for
    whole cores per actor would leave no room for the decoding tasks on small nodes and the run would never
    start.
    """
    if device == "cuda" and cluster.gpus < 1:
        raise OptionsError([Problem("device", "CUDA was requested but the Ray cluster has no GPUs")])
    if cluster.gpus >= 1 and device != "cpu":
        return Plan(actors=int(cluster.gpus), actor_cpus=1.0, actor_gpus=1.0, threads=threads or 2, decode_cpus=1.0)
    cpus = [r.get("CPU", 0.0) for r in cluster.node_resources if r.get("CPU", 0.0) > 0]
    if not cpus:
        raise RayEngineError("The Ray cluster has no CPUs")
    smallest = min(cpus)
    per_actor = threads or max(1, int(smallest))
    return Plan(actors=len(cpus), actor_cpus=max(0.25, smallest / 2), actor_gpus=0.0, threads=per_actor,
                decode_cpus=0.5 if smallest / 2 != 0.5 else 0.4)


_lock = threading.Lock()
_users = 0
_address: str | None = None
_session_dir: str | None = None


def _quiet() -> None:
    """No usage statistics, no dashboard, Ray's own logs at warning level."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ.setdefault("RAY_DISABLE_DOCKER_CPU_WARNING", "1")
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.WARNING)


def connect(address: str | None, log: Any) -> Cluster:
    """Start or join Ray (shared by the jobs of this process) and describe the cluster."""
    global _users, _address, _session_dir
    _quiet()
    if address is None and "RAY_AUTH_MODE" not in os.environ:
        # a fresh token for our private cluster, kept in memory only (set before Ray reads its settings)
        os.environ["RAY_AUTH_MODE"] = "token"
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    import ray

    key = address or "local"
    with _lock:
        if _users and _address != key:
            raise RayEngineError(f"this process already uses the Ray cluster '{_address}'; one cluster at a time")
        if not _users:
            try:
                _init(ray, address, log)
            except RayEngineError:
                raise
            except Exception as exc:  # Ray raises ConnectionError, RuntimeError, its own types
                raise RayEngineError(f"cannot start or reach Ray at {key}: {exc}") from None
            _address = key
            _session_dir = _current_session_dir(ray) if address is None else None
        _users += 1
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its "progress bars disabled" and per-run notes
    return describe(ray, key)


def _init(ray: Any, address: str | None, log: Any) -> None:
    common = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING,
              "namespace": "radfeat"}
    if address is not None:
        log(f"Connecting to the Ray cluster at {address}")
        ray.init(address=address, **common)
        return
    tmp = temp_dir()
    tmp.mkdir(parents=True, exist_ok=True)
    from radfeat.weights.session import default_threads

    log(f"Starting a private Ray on this machine ({default_threads()} CPU(s), temporary files in {tmp})")
    ray.init(num_cpus=default_threads(), _temp_dir=str(tmp), **common)


def _current_session_dir(ray: Any) -> str | None:
    try:
        return ray._private.worker._global_node.get_session_dir_path()
    except Exception:  # internal API: best effort, only used to tidy up
        return None


def release() -> None:
    """One job is done with Ray; the last one disconnects (a private Ray is stopped and its logs removed)."""
    global _users, _address, _session_dir
    import ray

    with _lock:
        _users = max(0, _users - 1)
        if _users:
            return
        session, _address, _session_dir = _session_dir, None, None
        _settle_ray_data()
        ray.shutdown()
    if session:  # worker logs may name patients' files: they go with the run
        shutil.rmtree(session, ignore_errors=True)
        latest = Path(session).parent / "session_latest"
        if latest.is_symlink() and not latest.exists():
            latest.unlink()


# Ray Data's helper threads: the executor's scheduling loop, its metadata fetcher, the batch prefetchers
_RAY_DATA_THREADS = ("StreamingExecutor-", "ray-data-metadata-prefetch", "iter_threaded", "map_tp_")


def _settle_ray_data(timeout: float = 120.0) -> None:
    """Wait for Ray Data's threads to stop before Ray is shut down.

    After a cancel or Ctrl-C, Ray Data stops its executor but gives the scheduling loop only 2 s to
    finish; on a loaded machine it can still be inside a call to Ray when ``ray.shutdown()`` runs, and
    Ray then ends the whole process ("The core worker has already been shutdown") — the backend with it.
    """
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and thread.name.startswith(_RAY_DATA_THREADS):
            thread.join(max(0.0, deadline - time.monotonic()))


def describe(ray: Any, address: str) -> Cluster:
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    resources = [{k: float(v) for k, v in n.get("Resources", {}).items() if k in ("CPU", "GPU", "memory")}
                 for n in nodes]
    return Cluster(address=address, ray=ray.__version__, nodes=len(nodes),
                   cpus=sum(r.get("CPU", 0.0) for r in resources), gpus=sum(r.get("GPU", 0.0) for r in resources),
                   node_resources=resources)
