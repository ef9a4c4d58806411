"""Slow, literal implementation of the fractal features, written from their definitions with plain loops.

It is the yardstick for the vectorised :mod:`radfeat.extractors.fractal_math` in the tests and the benchmark and shares
no code with it.  Definitions (after the public Image-Feature-Extraction-Tools repository, ``Fractal.py``
and ``Curve.py``), for odd box sizes ``r = 3, 5, ..., R``:

* every ``r x r`` box that fits in the image is visited, centred on pixel ``c``;
* a box pixel is occupied when ``max(|R - Rc|, |G - Gc|, |B - Bc|) <= r``; the box mass ``m`` counts them;
* ``P(m)`` = boxes with mass ``m`` / number of boxes;
* lacunarity = (sum m^2 P(m) - (sum m P(m))^2) / (sum m P(m))^2; fractal dimension = sum P(m) / m;
* clusters: 4-connected groups of occupied pixels inside the box; per ``r`` the mean cluster count,
  the fraction of boxes with ``m / r^2 >= 0.59275`` and the mean largest-cluster size / ``r^2``;
* curve descriptors over ``x = r``: trapezoid area ``(x_last - x_first) / (2 n) * sum (y_i + y_(i+1))``,
  population skewness (0 for a flat curve), area of the first ``n // 2`` points / area of the rest, max.
"""

from __future__ import annotations

import math
import statistics

THRESHOLD = 0.59275
NAN = float("nan")


def chessboard_distance(colour_a, colour_b) -> int:
    largest = 0
    for a, b in zip(colour_a, colour_b, strict=True):
        diff = abs(int(a) - int(b))
        if diff > largest:
            largest = diff
    return largest


def count_clusters(grid: list[list[int]]) -> tuple[int, int]:
    """Number of 4-connected clusters of ones in ``grid`` and the size of the largest."""
    rows, cols = len(grid), len(grid[0])
    seen = [[False] * cols for _ in range(rows)]
    clusters = 0
    largest = 0
    for i in range(rows):
        for j in range(cols):
            if grid[i][j] == 0 or seen[i][j]:
                continue
            clusters += 1
            size = 0
            stack = [(i, j)]
            seen[i][j] = True
            while stack:
                a, b = stack.pop()
                size += 1
                for na, nb in ((a - 1, b), (a + 1, b), (a, b - 1), (a, b + 1)):
                    if 0 <= na < rows and 0 <= nb < cols and grid[na][nb] == 1 and not seen[na][nb]:
                        seen[na][nb] = True
                        stack.append((na, nb))
            largest = max(largest, size)
    return clusters, largest


def box_size_features(pixels: list, height: int, width: int, r: int) -> dict[str, float]:
    """lac, fd and the three percolation values for one box size (pixels: nested lists [y][x][channel])."""
    if r > height or r > width:
        return {"lac": NAN, "fd": NAN, "perc_clusters": NAN, "perc_percolating": NAN, "perc_largest": NAN}
    half = r // 2
    box_area = r * r
    boxes_with_mass: dict[int, int] = {}
    cluster_counts = []
    largest_fractions = []
    percolating_boxes = 0
    for y in range(half, height - half):
        for x in range(half, width - half):
            centre = pixels[y][x]
            grid = []
            for i in range(y - half, y + half + 1):
                row = []
                for j in range(x - half, x + half + 1):
                    row.append(1 if chessboard_distance(pixels[i][j], centre) <= r else 0)
                grid.append(row)
            mass = sum(sum(row) for row in grid)
            boxes_with_mass[mass] = boxes_with_mass.get(mass, 0) + 1
            clusters, largest = count_clusters(grid)
            cluster_counts.append(clusters)
            largest_fractions.append(largest / box_area)
            if mass / box_area >= THRESHOLD:
                percolating_boxes += 1
    box_count = (height - r + 1) * (width - r + 1)
    first = 0.0
    second = 0.0
    fd = 0.0
    for mass in range(1, box_area + 1):
        if mass not in boxes_with_mass:
            continue
        prob = boxes_with_mass[mass] / box_count
        first += mass * prob
        second += mass * mass * prob
        fd += prob / mass
    return {
        "lac": (second - first * first) / (first * first),
        "fd": fd,
        "perc_clusters": statistics.mean(cluster_counts),
        "perc_percolating": percolating_boxes / box_count,
        "perc_largest": statistics.mean(largest_fractions),
    }


def curve_area(x: list[float], y: list[float]) -> float:
    n = len(x)
    total = 0.0
    for i in range(n - 1):
        total += y[i] + y[i + 1]
    return (x[n - 1] - x[0]) / (2 * n) * total


def curve_skewness(y: list[float]) -> float:
    n = len(y)
    mean = statistics.mean(y)
    spread = sum((v - mean) ** 2 for v in y) / n
    if spread == 0:
        return 0.0
    return (sum((v - mean) ** 3 for v in y) / n) / math.sqrt(spread**3)


def curve_area_ratio(x: list[float], y: list[float]) -> float:
    split = len(x) // 2
    if split == 0:
        return NAN
    bottom = curve_area(x[split:], y[split:])
    if bottom == 0:
        return NAN
    return curve_area(x[:split], y[:split]) / bottom


def reference_features(image, max_box: int, percolation: bool = True) -> dict[str, float]:
    """Same keys and order as radfeat.extractors.fractal_math.fractal_features, computed the slow way."""
    height, width = len(image), len(image[0])
    pixels = image.tolist() if hasattr(image, "tolist") else image
    sizes = list(range(3, max_box + 1, 2))
    per_r = {r: box_size_features(pixels, height, width, r) for r in sizes}
    families = ["lac", "fd"] + (["perc_clusters", "perc_percolating", "perc_largest"] if percolation else [])
    out: dict[str, float] = {}
    for family in families:
        for r in sizes:
            out[f"{family}_r{r}"] = per_r[r][family]
    curves = ["lac"] + (["perc_clusters", "perc_percolating", "perc_largest"] if percolation else [])
    for curve in curves:
        x = [float(r) for r in sizes]
        y = [out[f"{curve}_r{r}"] for r in sizes]
        if any(math.isnan(v) for v in y):
            values = [NAN, NAN, NAN, NAN]
        else:
            values = [curve_area(x, y), curve_skewness(y), curve_area_ratio(x, y), max(y)]
        for name, value in zip(("area", "skewness", "area_ratio", "max"), values, strict=True):
            out[f"{curve}_{name}"] = value
    return out
