"""Declaration of ``fractal`` (implementation: :mod:`radfeat.extractors.fractal`)."""

from __future__ import annotations

from radfeat.extractors import registry
from radfeat.options import is_int

DEFAULT_MAX_BOX = 41
MAX_MAX_BOX = 255


def _max_box_problem(value: object) -> str | None:
    if not is_int(value) or not 3 <= value <= MAX_MAX_BOX or value % 2 == 0:  # type: ignore[operator]
        return f"Largest box size must be an odd whole number between 3 and {MAX_MAX_BOX}"
    return None


FRACTAL = registry.register(registry.ExtractionType(
    name="fractal",
    label="Fractal texture",
    description="Gliding-box lacunarity, fractal dimension and percolation on the original image; "
                "uses no model weights.",
    extractor="radfeat.extractors.fractal:FractalExtractor",
    columns="<prefix>_fractal_<feature>: lac_r3…, fd_r…, perc_clusters_r…, perc_percolating_r…, "
            "perc_largest_r… for each box size, then curve descriptors",
    order=40,
    default_stem="image_fractal_features",
    options=(registry.Option(
        "max_box", "Largest box size", "int", DEFAULT_MAX_BOX, min=3, max=MAX_MAX_BOX, check=_max_box_problem,
        help="largest box size, odd, at least 3"),),
))
