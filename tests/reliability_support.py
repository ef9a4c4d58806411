"""Helpers for the reliability tests: the real CLI in a subprocess, and runs paused at a known batch
(the test pause point) so that a test never races the run.  The JSON-RPC client is :class:`helpers.Client`."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

GATE_ENV = "RADFEAT_TEST_PAUSE_AFTER"


def radfeat_cmd(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "radfeat", *map(str, args)]


def extract_cmd(root: Path, out: Path, weights: str, *extra: str | Path) -> list[str]:
    return radfeat_cmd("extract", root, "--weights", weights, "--output", out, "--batch-size", "2",
                       "--threads", "1", "--quiet", *extra)


def run_cli(cmd: list[str], timeout: float = 300, env: dict[str, str] | None = None,
            **kwargs: Any) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k != GATE_ENV}
    full.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, env=full, timeout=timeout, **kwargs)


def wait_for(condition: Callable[[], bool], timeout: float = 180, what: str = "condition") -> None:
    """Wait for a state the test controls (never for an amount of time)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class PausedRun:
    """A CLI run that stops after ``after`` written batches (the test pause point) until released."""

    def __init__(self, cmd: list[str], gate: Path, after: int = 1, **popen: Any) -> None:
        os.mkfifo(gate)
        self.gate, self.marker = gate, gate.with_name(gate.name + ".paused")
        env = {**os.environ, GATE_ENV: f"{after}:{gate}"}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                     **popen)
        wait_for(lambda: self.marker.exists() or self.proc.poll() is not None, what="the run to pause")
        if not self.marker.exists():
            out, err = self.proc.communicate()
            raise AssertionError(f"the run ended before its pause point: {self.proc.returncode}\n{out}\n{err}")

    def release(self) -> None:
        fd = os.open(self.gate, os.O_WRONLY)  # the paused run is blocked opening the FIFO for reading
        os.close(fd)

    def finish(self, timeout: float = 300) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err

    def stop(self, sig: int) -> tuple[int, str, str]:
        self.proc.send_signal(sig)
        return self.finish()


@contextlib.contextmanager
def paused_in_process(gate: Path, after: int = 1) -> Iterator[Path]:
    """Make runs of *this* process (the in-process backend) pause; yields the marker path."""
    os.mkfifo(gate)
    old = os.environ.get(GATE_ENV)
    os.environ[GATE_ENV] = f"{after}:{gate}"
    try:
        yield gate.with_name(gate.name + ".paused")
    finally:
        if old is None:
            os.environ.pop(GATE_ENV, None)
        else:
            os.environ[GATE_ENV] = old


def release(gate: Path) -> None:
    os.close(os.open(gate, os.O_WRONLY))


def rows(path: Path) -> int:
    return max(0, path.read_bytes().count(b"\n") - 1) if path.exists() else 0
