"""``radfeat extract --head MODEL.onnx``: add the scores of fitted heads as columns of a run.

:class:`HeadedExtractor` wraps the run's extractor: after each batch it gathers the head's feature
columns from the batch's blocks (by name, in the head's order) and appends one column per head,
``<prefix>_head_<name>``: the positive class's probability.  Only ONNX Runtime is used.  A head
whose columns the run does not produce is refused before the first image, naming them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from radfeat.extractors.base import BatchResult, Extractor
from radfeat.fit.head import Head, HeadError
from radfeat.options import OptionsError, Problem
from radfeat.pipeline.discovery import ImageRef


def head_problems(heads: object, kind: Any) -> list[Problem]:
    """Problems with the ``head`` option that show without running anything (``kind``: the extraction type)."""
    if heads is None:
        return []
    if not isinstance(heads, list) or not all(isinstance(h, str) and h for h in heads):
        return [Problem("head", "Heads must be a list of ONNX files made by 'radfeat fit'")]
    if getattr(kind, "no_master_table", None):  # a type whose table lists files (saliency maps), not features
        return [Problem("head", f"Heads score feature tables; {kind.label.lower()} give a listing of files")]
    problems = []
    for h in heads:
        try:
            Head.load(h)
        except HeadError as exc:
            problems.append(Problem("head", str(exc)))
    names = [Head.load(h).name for h in heads] if not problems else []
    if len(set(names)) != len(names):
        problems.append(Problem("head", "Two heads have the same name; each gives one column"))
    return problems


class HeadedExtractor(Extractor):
    """An extractor plus head columns; everything else is the wrapped extractor's."""

    def __init__(self, inner: Extractor) -> None:
        super().__init__(inner.opts, inner.wset, inner.threads, inner.log)
        self.inner = inner
        self.kind = inner.kind
        self.float64 = inner.float64
        self.heads: list[Head] = []
        self.picks: list[np.ndarray] = []

    def describe(self) -> str:
        return self.inner.describe()

    def prepare(self) -> None:
        self.inner.prepare()
        self.provider = self.inner.provider
        self.batch_size = self.inner.batch_size
        own = self.inner.columns()
        where = {c: i for i, c in enumerate(own)}
        problems = []
        for path in self.opts.head or []:
            head = Head.load(path, threads=self.threads)
            missing = head.missing(own)
            if missing:
                shown = ", ".join(missing[:4]) + (f" … ({len(missing)} in all)" if len(missing) > 4 else "")
                problems.append(Problem("head", f"Head '{head.name}' needs columns this run does not make: {shown}"))
                continue
            self.heads.append(head)
            self.picks.append(np.array([where[c] for c in head.columns], dtype=np.int64))
        if problems:
            raise OptionsError(problems)

    def columns(self) -> list[str]:
        return self.inner.columns() + [f"{self.opts.prefix}_head_{h.name}" for h in self.heads]

    def fingerprint(self) -> dict[str, Any]:
        from radfeat.weights.digest import sha256_file

        return {**self.inner.fingerprint(), "heads": [sha256_file(h.path) for h in self.heads]}

    def start_line(self) -> str:
        return f"{self.inner.start_line()}; heads {', '.join(h.name for h in self.heads)}"

    def load(self, ref: ImageRef) -> Any:
        return self.inner.load(ref)

    def run(self, items: Sequence[Any], refs: Sequence[ImageRef]) -> BatchResult:
        result = self.inner.run(items, refs)
        if not result.refs:
            return result
        if result.values is not None:  # rows of mixed types (e.g. anatomy with mask files): one list per column
            for h, pick in zip(self.heads, self.picks, strict=True):
                x = np.array([result.values[i] for i in pick], dtype=np.float64).T
                result.values.append(h.scores(x).tolist())
            return result
        features = np.concatenate([np.asarray(b, dtype=np.float64) for b in result.blocks or []], axis=1)
        scores = [h.scores(features[:, pick])[:, None] for h, pick in zip(self.heads, self.picks, strict=True)]
        result.blocks = [*(result.blocks or []), *scores]
        return result

    def provenance(self) -> dict[str, Any]:
        from radfeat.weights.digest import sha256_file

        own = self.inner.provenance()
        own["heads"] = [{"name": h.name, "file": str(h.path), "sha256": sha256_file(h.path),
                         "target": h.meta.get("target"), "positive": h.meta.get("positive"),
                         "model": h.meta.get("model"), "cv_auc": h.meta.get("cv_auc"),
                         "columns": len(h.columns)} for h in self.heads]
        return own

    def finish(self, summary: Any) -> None:
        self.inner.finish(summary)


def with_heads(ex: Extractor) -> Extractor:
    return HeadedExtractor(ex) if ex.opts.head else ex


def resolve_heads(heads: list[str] | None) -> list[str] | None:
    return None if heads is None else [str(Path(h).expanduser().resolve()) for h in heads]
