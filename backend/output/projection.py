"""2-D projections of a result table for the dataset view: exact PCA, optional UMAP.

PCA is computed from the covariance matrix, streaming: one pass over the chosen
columns accumulates the column sums and ``XᵀX`` of shifted data (float32 symmetric rank-k
updates summed in float64; the shift by the first chunk's mean keeps the centring exact),
a symmetric eigensolver computes only the top components (LAPACK ``syevr`` on a subset, one
BLAS thread: multithreaded LAPACK on a ``d × d`` matrix spends its time waiting), and a
second step projects the rows.  The second step does not parse the table again: the shifted
float32 rows of the first pass are kept in memory while they fit :data:`KEEP_BYTES`, else in an
unnamed temporary file in a folder the caller names (in the workspace); without that folder the
table is read again.
Memory is one chunk plus a ``d × d`` matrix (plus the kept rows, bounded), whatever the row
count; the answer is the same as an exact (full SVD) PCA up to floating-point rounding.
Signs follow scikit-learn's convention: in each component the entry of largest magnitude is
positive, so the picture does not flip between runs.

UMAP runs only when the optional ``umap-learn`` package is installed (on the first 50
principal components, seeded); PCA never needs it.

Results are cached in memory per file version (path, size, mtime), method and column
set, in a small LRU, so the page can page through the points cheaply.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from radfeat.output.tabular import column_kinds, file_key, iter_columns, table_shape
from threadpoolctl import threadpool_limits

METHODS = ("pca", "umap")
COLUMN_SETS = ("dense", "all")
CACHE_ENTRIES = 4
UMAP_PCA_DIMS = 50
KEEP_BYTES = 1 << 30  # rows kept in memory between the fit and the projection, up to this size


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
    shift: np.ndarray  # d, float32: the first chunk's mean, subtracted from every block as it is read


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


def _chunks(path: Path, columns: Sequence[str], whole: bool = False) -> Iterator[np.ndarray]:
    """The chosen columns as writable float32 blocks, *transposed* (``d × rows``, C order): Arrow copies
    the columns into one column-major tensor in a single call (empty cells become NaN), and
    ``block @ block.T`` is BLAS's symmetric rank-k update.  ``whole``: see :func:`iter_columns`."""
    for batch in iter_columns(path, columns, numeric=True, whole=whole):
        holes = any(column.null_count for column in batch.columns)  # null_to_nan costs 15× the copy itself
        yield np.asarray(batch.to_tensor(null_to_nan=holes, row_major=False)).T


def _prefetched(blocks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """``blocks``, the next one read by a helper thread while the caller works on the current one
    (Arrow's decoding and BLAS both release the GIL: the two overlap on two cores)."""
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="radfeat-projection") as pool:
        ahead = pool.submit(next, blocks, None)
        while (block := ahead.result()) is not None:
            ahead = pool.submit(next, blocks, None)
            yield block


def _shifted(block: np.ndarray, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``block - shift`` in place, empty cells and infinities set to 0 (the shift), and its row sums.

    The sums tell for free whether anything was not finite; only then is the block scanned."""
    if not block.flags.writeable:
        block = block.copy()
    block -= shift[:, None]
    sums = block.sum(axis=1, dtype=np.float64)
    if not np.isfinite(sums).all():
        block[~np.isfinite(block)] = 0.0
        sums = block.sum(axis=1, dtype=np.float64)
    return block, sums


def _first_mean(block: np.ndarray) -> np.ndarray:
    """Each column's mean in the first block (float32), over its finite cells (0 when it has none)."""
    mean = block.mean(axis=1, dtype=np.float64)
    if not np.isfinite(mean).all():
        with np.errstate(all="ignore"):
            finite = np.isfinite(block)
            mean = np.where(finite, block, 0).sum(axis=1, dtype=np.float64) / np.maximum(finite.sum(axis=1), 1)
    return mean.astype(np.float32)


class _Rows:
    """The shifted blocks of the first pass, kept for the second: in memory up to ``limit`` bytes, past
    that all in a file that ``open_file`` makes (same pieces); without it, nothing is kept then."""

    def __init__(self, limit: int, open_file: Callable[[], IO[bytes]] | None = None):
        self.limit, self.open_file = limit, open_file
        self.file: IO[bytes] | None = None
        self.memory: list[np.ndarray] | None = []
        self.kept = 0
        self.sizes: list[int] = []
        self.lost = False

    def add(self, block: np.ndarray) -> None:
        if self.lost:
            return
        if self.memory is not None:
            if self.kept + block.nbytes <= self.limit:
                self.memory.append(block)
                self.kept += block.nbytes
                return
            held, self.memory = self.memory, None
            if self.open_file is None:
                self.lost = True
                return
            self.file = self.open_file()
            for b in held:
                self._write(b)
        self._write(block)

    def _write(self, block: np.ndarray) -> None:
        assert self.file is not None
        self.file.write(memoryview(np.ascontiguousarray(block)).cast("B"))
        self.sizes.append(block.shape[1])

    def blocks(self, d: int) -> Iterator[np.ndarray]:
        if self.memory is not None:
            yield from self.memory
            return
        assert self.file is not None
        self.file.seek(0)
        for n in self.sizes:
            block = np.empty((d, n), dtype=np.float32)
            if self.file.readinto(memoryview(block).cast("B")) != block.nbytes:
                raise ProjectionError("The temporary copy of the rows was cut short; try again")
            yield block


def _top_eigen(cov: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest eigenvalues (descending) and their eigenvectors (columns) of symmetric ``cov``.

    LAPACK's ``syevr`` on the wanted subset only, with one BLAS thread: on a ``d × d`` matrix the
    threads mostly wait for each other (10× the CPU time and more on a busy machine)."""
    from scipy.linalg import eigh

    d = cov.shape[0]
    with threadpool_limits(limits=1, user_api="blas"):
        values, vectors = eigh(cov, subset_by_index=[d - k, d - 1], driver="evr", check_finite=False)
    return values[::-1], vectors[:, ::-1]


def fit_pca(path: str | Path, columns: Sequence[str], k: int = 2, rows: _Rows | None = None) -> Pca:
    """Mean, top ``k`` components and their variances of ``columns`` (one streaming pass).

    ``rows`` receives the shifted float32 blocks as they are read, so that :func:`transform` uses them
    instead of parsing the table a second time.  An empty cell counts as the shift (the first chunk's
    mean of its column), in the fit and in the projection alike.
    """
    d = len(columns)
    shift: np.ndarray | None = None
    total = np.zeros(d, dtype=np.float64)
    gram = np.zeros((d, d), dtype=np.float64)
    n = 0
    expected = table_shape(path).total * d * 4  # bytes of float32 rows
    if rows is not None and expected > rows.limit:
        rows.limit = 0  # too large to keep in memory: straight to the file, not after 1 GiB
    whole = rows is not None and Path(path).suffix != ".parquet" and expected <= rows.limit  # kept anyway
    with threadpool_limits(limits=1, user_api="blas"):  # the reading thread has the other core
        for block in _prefetched(_chunks(Path(path), columns, whole)):
            if shift is None:
                shift = _first_mean(block)
            block, sums = _shifted(block, shift)
            total += sums
            gram += block @ block.T  # float32 symmetric rank-k update, summed in float64
            n += block.shape[1]
            if rows is not None:
                rows.add(block)
    if n < 2:
        raise ProjectionError("A projection needs at least 2 rows")
    mean_shifted = total / n
    cov = (gram - n * np.outer(mean_shifted, mean_shifted)) / (n - 1)
    values, vectors = _top_eigen(cov, k)
    comps = _flip_signs(vectors.T)
    variances = np.clip(values, 0.0, None)
    total_variance = float(max(np.trace(cov), 0.0))
    return Pca(shift.astype(np.float64) + mean_shifted, comps, variances, total_variance, n, shift)


def transform(path: str | Path, columns: Sequence[str], pca: Pca, rows: _Rows | None = None) -> np.ndarray:
    """Every row projected on the components: from ``rows`` when it holds them, else a second pass."""
    out = np.empty((pca.rows, pca.components.shape[0]), dtype=np.float32)
    comps_t = np.ascontiguousarray(pca.components.T, dtype=np.float32)  # d × k
    offset = (pca.components @ (pca.mean - pca.shift)).astype(np.float32)  # the shifted blocks' mean, projected
    at = 0
    kept = rows is not None and not rows.lost
    for block in (rows.blocks(len(columns)) if kept else _chunks(Path(path), columns)):
        if not kept:
            block, _ = _shifted(block, pca.shift)
        n = block.shape[1]
        if at + n > pca.rows:
            raise ProjectionError("The table changed while it was being read; try again")
        np.matmul(block.T, comps_t, out=out[at:at + n])
        out[at:at + n] -= offset
        at += n
    if at != pca.rows:
        raise ProjectionError("The table changed while it was being read; try again")
    return out


@contextlib.contextmanager
def _kept_rows(folder: Path | None, limit: int | None = None) -> Iterator[_Rows]:
    """Rows kept between the two steps: in memory up to ``limit`` bytes (:data:`KEEP_BYTES`), past that
    in an unnamed temporary file in ``folder`` (gone even after a crash where the OS allows), created
    only when needed; without a folder, rows that outgrow memory are read from the table again."""
    limit = KEEP_BYTES if limit is None else limit
    if folder is None:
        yield _Rows(limit)
        return
    with contextlib.ExitStack() as stack:
        def open_file() -> IO[bytes]:
            folder.mkdir(parents=True, exist_ok=True)
            return stack.enter_context(tempfile.TemporaryFile(dir=folder, prefix=".radfeat-projection-"))

        yield _Rows(limit, open_file)


def _umap(path: Path, columns: Sequence[str], spill_dir: Path | None) -> np.ndarray:
    try:
        import umap
    except ImportError:
        raise ProjectionError("UMAP needs the optional package umap-learn (pip install umap-learn); "
                              "PCA works without it") from None
    with _kept_rows(spill_dir) as rows:
        pca = fit_pca(path, columns, k=min(UMAP_PCA_DIMS, len(columns)), rows=rows)
        reduced = transform(path, columns, pca, rows)
    return umap.UMAP(n_components=2, random_state=0).fit_transform(reduced).astype(np.float32)


def compute(path: str | Path, method: str = "pca", which: str = "dense", spill_dir: Path | None = None) -> Projection:
    """Project the table at ``path`` to 2-D (no cache; see :func:`projection`).

    The rows read in the first pass are kept in memory up to :data:`KEEP_BYTES`; past that in a
    temporary file in ``spill_dir`` (unnamed, deleted at once), so the second step does not parse the
    table again; with no ``spill_dir`` such a large table is read twice.
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
    with _kept_rows(spill_dir) as rows:
        pca = fit_pca(path, columns, k=min(2, len(columns)), rows=rows)
        points = transform(path, columns, pca, rows)
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
