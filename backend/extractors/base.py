"""The extractor abstraction: what one extraction type contributes to the shared pipeline.

:func:`radfeat.pipeline.run.extract` owns everything every type shares — discovery, the decode
thread pool with its bounded read-ahead, batching, the streaming partial table with resume, the
errors file, cancel, the final formats (CSV, Parquet, ARFF), the master table and provenance.  An
:class:`Extractor` supplies only what differs:

========================  ====================================================================
``prepare()``             heavy set-up before the first image (weights, ONNX export, sessions)
``columns()``             the table's columns after ``level_*`` and ``filename``
``fingerprint()``         the settings a partial result must share to be resumed
``load(ref)``             runs in a decode thread: read + preprocess one image (raise
                          :class:`~radfeat.pipeline.images.ImageError` for a bad one)
``run(items)``            runs in the main thread: a batch of loaded images → :class:`BatchResult`
``provenance()``          what is recorded beside the table (weights, export, settings)
========================  ====================================================================

Each type is declared in a light module of :mod:`radfeat.extractors.declarations` (see
:mod:`radfeat.extractors.registry`) and implemented in one module of this package (``densenet.py``,
``encoder.py``, ``onnx_model.py``, ``fractal.py``, ``saliency.py``, ``anatomy.py``).  Columns
are named ``<prefix>_<family>_<i or name>``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from radfeat.extractors import registry
from radfeat.options import ExtractOptions
from radfeat.pipeline.discovery import ImageRef


@dataclass
class BatchResult:
    """Rows produced from one batch.

    ``refs`` has one entry per output row (an image may give several rows, e.g. saliency maps).
    Either ``blocks`` (float matrices, rows × k, in column order) or ``values`` (one list per
    non-key column, any types) holds the row data.  ``failed`` lists images that could not be
    processed, with the reason; the run goes on without them.
    """

    refs: list[ImageRef] = field(default_factory=list)
    blocks: list[np.ndarray] | None = None
    values: list[list[Any]] | None = None
    failed: list[tuple[ImageRef, str]] = field(default_factory=list)


class Extractor:
    """Base class; see the module docstring for the contract."""

    kind = ""
    float64 = False  # keep features as float64 in the table (default: float32, as the models compute them)

    def __init__(self, opts: ExtractOptions, wset: Any, threads: int, log: Callable[[str], None]) -> None:
        self.opts = opts
        self.wset = wset
        self.threads = threads
        self.log = log
        self.provider = ""
        self.batch_size = opts.batch_size

    # -- set-up --------------------------------------------------------------
    def describe(self) -> str:
        """Shown while preparing."""
        return f"Preparing {self.wset.name}" if self.wset is not None else f"Preparing {self.kind}"

    def prepare(self) -> None:
        """Weights, exports, sessions: everything before the first image."""

    def columns(self) -> list[str]:
        raise NotImplementedError

    def fingerprint(self) -> dict[str, Any]:
        raise NotImplementedError

    def start_line(self) -> str:
        """The log line that opens the run (after the image counts)."""
        return f"{self.kind} extraction, batch {self.batch_size}"

    # -- per image / per batch -----------------------------------------------
    def load(self, ref: ImageRef) -> Any:
        raise NotImplementedError

    def run(self, items: Sequence[Any], refs: Sequence[ImageRef]) -> BatchResult:
        raise NotImplementedError

    # -- end -------------------------------------------------------------------
    def provenance(self) -> dict[str, Any]:
        return {}

    def finish(self, summary: Any) -> None:
        """Called once the table is written (not after a cancel)."""


def make_extractor(opts: ExtractOptions, wset: Any, threads: int, log: Callable[[str], None]) -> Extractor:
    """The extractor for ``opts.type`` (options already validated)."""
    kind = registry.get(opts.type)
    if kind is None:
        raise ValueError(f"unknown extraction type {opts.type!r}")
    from radfeat.fit.apply import with_heads

    return with_heads(kind.extractor_class()(opts, wset, threads, log))
