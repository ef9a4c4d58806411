"""Real Ray for the tests, kept inside a private network namespace.

Ray gives its nodes the default-route address (it probes 8.8.8.8:53) and, in a multi-node cluster,
replaces 127.0.0.1 by it.  So every Ray process of the tests runs in a network namespace that the test
makes (``unshare -n``, as root) with only ``lo`` up: there every node lives on 127.0.0.1 and no other
address exists.  Each cluster has its own short ``--temp-dir`` (Unix socket paths are limited to 107 bytes)
and a fresh token; usage statistics and the dashboard are off.  Processes are started and stopped by id;
at the end every process left in the namespace (all of them ours) is killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY_BIN = str(Path(sys.executable).with_name("ray"))
HEAD_PORT = 6379  # free by construction: the namespace is new


def netns_problem() -> str | None:
    """Why the Ray tests cannot run here, or None."""
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        return "unshare/nsenter not found"
    if os.geteuid() != 0:
        return "a private network namespace needs root (unshare -n)"
    probe = subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True)
    if probe.returncode != 0:
        return f"unshare -n failed: {probe.stderr.decode(errors='replace').strip()}"
    return None


def _ns_inode(pid: int | str) -> int:
    return os.stat(f"/proc/{pid}/ns/net").st_ino


class NetNamespace:
    """A network namespace with only loopback, held open by a sleeping process."""

    def __init__(self) -> None:
        self.holder = subprocess.Popen(["unshare", "-n", "sh", "-c", "ip link set lo up && exec sleep 86400"])
        mine = _ns_inode("self")
        deadline = time.time() + 30
        while _ns_inode(self.holder.pid) == mine or not self._lo_up():
            if time.time() > deadline or self.holder.poll() is not None:
                raise RuntimeError("could not make a network namespace")
            time.sleep(0.05)
        self.inode = _ns_inode(self.holder.pid)

    def _lo_up(self) -> bool:
        try:
            return Path(f"/proc/{self.holder.pid}/cmdline").read_bytes().startswith(b"sleep")
        except OSError:
            return False

    def cmd(self, argv: list[str]) -> list[str]:
        return ["nsenter", f"--net=/proc/{self.holder.pid}/ns/net", *argv]

    def pids(self) -> list[int]:
        """Every process in the namespace (all started by these tests)."""
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if _ns_inode(entry) == self.inode:
                        found.append(int(entry))
                except OSError:
                    continue
        return found

    def processes(self, needle: str) -> list[int]:
        out = []
        for pid in self.pids():
            try:
                if needle.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    out.append(pid)
            except OSError:
                continue
        return out

    def close(self) -> None:
        for pid in self.pids():
            if pid != self.holder.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.holder.kill()
        self.holder.wait()


def ray_env(token: str, **extra: str) -> dict[str, str]:
    env = os.environ.copy()
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token, **extra)
    return env


class TwoNodeCluster:
    """``ray start --head`` plus a second ``ray start --address …`` (own CPU and a custom resource)."""

    def __init__(self, ns: NetNamespace, cpus_per_node: int = 1) -> None:
        self.ns = ns
        self.token = secrets.token_hex(16)
        self.temp = Path(tempfile.mkdtemp(prefix="rft", dir="/tmp"))  # short: socket paths
        self.address = f"127.0.0.1:{HEAD_PORT}"
        self.env = ray_env(self.token)
        common = ["--block", "--node-ip-address", "127.0.0.1", "--num-cpus", str(cpus_per_node),
                  "--disable-usage-stats"]
        self.head = subprocess.Popen(ns.cmd([RAY_BIN, "start", "--head", "--port", str(HEAD_PORT),
                                             "--include-dashboard", "false", "--temp-dir", str(self.temp),
                                             *common]), env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self._wait_nodes(1)
        self.worker = subprocess.Popen(ns.cmd([RAY_BIN, "start", "--address", self.address,
                                               "--resources", json.dumps({"second_node": 1}), *common]),
                                       env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_nodes(2)

    def _wait_nodes(self, n: int, timeout: float = 240) -> None:
        script = (f"import ray,time\nray.init(address={self.address!r}, logging_level='ERROR')\n"
                  f"t=time.time()\nwhile len([x for x in ray.nodes() if x['Alive']]) < {n}:\n"
                  f"    assert time.time() - t < {timeout}; time.sleep(0.5)\n")
        deadline = time.time() + timeout
        while True:
            proc = subprocess.run(self.ns.cmd([sys.executable, "-c", script]), env=self.env, capture_output=True,
                                  text=True, timeout=timeout)
            if proc.returncode == 0:
                return
            if time.time() > deadline or self.head.poll() is not None:
                raise RuntimeError(f"Ray cluster did not start: {proc.stderr[-2000:]}")
            time.sleep(1)

    def stop(self) -> None:
        for proc in (self.worker, self.head):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (self.worker, self.head):
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.temp, ignore_errors=True)


def run_in_ns(ns: NetNamespace, argv: list[str], env: dict[str, str], timeout: float = 300,
              check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(ns.cmd(argv), env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{argv} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc
