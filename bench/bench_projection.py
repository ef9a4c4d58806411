"""Benchmark: the dataset view's first answers on a large table (default 100 000 rows × 1024 features).

Prints, for each format (CSV as radfeat writes it, Parquet):
  * the time to write the synthetic table (setup, not part of the view);
  * ``table_shape`` (column names + row count), the first thing the view asks;
  * the first page of ``project_table`` (PCA: a pass for the covariance, eigh, a pass to project);
  * a second page (cached: should be ~free);
  * one ``column_values`` page;
  * the process's peak RSS after each step (bounded memory: it should not grow with the row count
    beyond the n × 2 points kept).

    python bench/bench_projection.py [--rows 100000] [--features 1024] [--formats csv,parquet] [--data DIR]

The table is written in a temporary folder (or --data, kept for a rerun) in radfeat's column layout.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def write_table(path: Path, rows: int, features: int, seed: int = 0) -> None:
    """radfeat's layout: level_1, filename, img_densefeatures_i (float32), img_predictions_i, in chunks."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((8, features)).astype(np.float32)  # a few directions carry the variance
    names = (["level_1", "filename"] + [f"img_densefeatures_{i}" for i in range(features)]
             + [f"img_predictions_{i}" for i in range(18)])
    writer = None
    chunk = 5000
    with open(path, "wb") as sink:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            feats = (rng.standard_normal((n, 8)).astype(np.float32) * np.arange(8, 0, -1)) @ basis
            feats += 0.1 * rng.standard_normal((n, features)).astype(np.float32)
            preds = rng.random((n, 18), dtype=np.float32)
            arrays = [pa.array([f"p{(start + i) // 10}" for i in range(n)]),
                      pa.array([f"{start + i}.jpg" for i in range(n)])]
            arrays += [pa.array(feats[:, j]) for j in range(features)] + [pa.array(preds[:, j]) for j in range(18)]
            table = pa.Table.from_arrays(arrays, names=names)
            if path.suffix == ".csv":
                pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=start == 0))
            else:
                writer = writer or pq.ParquetWriter(sink, table.schema, compression="zstd")
                writer.write_table(table)
        if writer is not None:
            writer.close()


def timed(label: str, fn):
    """Wall time, CPU time of this process (all threads: what the work costs on a shared machine), peak RSS."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"  {label:<40} {wall:8.2f} s wall {cpu:8.2f} s CPU   peak RSS {peak_rss_mb():7.0f} MB", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--features", type=int, default=1024)
    ap.add_argument("--formats", default="csv,parquet")
    ap.add_argument("--data", type=Path, default=None, help="folder for the tables (kept); default: a temp folder")
    ap.add_argument("--reread", action="store_true", help="also time the PCA that parses the table twice")
    args = ap.parse_args()

    from radfeat.output.projection import compute, projection
    from radfeat.output.tabular import read_values, table_shape

    print(f"{args.rows} rows × {args.features} features (+18 predictions); peak RSS at start {peak_rss_mb():.0f} MB; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="radfeat-bench-proj-") as tmp:
        folder = args.data or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for fmt in args.formats.split(","):
            path = folder / f"bench_{args.rows}x{args.features}.{fmt}"
            print(f"{fmt}:")
            if not path.is_file():
                timed("write the table (setup)", lambda p=path: write_table(p, args.rows, args.features))
            print(f"  size on disk {path.stat().st_size / 1e6:.0f} MB")
            shape = timed("table_shape (columns, rows)", lambda p=path: table_shape(p))
            assert shape.total == args.rows
            proj = timed("project_table PCA, first page", lambda p=path: projection(p, "pca", "dense", folder))
            timed("project_table, next page (cached)",
                  lambda p=path: projection(p, "pca", "dense", folder).points[20000:40000])
            if args.reread:
                timed("PCA without the spill file (reads twice)", lambda p=path: compute(p, "pca", "dense"))
            timed("column_values, one page of 20000", lambda p=path: read_values(p, "img_predictions_0", 0, 20000, True))
            ratio = ", ".join(f"{r:.3f}" for r in proj.explained_variance_ratio)
            print(f"  points {proj.points.shape}, explained variance ratio {ratio}")


if __name__ == "__main__":
    main()
