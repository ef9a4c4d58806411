"""Time the vectorised fractal features on a 512x512 image against the slow reference, extrapolated.

    python bench/bench_fractal.py [--size 512] [--max-box 41] [--workers N]

The slow reference (tests/fractal_reference.py) visits, for every box size r, every box and every
pixel in it, and flood-fills the box's occupied map: its work is proportional to

    cells(H, W, R) = sum over r = 3, 5, ..., R of (H - r + 1) (W - r + 1) r^2

i.e. O(H W R^3) (O(n^5) when R grows with the image side n, as the source repository notes).  It is
timed on small images, its cost per cell is measured (and shown to be roughly constant), and that
cost times cells(512, 512, 41) is the extrapolated time.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fractal_reference import reference_features  # noqa: E402
from radfeat.extractors import fractal_math as fractal  # noqa: E402
from radfeat.synthetic import chest_like  # noqa: E402


def cells(height: int, width: int, max_box: int) -> int:
    return sum((height - r + 1) * (width - r + 1) * r * r
               for r in range(3, max_box + 1, 2) if r <= min(height, width))


def colour_texture(size: int, seed: int = 0) -> np.ndarray:
    """A deterministic colour texture: smooth colour fields, blobs and sensor noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = np.stack([150 + 60 * np.sin(6 * xx + 2 * yy), 110 + 50 * np.cos(5 * yy - 3 * xx),
                     170 + 40 * np.sin(9 * xx * yy)], axis=2)
    blobs = np.zeros((size, size), np.float32)
    for _ in range(40):
        cy, cx, s = rng.random(3)
        blobs += np.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (0.0005 + 0.003 * s)))
    img = base - 70 * blobs[:, :, None] * np.array([0.6, 1.0, 0.3])
    img += rng.normal(0, 5, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def timed(fn, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fractal.FractalWarning)
        out = fn(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--max-box", type=int, default=41)
    ap.add_argument("--workers", type=int, default=None, help="threads (default: available CPUs, at most 16)")
    args = ap.parse_args()
    workers = args.workers or fractal._default_workers()
    n, big_r = args.size, args.max_box

    print(f"CPUs available: {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()}, "
          f"workers: {workers}, labeller: {fractal._labeller()}, load average: "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg()) if hasattr(os, 'getloadavg') else 'n/a'}")

    # Slow reference on small images: cost per cell, and agreement with the vectorised code.
    print("\nslow reference (plain Python loops) on small images:")
    costs = []
    for size, max_box in ((20, 9), (28, 11), (36, 13)):
        img = colour_texture(size, seed=size)
        ref, wall, _ = timed(reference_features, img, max_box)
        fast, _, _ = timed(fractal.fractal_features, img, max_box, workers=1)
        worst = max((abs(fast[k] - v) / max(abs(v), 1e-300) if v else abs(fast[k]))
                    for k, v in ref.items() if not math.isnan(v))
        c = cells(size, size, max_box)
        costs.append(wall / c)
        print(f"  {size}x{size}, R={max_box}: {wall:6.2f} s for {c:,} box cells = {wall / c * 1e9:6.0f} ns/cell; "
              f"vectorised agrees to {worst:.1e} (relative)")
    cost = statistics.median(costs)
    big_cells = cells(n, n, big_r)
    extrapolated = cost * big_cells

    print(f"\nvectorised fractal_features on {n}x{n}, R={big_r} ({big_cells:,} box cells):")
    results = {}
    for name, img in (("colour texture", colour_texture(n)),
                      ("chest-like grey", np.repeat(chest_like(n, n, 1)[:, :, None], 3, axis=2))):
        _, wall_lac, cpu_lac = timed(fractal.fractal_features, img, big_r, percolation=False, workers=workers)
        out, wall, cpu = timed(fractal.fractal_features, img, big_r, workers=workers)
        results[name] = wall
        print(f"  {name:16s} all features: {wall:6.1f} s wall, {cpu:6.1f} s CPU | lacunarity + fd only: "
              f"{wall_lac:5.1f} s wall, {cpu_lac:5.1f} s CPU | lac_r{big_r}={out[f'lac_r{big_r}']:.4f} "
              f"perc_clusters_r{big_r}={out[f'perc_clusters_r{big_r}']:.3f}")

    print(f"\nslow reference extrapolated to {n}x{n}, R={big_r}: {cost * 1e9:.0f} ns/cell x {big_cells:,} cells = "
          f"{extrapolated:,.0f} s ({extrapolated / 3600:.1f} h), complexity O(H W R^3)")
    for name, wall in results.items():
        print(f"  speed-up on {name}: {extrapolated / wall:,.0f}x")


if __name__ == "__main__":
    main()
