"""The ``radfeat`` argument parser, built from light modules only (see :mod:`radfeat.cli`).

The extract command's ``--type`` choices and each type's own flags come from the extraction types'
declarations (:mod:`radfeat.extractors.registry`); nothing here loads a model runtime or a table library.
"""

from __future__ import annotations

import argparse

from radfeat import __version__
from radfeat.extractors import registry
from radfeat.extractors.declarations.onnx_model import CROPS, POOLS
from radfeat.fit.cli import add_parser as add_fit_parser
from radfeat.options import (
    DEFAULT_FILENAME,
    DEFAULT_MAX_PIXELS,
    DEFAULT_PREFIX,
    DEVICES,
    FORMATS,
    PRECISIONS,
    PREPROCESS_MODES,
)
from radfeat.server import add_serve_args

DESCRIPTION = "``radfeat`` command line: extract, fit, models, demo, serve, gui."


def lenient_int(value: str) -> int | str:
    """Parse an int, else hand the raw text to validation so the message is the shared one."""
    try:
        return int(value)
    except ValueError:
        return value


def _pixel_count(value: str) -> int | str:
    """``80000000``, ``80M`` or ``80MP`` → pixels; anything else goes to validation as text."""
    text = value.strip().upper().removesuffix("P").removesuffix("MP")
    if text.endswith("M") and text[:-1].replace(".", "", 1).isdigit():
        return int(round(float(text[:-1]) * 1_000_000))
    return lenient_int(value)


def _add_extract_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="folder of patient folders of JPG/PNG/DICOM images")
    p.add_argument("--depth", type=lenient_int, default=1, help="folder levels between INPUT and the images (default 1)")
    p.add_argument("--select", nargs="+", metavar="FOLDER", help="only these folders at that depth (relative paths)")
    p.add_argument("--weights", help="weight set name (default densenet121-res224-chex); see 'radfeat models list'")
    p.add_argument("--features", default="dense,predictions", help="dense, predictions or both (comma-separated)")
    p.add_argument("--prefix", default=DEFAULT_PREFIX, help="column prefix, letters, digits and _ (default img)")
    p.add_argument("--filename", default=None, help=f"output file name (default {DEFAULT_FILENAME})")
    p.add_argument("--output", help="full output path (overrides --workspace/--filename)")
    p.add_argument("--workspace", default=".", help="MEDomics workspace; table goes to DATA/extracted_features/")
    p.add_argument("--format", default="csv", choices=None, help=f"{' or '.join(FORMATS)} (default csv)")
    p.add_argument("--preprocess", default="xrv", help=f"{' or '.join(PREPROCESS_MODES)} (default xrv)")
    p.add_argument("--device", default="auto", help=f"{'|'.join(DEVICES)} (default auto)")
    p.add_argument("--precision", default="fp32", help=f"{'|'.join(PRECISIONS)}: int8 is a faster approximate mode")
    p.add_argument("--batch-size", type=lenient_int, default=16)
    p.add_argument("--threads", type=lenient_int, default=None, help="CPU threads (default: all cores)")
    p.add_argument("--no-resume", action="store_true", help="start over even if a partial result exists")
    p.add_argument("--engine", default="local", help="local (this machine, default) or ray (a Ray cluster)")
    p.add_argument("--ray-address", default=None,
                   help="ray engine: auto, HOST:PORT or ray://HOST:10001 (default: a private Ray on this machine)")
    p.add_argument("--max-pixels", type=_pixel_count, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help="refuse images larger than N pixels (e.g. 80000000 or 80M; default 50M)")
    _add_type_args(p.add_argument_group("extraction type"))
    d = p.add_argument_group("DICOM")
    d.add_argument("--dicom-tags", default=None, metavar="TAGS",
                   help="header columns after filename, e.g. PatientID,StudyDate,ViewPosition (empty for non-DICOM)")
    d.add_argument("--views", default=None, help="keep only images whose ViewPosition is one of these, e.g. PA,AP")
    d.add_argument("--dicom-voi-lut", action="store_true", help="apply the VOI LUT / window (read_xray_dcm voi_lut=True)")
    mt = p.add_argument_group("master table (MEDprofiles layout)")
    mt.add_argument("--master-table", action="store_true", help="join rows to a CSV of image dates")
    mt.add_argument("--dates", help="CSV mapping image file names to dates")
    mt.add_argument("--filename-column", help="column of --dates holding file names")
    mt.add_argument("--date-column", help="column of --dates holding dates")
    mt.add_argument("--patient-level", type=lenient_int, default=1, help="folder level that is the patient (1..depth)")
    mt.add_argument("--patient-id-int", action="store_true", help="turn p123 into 123")
    mt.add_argument("--dates-from-dicom", action="store_true",
                    help="each image's date from its DICOM header (AcquisitionDateTime, else StudyDate+StudyTime)")
    mt.add_argument("--patient-from-dicom", action="store_true", help="the patient column from the PatientID tag")
    p.add_argument("--head", action="append", metavar="MODEL.onnx",
                   help="add the scores of a model made by 'radfeat fit' as a column (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_type_args(group: argparse._ArgumentGroup) -> None:
    """``--type`` and every type's own options, from the registry."""
    default = registry.default_type()
    group.add_argument("--type", default=None,
                       help=f"{'|'.join(registry.names())} (default: the type of --weights, else {default})")
    for opt, kind in registry.options():
        shown = opt.default if not isinstance(opt.default, list) else ",".join(opt.default)
        default_text = f"default {shown}" if opt.default is not None else ""
        if opt.kind == "multichoice" and opt.choices:
            text = f"{kind.name}: {', '.join(opt.choices)}, comma-separated ({opt.help}; {default_text})"
        else:
            text = f"{kind.name}: {opt.help}" + (f" ({default_text})" if default_text else "")
        flag_only = {"nargs": "?", "const": "true"} if opt.kind == "bool" else {}  # --anatomy-masks alone is "true"
        group.add_argument(opt.flag, dest=opt.name, default=None, help=text.replace("%", "%%"), **flag_only)


def split(text: str | None) -> list[str]:
    """``a, b,,c`` → ``["a", "b", "c"]`` (comma-separated CLI lists)."""
    return [f.strip() for f in (text or "").split(",") if f.strip()]


def _add_models_parser(sub: argparse._SubParsersAction) -> None:
    """``radfeat models list|fetch|add|export|add-onnx|import``."""
    m = sub.add_parser("models", help="list, fetch, add or export weight sets")
    msub = m.add_subparsers(dest="models_cmd", required=True)
    ml = msub.add_parser("list")
    ml.add_argument("--json", action="store_true")
    mf = msub.add_parser("fetch")
    mf.add_argument("name")
    ma = msub.add_parser("add")
    ma.add_argument("name")
    ma.add_argument("path")
    me = msub.add_parser("export")
    me.add_argument("name")
    mo = msub.add_parser("add-onnx", help="register any ONNX image model (see README: Your own ONNX model)")
    mo.add_argument("name")
    mo.add_argument("path")
    mo.add_argument("--input-size", type=int, default=None, help="square input size N (needed unless the model fixes it)")
    mo.add_argument("--channels", type=int, choices=(1, 3), default=None, help="1 = grey, 3 = RGB (default: the model's)")
    mo.add_argument("--mean", default=None, help="per-channel mean after dividing by --scale, e.g. 0.485,0.456,0.406")
    mo.add_argument("--std", default=None, help="per-channel std, e.g. 0.229,0.224,0.225")
    mo.add_argument("--scale", type=float, default=255.0, help="pixels are divided by this first (default 255)")
    mo.add_argument("--outputs", default=None,
                    help="outputs to extract, comma-separated; intermediate tensor names cut the model (default: all)")
    mo.add_argument("--task", choices=("features", "segmentation"), default="features",
                    help="segmentation: the output is per-class masks, measured by --type anatomy")
    mo.add_argument("--labels", default=None, help="segmentation: class names, comma-separated (e.g. Pneumothorax)")
    mo.add_argument("--activation", choices=("sigmoid", "softmax", "none"), default="sigmoid",
                    help="segmentation: sigmoid (logits > 0), softmax (argmax) or none (probabilities > 0.5)")
    mo.add_argument("--crop", choices=CROPS, default="none", help="centre square crop before resizing")
    mo.add_argument("--pool", choices=POOLS, default="none",
                    help="global pooling of spatial outputs (e.g. avg: 512×7×7 → 512)")
    mi = msub.add_parser("import", help="register the catalog weight files (and ONNX exports) found in a folder")
    mi.add_argument("folder")


def build_parser() -> argparse.ArgumentParser:
    """Every command and flag; which code runs a command is :data:`radfeat.cli.COMMANDS`' business."""
    parser = argparse.ArgumentParser(prog="radfeat", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"radfeat {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("extract", help="extract features from a folder of patient folders")
    _add_extract_args(p)
    add_fit_parser(sub)

    _add_models_parser(sub)

    d = sub.add_parser("demo", help="make a small synthetic dataset and extract it")
    d.add_argument("--dir", default="radfeat-demo")
    d.add_argument("--weights", default=None)
    d.add_argument("--patients", type=int, default=4)

    s = sub.add_parser("serve", help="run the local backend (JSON-RPC + page) on 127.0.0.1")
    add_serve_args(s)

    g = sub.add_parser("gui", help="open the desktop window")
    g.add_argument("--workspace", default=".")
    return parser
