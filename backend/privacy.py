"""Nothing leaves the machine, nothing is written outside the workspace and ``$RADFEAT_HOME``.

ONNX Runtime (1.2x+ wheels) ships Microsoft's 1DS telemetry: importing it creates
``~/.cache/Microsoft/DeveloperTools/.onnxruntime/{deviceid,onnxruntime.db}`` (a device id and a
queue of events to upload) and ``$TMPDIR/.ses``.  ``ORT_DISABLE_TELEMETRY=1`` in the environment
*before the first import* turns all of it off (found by diffing a fresh ``$HOME``/``$TMPDIR``
around ``import onnxruntime``); :func:`quiet_environment` sets it and runs when the ``radfeat``
package is imported, so every entry point (CLI, backend, desktop window, library, bundle) gets it.
``onnxruntime.disable_telemetry_events()`` is called as well wherever radfeat makes a session,
for programs that imported ONNX Runtime before radfeat.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator

_TEMP_LOCK = threading.Lock()


def quiet_environment() -> None:
    """Switch ONNX Runtime's telemetry off (must run before ``import onnxruntime``)."""
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"


def disable_ort_telemetry() -> None:
    """The API switch too (a no-op where the environment already did it)."""
    import onnxruntime as ort

    with contextlib.suppress(AttributeError):
        ort.disable_telemetry_events()


@contextlib.contextmanager
def private_tempdir() -> Iterator[str]:
    """Point :mod:`tempfile` at ``$RADFEAT_HOME/tmp`` for libraries that make scratch files (quantiser, ONNX checks)."""
    from radfeat.weights.home import scratch_dir

    with _TEMP_LOCK:
        old = tempfile.tempdir
        work = tempfile.mkdtemp(prefix="radfeat-", dir=scratch_dir())
        tempfile.tempdir = work
        try:
            yield work
        finally:
            tempfile.tempdir = old
            import shutil

            shutil.rmtree(work, ignore_errors=True)
