"""What runs on Ray's workers: decoding tasks and inference actors.

The driver prepares the local engine's extractor (weights, ONNX export) and ships a copy of it without its
ONNX Runtime session (:func:`detach`); the model's bytes travel separately, once, through the object store.
Workers therefore need radfeat and its run-time packages (ONNX Runtime, NumPy, SciPy, Pillow, OpenCV,
pyarrow) but never torch, the weights or the radfeat home.

* :func:`decode_batch` (a Ray task per batch) calls the extractor's own ``load`` — the local engine's
  reader and exact preprocessing — on each image; a bad or missing file becomes an error row, as locally.
* :class:`InferenceActor` (an actor pool) rebuilds the session from the bytes once and calls the
  extractor's ``run`` on each batch; rows come back as the partial table's own CSV text.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from radfeat.extractors.base import Extractor
from radfeat.pipeline.discovery import ImageRef


def detach(ex: Extractor) -> tuple[Extractor, Path | None]:
    """A copy of the prepared extractor to ship (no session, no log callback) and its model file, if any."""
    clone = copy.copy(ex)
    session = getattr(ex, "session", None)
    clone.log = None  # type: ignore[assignment]
    if session is not None:
        clone.session = None  # type: ignore[attr-defined]
    return clone, getattr(session, "model_path", None)


def image_row(pos: int, ref: ImageRef) -> dict[str, Any]:
    """One row of the dataset of image references."""
    return {"pos": pos, "path": str(ref.path), "levels": json.dumps(list(ref.levels)), "filename": ref.filename,
            "tags": json.dumps(list(ref.tags))}


def _refs(batch: dict[str, np.ndarray]) -> list[ImageRef]:
    return [ImageRef(Path(p), tuple(json.loads(lv)), f, tuple(json.loads(t)))
            for p, lv, f, t in zip(batch["path"], batch["levels"], batch["filename"], batch["tags"], strict=True)]


def decode_batch(batch: dict[str, np.ndarray], loader: Extractor) -> dict[str, np.ndarray]:
    """Read and preprocess each image (a CPU task): the array as raw bytes with its shape, or the reason."""
    from radfeat.pipeline.run import _load

    data, shapes, dtypes, errors = [], [], [], []
    for ref in _refs(batch):
        item = _load(ref, loader.load)
        if item.error is None:
            x = np.ascontiguousarray(item.x)
            data.append(x.tobytes())
            shapes.append(json.dumps(x.shape))
            dtypes.append(x.dtype.str)
            errors.append("")
        else:
            data.append(b"")
            shapes.append("")
            dtypes.append("")
            errors.append(item.error)
    out = dict(batch)
    out.update(x=np.array(data, dtype=object), shape=np.array(shapes), dtype=np.array(dtypes),
               error=np.array(errors))
    return out


class InferenceActor:
    """One ONNX Runtime session (or the fractal computation) per actor; batches in, table text out."""

    def __init__(self, clone: Extractor, model: Any, device: str, threads: int, n_keys: int) -> None:
        import ray

        if isinstance(model, ray.ObjectRef):
            model = ray.get(model)
        self.lines: list[str] = []
        ex = copy.copy(clone)
        ex.log = self.lines.append
        ex.threads = threads
        if model is not None:
            from radfeat.weights.session import OnnxSession

            ex.session = OnnxSession(model, device, threads, log=self.lines.append)  # type: ignore[attr-defined]
            ex.provider = ex.session.provider  # type: ignore[attr-defined]
        self.ex = ex
        self.n_keys = n_keys
        self.node = ray.get_runtime_context().get_node_id()
        self.pid = os.getpid()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:

        refs = _refs(batch)
        errors = {ref.key: str(e) for ref, e in zip(refs, batch["error"], strict=True) if e}
        good = [i for i, ref in enumerate(refs) if ref.key not in errors]
        text: dict[str, str] = {}
        if good:
            xs = [np.frombuffer(batch["x"][i], dtype=np.dtype(batch["dtype"][i])).reshape(
                json.loads(batch["shape"][i])) for i in good]
            result = self.ex.run(xs, [refs[i] for i in good])
            if result.values is not None:
                raise RuntimeError(f"{self.ex.kind} rows cannot be computed on the Ray engine")
            text = self._rows_text(result.refs, result.blocks or [])
            errors.update((ref.key, reason) for ref, reason in result.failed)
        logs = [""] * len(refs)
        if self.lines and refs:
            logs[0] = "\n".join(self.lines)
            self.lines.clear()
        return {"pos": batch["pos"], "text": np.array([text.get(r.key, "") for r in refs], dtype=object),
                "error": np.array([errors.get(r.key, "") for r in refs], dtype=object),
                "log": np.array(logs, dtype=object), "node": np.array([self.node] * len(refs)),
                "provider": np.array([self.ex.provider] * len(refs)), "pid": np.full(len(refs), self.pid)}

    def _rows_text(self, refs: list[ImageRef], blocks: list[np.ndarray]) -> dict[str, str]:
        """Each image's rows as the partial table's CSV text (an image may give several rows)."""
        from radfeat.output.partial import csv_rows, key_columns

        rows: dict[str, list[int]] = {}
        for i, ref in enumerate(refs):
            rows.setdefault(ref.key, []).append(i)
        out = {}
        for key, idx in rows.items():
            mine = [refs[i] for i in idx]
            out[key] = csv_rows(key_columns(self.n_keys, mine), [np.asarray(b)[idx] for b in blocks]).decode("utf-8")
        return out
