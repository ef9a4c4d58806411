"""2-D projections of a result table for the dataset view: exact PCA, optional UMAP.

PCA is computed from the covariance matrix, streaming: one pass over the chosen
columns accumulates the column sums and ``XᵀX`` of shifted data (float32 products
summed in float64; the shift by the first chunk's mean keeps the centring exact), a
symmetric eigendecomposition gives the components, and a second pass projects the rows.
The second pass reads the float32 rows back from an unnamed temporary file written during the
first (in a folder the caller names, in the workspace) instead of parsing a CSV again; without
that folder it reads the table again.
Memory is one chunk plus a ``d × d`` matrix, whatever the row count; the answer is the
same as an exact (full SVD) PCA up to floating-point rounding.  Signs follow
scikit-learn's convention: in each component the entry of largest magnitude is positive,
so the picture does not flip between runs.

UMAP runs only when the optional ``umap-learn`` package is installed (on the first 50
principal components, seeded); PCA never needs it.

Results are cached in memory per file version (path, size, mtime), method and column
set, in a small LRU, so the page can page through the points cheaply.
"""

from __future__ import annotations

import collections
import contextlib
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from radfeat.output.tabular import column_kinds, file_key, iter_columns, table_shape

METHODS = ("pca", "umap")
COLUMN_SETS = ("dense", "all")
CACHE_ENTRIES = 4
UMAP_PCA_DIMS = 50


class ProjectionError(ValueError):
    """The table cannot be projected as asked (no numeric columns, UMAP not installed, …)."""


@dataclass(frozen=True)
class Projection:
    method: str
    points: np.ndarray  # n × 2, float32, in table row order
    columns: tuple[str, ...]
    explained_variance: tuple[float, ...] = ()
    explained_variance_ratio: tuple[float, ...] = ()


@dataclass(frozen=True)
class Pca:
    mean: np.ndarray  # d, float64
    components: np.ndarray  # k × d, float64, rows of unit length
    explained_variance: np.ndarray  # k
    total_variance: float
    rows: int


def projected_columns(columns: Sequence[str], which: str) -> list[str]:
    """The numeric columns a projection uses: the model's features (``dense``) or every numeric one."""
    kinds = column_kinds(columns)
    numeric = [c for c in columns if kinds[c] in ("feature", "prediction", "fractal")]
    dense = [c for c in numeric if kinds[c] == "feature"]
    return dense if which == "dense" and dense else numeric


def _flip_signs(components: np.ndarray) -> np.ndarray:
    """Largest-magnitude entry of each component positive (scikit-learn's ``svd_flip`` on components)."""
    idx = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(components.shape[0]), idx])
    signs[signs == 0] = 1.0
    return components * signs[:, None]


def _finite(centred: np.ndarray) -> np.ndarray:
    """Empty cells (NaN) and infinities become 0 in a centred block, in place; one pass when there are none."""
    bad = ~np.isfinite(centred)
    if bad.any():
        centred[bad] = 0.0
    return centred


def _chunks(path: Path, columns: Sequence[str]) -> Iterator[np.ndarray]:
    """The chosen columns as float32 blocks, *transposed* (``d × rows``, C order): Arrow copies the
    columns into one column-major tensor in a single call (empty cells become NaN), and
    ``block @ block.T`` is BLAS's symmetric rank-k update."""
    for batch in iter_columns(path, columns, numeric=True):
        yield np.asarray(batch.to_tensor(null_to_nan=True, row_major=False)).T


class _Spill:
    """The transposed blocks of the first pass, written to ``file`` and read back in the same pieces."""

    def __init__(self, file: IO[bytes] | None):
        self.file = file
        self.sizes: list[int] = []

    def write(self, block: np.ndarray) -> None:
        if self.file is not None:
            self.file.write(block.tobytes())
            self.sizes.append(block.shape[1])

    def blocks(self, d: int) -> Iterator[np.ndarray]:
        assert self.file is not None
        self.file.seek(0)
        for n in self.sizes:
            yield np.frombuffer(self.file.read(n * d * 4), dtype=np.float32).reshape(d, n)


def fit_pca(path: str | Path, columns: Sequence[str], k: int = 2, spill: _Spill | None = None) -> Pca:
    """Mean, top ``k`` components and their variances of ``columns`` (one streaming pass).

    ``spill`` receives the float32 values as they are read, so that :func:`transform` reads them back
    instead of parsing the table a second time.
    """
    d = len(columns)
    shift: np.ndarray | None = None
    total = np.zeros(d, dtype=np.float64)
    gram = np.zeros((d, d), dtype=np.float64)
    n = 0
    for block in _chunks(Path(path), columns):
        if shift is None:
            shift = np.nan_to_num(np.nanmean(block, axis=1, dtype=np.float64)).astype(np.float32)
        centred = _finite(block - shift[:, None])  # a missing value counts as the (shifted) mean
        total += centred.sum(axis=1, dtype=np.float64)
        gram += centred @ centred.T  # float32 symmetric rank-k update, summed in float64
        n += block.shape[1]
        if spill is not None:
            spill.write(block)
    if n < 2:
        raise ProjectionError("A projection needs at least 2 rows")
    mean_shifted = total / n
    cov = (gram - n * np.outer(mean_shifted, mean_shifted)) / (n - 1)
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1][:k]
    comps = _flip_signs(vectors[:, order].T)
    variances = np.clip(values[order], 0.0, None)
    return Pca(shift.astype(np.float64) + mean_shifted, comps, variances, float(max(np.trace(cov), 0.0)), n)


def transform(path: str | Path, columns: Sequence[str], pca: Pca, spill: _Spill | None = None) -> np.ndarray:
    """Every row projected on the components: from ``spill`` when it holds the rows, else a second pass."""
    out = np.empty((pca.rows, pca.components.shape[0]), dtype=np.float32)
    comps = pca.components.astype(np.float32)
    mean = pca.mean.astype(np.float32)[:, None]
    at = 0
    kept = spill is not None and spill.file is not None
    for block in (spill.blocks(len(columns)) if kept else _chunks(Path(path), columns)):
        n = block.shape[1]
        if at + n > pca.rows:
            raise ProjectionError("The table changed while it was being read; try again")
        out[at:at + n] = (comps @ _finite(block - mean)).T
        at += n
    if at != pca.rows:
        raise ProjectionError("The table changed while it was being read; try again")
    return out


@contextlib.contextmanager
def _spill_file(folder: Path | None) -> Iterator[_Spill]:
    """A spill over an unnamed temporary file in ``folder`` (gone even after a crash where the OS
    allows), or one that keeps nothing when there is no folder."""
    if folder is None:
        yield _Spill(None)
        return
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder, prefix=".radfeat-projection-") as fh:
        yield _Spill(fh)


def _umap(path: Path, columns: Sequence[str], spill_dir: Path | None) -> np.ndarray:
    try:
        import umap
    except ImportError:
        raise ProjectionError("UMAP needs the optional package umap-learn (pip install umap-learn); "
                              "PCA works without it") from None
    with _spill_file(spill_dir) as spill:
        pca = fit_pca(path, columns, k=min(UMAP_PCA_DIMS, len(columns)), spill=spill)
        reduced = transform(path, columns, pca, spill)
    return umap.UMAP(n_components=2, random_state=0).fit_transform(reduced).astype(np.float32)


def compute(path: str | Path, method: str = "pca", which: str = "dense", spill_dir: Path | None = None) -> Projection:
    """Project the table at ``path`` to 2-D (no cache; see :func:`projection`).

    ``spill_dir``: where the rows read in the first pass may be kept (a temporary file, deleted at
    once) so the second pass does not parse the table again; None reads the table twice.
    """
    path = Path(path)
    if method not in METHODS:
        raise ProjectionError(f"Projection method must be one of: {', '.join(METHODS)}")
    if which not in COLUMN_SETS:
        raise ProjectionError(f"Columns must be one of: {', '.join(COLUMN_SETS)}")
    columns = projected_columns(table_shape(path).columns, which)
    if not columns:
        raise ProjectionError(f"{path.name} has no numeric feature columns to project")
    if method == "umap":
        return Projection("umap", _umap(path, columns, spill_dir), tuple(columns))
    with _spill_file(spill_dir) as spill:
        pca = fit_pca(path, columns, k=min(2, len(columns)), spill=spill)
        points = transform(path, columns, pca, spill)
    if points.shape[1] < 2:  # a single column: the second axis is 0
        points = np.column_stack([points, np.zeros(len(points), dtype=np.float32)])
    ratio = pca.explained_variance / pca.total_variance if pca.total_variance > 0 else pca.explained_variance * 0
    return Projection("pca", points, tuple(columns), tuple(map(float, pca.explained_variance)),
                      tuple(map(float, ratio)))


_cache: collections.OrderedDict[tuple, Projection] = collections.OrderedDict()
_cache_lock = threading.Lock()
_compute_lock = threading.Lock()  # one projection at a time: two would only share the same cores


def projection(path: str | Path, method: str = "pca", which: str = "dense",
               spill_dir: Path | None = None) -> Projection:
    """:func:`compute`, cached per file version, method and column set (small in-memory LRU)."""
    key = (*file_key(Path(path)), method, which)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    with _compute_lock:
        with _cache_lock:  # computed by another request while this one waited
            if key in _cache:
                return _cache[key]
        result = compute(path, method, which, spill_dir)
        with _cache_lock:
            _cache[key] = result
            while len(_cache) > CACHE_ENTRIES:
                _cache.popitem(last=False)
    return result
