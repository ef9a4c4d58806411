"""A pause point for tests that interrupt a run, so that they never race the run.

``RADFEAT_TEST_PAUSE_AFTER=N:GATE`` makes a run stop after its N-th batch has been written
(rows and bookkeeping flushed): it creates ``GATE.paused`` and then blocks opening ``GATE``,
a FIFO the test made with ``os.mkfifo``.  The test waits for ``GATE.paused``, then does what
it needs in a known state — sends SIGINT/SIGTERM/SIGKILL, starts a second run, cancels — and
releases the run, if still wanted, by opening ``GATE`` for writing.  Unset (always, outside
tests) it costs one dictionary look-up per run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

ENV = "RADFEAT_TEST_PAUSE_AFTER"


def pause_point() -> Callable[[int], None]:
    """A function of the number of batches written so far; pauses once, at the configured batch."""
    spec = os.environ.get(ENV, "")
    count, _, gate = spec.partition(":")
    if not count.isdigit() or not gate:
        return lambda batches: None
    after, gate_path = int(count), Path(gate)

    def pause(batches: int) -> None:
        if batches == after:
            gate_path.with_name(gate_path.name + ".paused").write_text(str(os.getpid()))
            with open(gate_path, "rb") as fh:  # blocks until the test opens the FIFO for writing
                fh.read()

    return pause
