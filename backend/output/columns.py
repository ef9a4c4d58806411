"""Column names of the result table, as MEDomics writes them.

``level_1 … level_<depth>``, ``filename``, then the type's columns, named
``<prefix>_<family>_<i or name>``: ``densefeatures``, ``predictions``, ``resnetfeatures``, ``latent``,
``fractal_<feature>``, ``<onnx output>_<i>``.  A saliency run writes a listing instead (one row per
map: levels, filename, pathology, method, style, prediction, path).
"""

from __future__ import annotations

from pathlib import Path

# Text columns of the saliency listing (feature columns always start with the prefix and an underscore).
LISTING_TEXT_COLUMNS = ("pathology", "method", "style", "path", "mask_path")
FAMILY_NAMES = {"dense": "densefeatures", "predictions": "predictions"}  # --features word -> column family


def level_columns(depth: int) -> list[str]:
    return [f"level_{i}" for i in range(1, depth + 1)]


def block_names(prefix: str, family: str, n: int) -> list[str]:
    """``<prefix>_<family>_0 … _<n-1>``."""
    return [f"{prefix}_{family}_{i}" for i in range(n)]


def feature_columns(prefix: str, family: str, n: int) -> list[str]:
    """The columns of a ``--features`` family (``dense`` or ``predictions``)."""
    return block_names(prefix, FAMILY_NAMES[family], n)


def is_text_column(name: str) -> bool:
    """Key and listing columns, and DICOM tag columns (keywords: letters and digits only, while every
    number column is ``<prefix>_<family>_…``)."""
    return name.startswith("level_") or name == "filename" or name in LISTING_TEXT_COLUMNS or name.isalnum()


def sidecar(output: Path, suffix: str) -> Path:
    """``image_extracted_features.csv`` → ``image_extracted_features<suffix>`` in the same folder."""
    return output.with_name(output.stem + suffix)
