"""``radfeat`` command line: extract, models, demo, serve, gui."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from radfeat import __version__
from radfeat.options import (
    DEFAULT_FILENAME,
    DEFAULT_MAX_BOX,
    DEFAULT_PREFIX,
    DEVICES,
    EXTRACTION_TYPES,
    FORMATS,
    PRECISIONS,
    PREPROCESS_MODES,
    SALIENCY_METHODS,
    SALIENCY_STYLES,
    ExtractOptions,
    MasterTableOptions,
    OptionsError,
    default_filename,
)

EXIT_INVALID = 2
EXIT_INTERRUPTED = 130


def _lenient_int(value: str) -> int | str:
    """Parse an int, else hand the raw text to validation so the message is the shared one."""
    try:
        return int(value)
    except ValueError:
        return value


def _add_extract_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="folder of patient folders of JPG/PNG/DICOM images")
    p.add_argument("--depth", type=_lenient_int, default=1, help="folder levels between INPUT and the images (default 1)")
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
    p.add_argument("--batch-size", type=_lenient_int, default=16)
    p.add_argument("--threads", type=_lenient_int, default=None, help="CPU threads (default: all cores)")
    p.add_argument("--no-resume", action="store_true", help="start over even if a partial result exists")
    t = p.add_argument_group("extraction type")
    t.add_argument("--type", default=None,
                   help=f"{'|'.join(EXTRACTION_TYPES)} (default: the type of --weights, else densenet)")
    t.add_argument("--max-box", type=_lenient_int, default=DEFAULT_MAX_BOX,
                   help=f"fractal: largest box size, odd, at least 3 (default {DEFAULT_MAX_BOX})")
    t.add_argument("--saliency-methods", default="gradcam",
                   help=f"saliency: {', '.join(SALIENCY_METHODS)} (comma-separated, default gradcam)")
    t.add_argument("--pathologies", default=None,
                   help="saliency: labels to map, comma-separated (default: all the weight set was trained for)")
    t.add_argument("--styles", default=",".join(SALIENCY_STYLES),
                   help=f"saliency: PNG styles, comma-separated (default {','.join(SALIENCY_STYLES)})")
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
    mt.add_argument("--patient-level", type=_lenient_int, default=1, help="folder level that is the patient (1..depth)")
    mt.add_argument("--patient-id-int", action="store_true", help="turn p123 into 123")
    mt.add_argument("--dates-from-dicom", action="store_true",
                    help="each image's date from its DICOM header (AcquisitionDateTime, else StudyDate+StudyTime)")
    mt.add_argument("--patient-from-dicom", action="store_true", help="the patient column from the PatientID tag")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _split(text: str | None) -> list[str]:
    return [f.strip() for f in (text or "").split(",") if f.strip()]


def _infer_type(weights: str | None) -> str:
    """No --type: the type of the named weight set (densenet when none is named or it is unknown)."""
    if not weights:
        return "densenet"
    from radfeat.options import type_of
    from radfeat.weights.catalog import Catalog

    try:
        return type_of(Catalog().get(weights).architecture)
    except KeyError:
        return "densenet"  # validation names the problem


def options_from_args(a: argparse.Namespace) -> ExtractOptions:
    fmt = a.format
    kind = a.type or _infer_type(a.weights)
    filename = a.filename or default_filename(kind, fmt)
    master = None
    if a.master_table:
        master = MasterTableOptions(dates_csv=a.dates or "", filename_column=a.filename_column or "",
                                    date_column=a.date_column or "", patient_level=a.patient_level,
                                    patient_id_int=a.patient_id_int, dates_from_dicom=a.dates_from_dicom,
                                    patient_from_dicom=a.patient_from_dicom)
    return ExtractOptions(
        input=a.input, depth=a.depth, select=a.select, weights=a.weights,
        features=[f.strip() for f in a.features.split(",") if f.strip()], prefix=a.prefix, filename=filename,
        workspace=a.workspace, output=a.output, format=fmt, preprocess=a.preprocess, device=a.device,
        precision=a.precision, batch_size=a.batch_size, threads=a.threads, master_table=master,
        resume=not a.no_resume, type=kind, max_box=a.max_box,
        pathologies=None if a.pathologies is None else _split(a.pathologies),
        saliency_methods=_split(a.saliency_methods), styles=_split(a.styles),
        dicom_tags=None if a.dicom_tags is None else _split(a.dicom_tags),
        views=None if a.views is None else _split(a.views), dicom_voi_lut=a.dicom_voi_lut,
    )


def _fail(msg: str, code: int = 1) -> int:
    print(f"radfeat: error: {msg}", file=sys.stderr)
    return code


def cmd_extract(a: argparse.Namespace) -> int:
    from radfeat.pipeline.run import Progress, extract
    from tqdm import tqdm

    opts = options_from_args(a)
    bar: Any = None

    def on_progress(p: Progress) -> None:
        nonlocal bar
        if a.quiet or p.stage != "extracting":
            return
        if bar is None:
            bar = tqdm(total=p.total, initial=p.done, unit="img", dynamic_ncols=True, desc="extracting")
        bar.update(p.done - bar.n)
        bar.set_postfix(failed=p.failed, refresh=False)

    def log(msg: str) -> None:
        (tqdm.write if bar is not None else print)(msg, file=sys.stderr)

    try:
        summary = extract(opts, progress=on_progress, log=log)
    except OptionsError as exc:
        return _fail(str(exc), EXIT_INVALID)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        out = opts.output_path()
        return _fail(f"interrupted; finished rows are kept in {out.name}.partial — run the same command to resume",
                     EXIT_INTERRUPTED)
    except Exception as exc:  # report, never a traceback for expected failures
        from radfeat.weights.checkpoint import CheckpointError
        from radfeat.weights.download import DownloadError
        from radfeat.weights.export import ExportError
        from radfeat.weights.session import DeviceError

        if isinstance(exc, (CheckpointError, DownloadError, ExportError, DeviceError)):
            return _fail(str(exc))
        raise
    finally:
        if bar is not None:
            bar.close()
    skipped = f", {summary.skipped} skipped by --views" if summary.skipped else ""
    print(f"{summary.ok} image(s) → {summary.output}  ({summary.failed} failed{skipped}, {summary.resumed} resumed, "
          f"{summary.images_per_s:.1f} images/s)")
    if summary.failed or summary.skipped:
        print(f"Problems listed in {summary.errors_path}")
    if summary.master_table:
        m = summary.master_table
        print(f"Master table: {m['rows']} rows; {m['images_without_date']} image(s) without date, "
              f"{m['dates_without_image']} date(s) without image, {m['duplicate_filenames']} duplicate file name(s), "
              f"{m['unparseable_dates']} unparseable date(s)")
    return 0


def cmd_models(a: argparse.Namespace) -> int:
    from radfeat.weights.catalog import Catalog
    from radfeat.weights.registration import add_weights, status

    if a.models_cmd == "list":
        rows = status()
        if a.json:
            print(json.dumps(rows, indent=2))
            return 0
        print(f"{'name':32} {'type':8} {'labels':>6} {'downloaded':>10} {'exported':>8} {'size':>9}")
        for r in rows:
            size = f"{r['size'] / 1e6:.1f} MB" if r["size"] else "-"
            star = "*" if r["default"] else " "
            print(f"{r['name'] + star:32} {r['type']:8} {len(r['trained_labels']):>6} "
                  f"{'yes' if r['downloaded'] else 'no':>10} {'yes' if r['exported'] else 'no':>8} {size:>9}")
        print("* default")
        return 0
    try:
        if a.models_cmd == "add":
            add_weights(a.name, Path(a.path))
            return 0
        if a.models_cmd == "import":
            from radfeat.weights.offline_import import cli_import

            return cli_import(a.folder)
        if a.models_cmd == "add-onnx":
            from radfeat.extractors.onnx_model import OnnxModelError
            from radfeat.weights.registration import add_onnx

            try:
                add_onnx(a.name, Path(a.path), input_size=a.input_size, channels=a.channels,
                         mean=_floats(a.mean, "mean"), std=_floats(a.std, "std"), scale=a.scale,
                         outputs=_split(a.outputs) or None, crop=a.crop, pool=a.pool)
            except OnnxModelError as exc:
                return _fail(str(exc), EXIT_INVALID)
            return 0
        ws = Catalog().get(a.name)
        if a.models_cmd == "fetch":
            from radfeat.weights.download import DownloadError, fetch
            from tqdm import tqdm

            with tqdm(unit="B", unit_scale=True, desc=ws.name) as bar:
                def prog(done: int, total: int | None) -> None:
                    bar.total = total
                    bar.update(done - bar.n)

                try:
                    path = fetch(ws, on_progress=prog)
                except DownloadError as exc:
                    return _fail(str(exc))
            print(f"{ws.name}: {path}")
            return 0
        if a.models_cmd == "export":
            from radfeat.pipeline.run import ensure_weights
            from radfeat.weights.export import export

            if ws.architecture == "onnx":
                print(f"{ws.name}: already an ONNX model ({ws.path})")
                return 0
            ensure_weights(ws, print)
            info = export(ws)
            print(f"{ws.name}: {info.path}")
            return 0
    except (KeyError, ValueError, OptionsError) as exc:  # CheckpointError is a ValueError
        ckpt = sys.modules.get("radfeat.weights.checkpoint")  # imported only by commands that read checkpoints (torch)
        unreadable = ckpt is not None and isinstance(exc, ckpt.CheckpointError)
        return _fail(str(exc), 1 if unreadable else EXIT_INVALID)
    return _fail(f"unknown models command {a.models_cmd}", EXIT_INVALID)


def _floats(text: str | None, what: str) -> list[float] | None:
    from radfeat.extractors.onnx_model import OnnxModelError

    if not text:
        return None
    try:
        return [float(v) for v in _split(text)]
    except ValueError:
        raise OnnxModelError(f"--{what} must be numbers separated by commas, e.g. 0.485,0.456,0.406") from None


def cmd_demo(a: argparse.Namespace) -> int:
    from radfeat.demo import run_demo

    return run_demo(Path(a.dir), weights=a.weights, n_patients=a.patients)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="radfeat", description=__doc__)
    parser.add_argument("--version", action="version", version=f"radfeat {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("extract", help="extract features from a folder of patient folders")
    _add_extract_args(p)
    p.set_defaults(func=cmd_extract)

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
    mo.add_argument("--crop", choices=("none", "center"), default="none", help="centre square crop before resizing")
    mo.add_argument("--pool", choices=("none", "avg", "max"), default="none",
                    help="global pooling of spatial outputs (e.g. avg: 512×7×7 → 512)")
    mi = msub.add_parser("import", help="register the catalog weight files (and ONNX exports) found in a folder")
    mi.add_argument("folder")
    m.set_defaults(func=cmd_models)

    d = sub.add_parser("demo", help="make a small synthetic dataset and extract it")
    d.add_argument("--dir", default="radfeat-demo")
    d.add_argument("--weights", default=None)
    d.add_argument("--patients", type=int, default=4)
    d.set_defaults(func=cmd_demo)

    s = sub.add_parser("serve", help="run the local backend (JSON-RPC + page) on 127.0.0.1")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--workspace", default=".")
    s.add_argument("--no-browser", action="store_true")
    s.set_defaults(func=lambda a: _delegate("radfeat.server.app", a))

    g = sub.add_parser("gui", help="open the desktop window")
    g.add_argument("--workspace", default=".")
    g.set_defaults(func=lambda a: _delegate("radfeat.desktop.window", a))
    return parser


def _delegate(module: str, a: argparse.Namespace) -> int:
    import importlib

    return int(importlib.import_module(module).main(a) or 0)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
