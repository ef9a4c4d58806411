"""Declaration of ``saliency`` (implementation: :mod:`radfeat.extractors.saliency`): its options and their checks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from radfeat.errors import Problem
from radfeat.extractors import registry
from radfeat.extractors.declarations.densenet import DENSENET

if TYPE_CHECKING:
    from radfeat.options import ExtractOptions

LISTING_COLUMNS = ["pathology", "method", "style", "prediction", "path"]
SALIENCY_SUBDIR = Path("DATA") / "saliency"
METHODS = ("gradcam", "gradcampp", "eigencam", "lime")
CLASS_METHODS = ("gradcam", "gradcampp", "lime")  # one map per pathology (eigencam: one per image)
STYLES = ("gray", "colormap", "overlay", "multiply")


def saliency_folder(opts: ExtractOptions) -> Path:
    """Where a run's maps go: ``<workspace>/DATA/saliency/<table name>`` (the workspace resolved, nothing below it)."""
    return Path(opts.workspace).expanduser().resolve() / SALIENCY_SUBDIR / opts.output_path().stem


LIME_SEGMENTATIONS = ("slic", "quickshift")


def lime_missing() -> str | None:
    """Why LIME cannot run here, or None."""
    try:
        import lime.lime_base  # noqa: F401
        import lime.wrappers.scikit_image  # noqa: F401
        import skimage.segmentation  # noqa: F401
    except ImportError:
        return ("LIME needs the lime and scikit-image packages, which are not installed; "
                "install them with: pip install 'radfeat[explain]'")
    return None


def _int_check(low: int, high: int, what: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        return None if ok else f"{what} must be a whole number between {low} and {high}"
    return check


# The LIME options (radfeat.extractors.lime_maps computes the maps).
LIME_OPTIONS = (
    registry.Option("lime_samples", "LIME samples", "int", 1000, min=10, max=100000,
                    check=_int_check(10, 100000, "LIME samples"),
                    help="lime: perturbed images per image (cost grows with it)"),
    registry.Option("lime_features", "LIME superpixels kept", "int", 5, min=1, max=1000,
                    check=_int_check(1, 1000, "LIME features"), help="lime: superpixels kept in each map"),
    registry.Option("lime_segmentation", "LIME superpixels", "choice", "slic", choices=LIME_SEGMENTATIONS,
                    check=lambda v: None if v in LIME_SEGMENTATIONS else
                    f"LIME superpixels must be one of: {', '.join(LIME_SEGMENTATIONS)}",
                    help="lime: superpixel algorithm"),
    registry.Option("lime_seed", "LIME seed", "int", 0, min=0, max=2**31 - 1,
                    check=_int_check(0, 2**31 - 1, "LIME seed"),
                    help="lime: seed of the superpixels and the samples (same seed, same maps)"),
)


def lime_problems(opts: Any) -> list[Problem]:
    """LIME chosen: the packages must be installed."""
    lacking = lime_missing()
    return [Problem("saliency_methods", lacking)] if lacking else []


def _str_list_problem(values: object, allowed: tuple[str, ...], what: str) -> str | None:
    if not isinstance(values, list) or not values:
        return f"Choose at least one {what}: {', '.join(allowed)}"
    bad = sorted({str(v) for v in values if v not in allowed})
    if bad:
        return f"Unknown {what} '{', '.join(bad)}'; choose from: {', '.join(allowed)}"
    return None


def saliency_problems(opts: ExtractOptions, wset: Any) -> list[Problem]:
    """Methods, styles and pathologies (checked against the labels the weight set was trained for)."""
    problems: list[Problem] = []
    for name, allowed, what in (("saliency_methods", METHODS, "saliency method"), ("styles", STYLES, "map style")):
        message = _str_list_problem(getattr(opts, name), allowed, what)
        if message:
            problems.append(Problem(name, message))
    if isinstance(opts.saliency_methods, list) and "lime" in opts.saliency_methods:
        problems.extend(lime_problems(opts))
    paths = opts.pathologies
    if paths is not None and (not isinstance(paths, list) or not all(isinstance(p, str) for p in paths)):
        problems.append(Problem("pathologies", "Pathologies must be a list of label names"))
    elif wset is not None and registry.kind_of(wset.architecture) == DENSENET.name:
        trained = wset.trained_labels
        bad = [p for p in paths if p not in trained] if paths is not None else []
        if bad:
            problems.append(Problem("pathologies", f"Unknown pathology '{', '.join(bad)}' for weights "
                                                   f"'{wset.name}'; choose from: {', '.join(trained)}"))
        methods = opts.saliency_methods
        wants_class = isinstance(methods, list) and any(m in CLASS_METHODS for m in methods)
        if wants_class and not (trained if paths is None else paths):
            problems.append(Problem("pathologies", "Choose at least one pathology to map"))
    return problems


SALIENCY = registry.register(registry.ExtractionType(
    name="saliency",
    label="Saliency maps",
    description="Class activation maps of a DenseNet weight set, saved as PNG files; the table lists them "
                "with each pathology’s prediction.",
    extractor="radfeat.extractors.saliency:SaliencyExtractor",
    columns="one row per map: pathology, method, style, prediction, path",
    column_count=len(LISTING_COLUMNS),
    order=50,
    default_stem="image_saliency_maps",
    weights_kinds=(DENSENET.name,),
    weights_mismatch="Saliency maps need a DenseNet weight set; '{name}' is {word}",
    catalog_default=True,
    preprocess=True,
    no_master_table="Master table is not available for saliency maps (the result lists image files)",
    no_ray_engine="Saliency maps run on the local engine only (they write image files)",
    options=(
        registry.Option("pathologies", "Pathologies to map", "multichoice", None,
                        help="labels to map, comma-separated (default: all the weight set was trained for)"),
        registry.Option("saliency_methods", "Methods", "multichoice", ["gradcam"], choices=METHODS,
                        help="Grad-CAM and Grad-CAM++ give one map per pathology, Eigen-CAM one per image"),
        registry.Option("styles", "Map styles", "multichoice", list(STYLES), choices=STYLES,
                        help="PNG pictures of each map: grey, jet colormap, overlay on the image, image × map"),
        *LIME_OPTIONS,
    ),
    check=saliency_problems,
    output_folders=lambda opts: [saliency_folder(opts)],
))
