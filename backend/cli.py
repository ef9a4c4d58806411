"""``radfeat`` command line: extract, fit, models, demo, serve, gui."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from radfeat import __version__
from radfeat.demo import run_demo
from radfeat.errors import EXIT_INTERRUPTED, RadfeatError
from radfeat.extractors import registry
from radfeat.extractors.onnx_inspect import CROPS, POOLS, OnnxModelError
from radfeat.options import (
    DEFAULT_FILENAME,
    DEFAULT_MAX_PIXELS,
    DEFAULT_PREFIX,
    DEVICES,
    FORMATS,
    PRECISIONS,
    PREPROCESS_MODES,
    ExtractOptions,
    MasterTableOptions,
    default_filename,
)
from radfeat.server import add_serve_args
from radfeat.weights import registration
from radfeat.weights.catalog import Catalog
from radfeat.weights.download import fetch
from radfeat.weights.export import export, needs_export
from radfeat.weights.offline_import import cli_import
from radfeat.weights.readiness import ensure_weights

EXIT_TERMINATED = 143  # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a scheduler's stop, a closing session), handled exactly like Ctrl-C."""


def _on_sigterm(_sig: int, _frame: object) -> None:
    raise Terminated


def _lenient_int(value: str) -> int | str:
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
    return _lenient_int(value)


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
    mt.add_argument("--patient-level", type=_lenient_int, default=1, help="folder level that is the patient (1..depth)")
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


def _split(text: str | None) -> list[str]:
    return [f.strip() for f in (text or "").split(",") if f.strip()]


def _option_value(opt: registry.Option, text: str | None) -> Any:
    """A type option from its CLI text: the declared default when the flag is not given."""
    if text is None:
        return opt.default_value()
    if opt.kind == "int":
        return _lenient_int(text)
    if opt.kind == "bool":
        return text.strip().lower() in ("1", "true", "yes", "on")
    if opt.kind == "multichoice" or isinstance(opt.default, list):
        return _split(text)
    return text


def _infer_type(weights: str | None) -> str:
    """No --type: the type of the named weight set (the default type when none is named or it is unknown)."""
    if weights:
        try:
            kind = registry.kind_of(Catalog().get(weights).architecture)
        except KeyError:  # validation names the problem
            kind = None
        if kind is not None:
            return kind
    return registry.default_type()


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
    type_options = {opt.name: _option_value(opt, getattr(a, opt.name, None)) for opt, _ in registry.options()}
    return ExtractOptions(
        input=a.input, depth=a.depth, select=a.select, weights=a.weights,
        features=[f.strip() for f in a.features.split(",") if f.strip()], prefix=a.prefix, filename=filename,
        workspace=a.workspace, output=a.output, format=fmt, preprocess=a.preprocess, device=a.device,
        precision=a.precision, batch_size=a.batch_size, threads=a.threads, master_table=master,
        resume=not a.no_resume, max_pixels=a.max_pixels, type=kind, type_options=type_options,
        dicom_tags=None if a.dicom_tags is None else _split(a.dicom_tags),
        views=None if a.views is None else _split(a.views), dicom_voi_lut=a.dicom_voi_lut,
        head=None if not a.head else [str(Path(h).expanduser().resolve()) for h in a.head],
        engine=a.engine, ray_address=a.ray_address,
    )


def _fail(msg: str, code: int = 1) -> int:
    print(f"radfeat: error: {msg}", file=sys.stderr)
    return code


def cmd_extract(a: argparse.Namespace) -> int:
    from radfeat.pipeline.run import (  # the engine (ONNX Runtime, Arrow): only for this command
        Progress,
        extract,
    )
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

    import signal

    from radfeat.pipeline.names import shown

    previous = signal.signal(signal.SIGTERM, _on_sigterm)  # a stop request ends the run like Ctrl-C does
    try:
        summary = extract(opts, progress=on_progress, log=log)
    except KeyboardInterrupt as exc:
        out = opts.output_path()
        kept = f"{shown(out.name)}.ray-shards/" if opts.engine == "ray" else f"{shown(out.name)}.partial"
        what, code = ("terminated", EXIT_TERMINATED) if isinstance(exc, Terminated) else ("interrupted",
                                                                                            EXIT_INTERRUPTED)
        return _fail(f"{what}; finished rows are kept in {kept} — run the same command to resume", code)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if bar is not None:
            bar.close()
    _print_summary(summary)
    return 0


def _print_summary(summary: Any) -> None:
    from radfeat.pipeline.names import shown

    views = f", {summary.skipped} skipped by --views" if summary.skipped else ""
    print(f"{summary.ok} image(s) → {shown(summary.output)}  ({summary.failed} failed{views}, {summary.resumed} "
          f"resumed, {summary.skipped_files} item(s) skipped, {summary.images_per_s:.1f} images/s)")
    if summary.failed or summary.skipped:
        print(f"Problems listed in {shown(summary.errors_path)}")
    if summary.skipped_files:
        print(f"Skipped files and folders listed in {shown(summary.skipped_path)}")
    if summary.ignored:
        print(f"{summary.ignored} hidden or system file(s) ignored (.DS_Store, Thumbs.db, names starting with '.')")
    if summary.changed or summary.vanished:
        print(f"Since the interrupted run: {summary.changed} image(s) changed (done again), "
              f"{summary.vanished} no longer found (rows dropped)")
    if summary.master_table:
        m = summary.master_table
        print(f"Master table: {m['rows']} rows; {m['images_without_date']} image(s) without date, "
              f"{m['dates_without_image']} date(s) without image, {m['duplicate_filenames']} duplicate file name(s), "
              f"{m['unparseable_dates']} unparseable date(s)")


def cmd_models(a: argparse.Namespace) -> int:
    """``radfeat models …``; every refusal is a :class:`RadfeatError` that :func:`main` reports."""
    if a.models_cmd == "list":
        return _list_models(registration.status(), a.json)
    if a.models_cmd == "add":
        registration.add_weights(a.name, Path(a.path))
    elif a.models_cmd == "import":
        return cli_import(a.folder)
    elif a.models_cmd == "add-onnx":
        registration.add_onnx(a.name, Path(a.path), input_size=a.input_size, channels=a.channels,
                              mean=_floats(a.mean, "mean"), std=_floats(a.std, "std"), scale=a.scale,
                              outputs=_split(a.outputs) or None, crop=a.crop, pool=a.pool, task=a.task,
                              labels=_split(a.labels) or None, activation=a.activation)
    elif a.models_cmd == "fetch":
        _fetch(Catalog().get(a.name))
    elif a.models_cmd == "export":
        _export(Catalog().get(a.name))
    return 0


def _list_models(rows: list[dict[str, Any]], as_json: bool) -> int:
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':32} {'type':8} {'labels':>6} {'downloaded':>10} {'exported':>8} {'size':>9}")
    for r in rows:
        size = f"{r['size'] / 1e6:.1f} MB" if r["size"] else "-"
        star = "*" if r["default"] else " "
        print(f"{r['name'] + star:32} {r['type'] or '-':8} {len(r['trained_labels']):>6} "
              f"{'yes' if r['downloaded'] else 'no':>10} {'yes' if r['exported'] else 'no':>8} {size:>9}")
    print("* default")
    return 0


def _fetch(wset: Any) -> None:
    from tqdm import tqdm

    with tqdm(unit="B", unit_scale=True, desc=wset.name) as bar:
        def prog(done: int, total: int | None) -> None:
            bar.total = total
            bar.update(done - bar.n)

        path = fetch(wset, on_progress=prog)
    print(f"{wset.name}: {path}")


def _export(wset: Any) -> None:
    if not needs_export(wset):
        print(f"{wset.name}: already an ONNX model ({wset.path})")
        return
    ensure_weights(wset, print)
    if wset.architecture == "pspnet":
        from radfeat.weights.segmentation import export_segmentation

        print(f"{wset.name}: {export_segmentation(wset).path}")
        return
    print(f"{wset.name}: {export(wset).path}")


def _floats(text: str | None, what: str) -> list[float] | None:
    if not text:
        return None
    try:
        return [float(v) for v in _split(text)]
    except ValueError:
        raise OnnxModelError(f"--{what} must be numbers separated by commas, e.g. 0.485,0.456,0.406") from None


def cmd_demo(a: argparse.Namespace) -> int:
    return run_demo(Path(a.dir), weights=a.weights, n_patients=a.patients)


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
    m.set_defaults(func=cmd_models)



def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="radfeat", description=__doc__)
    parser.add_argument("--version", action="version", version=f"radfeat {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("extract", help="extract features from a folder of patient folders")
    _add_extract_args(p)
    p.set_defaults(func=cmd_extract)

    from radfeat.fit.cli import add_parser as add_fit_parser

    add_fit_parser(sub)

    _add_models_parser(sub)

    d = sub.add_parser("demo", help="make a small synthetic dataset and extract it")
    d.add_argument("--dir", default="radfeat-demo")
    d.add_argument("--weights", default=None)
    d.add_argument("--patients", type=int, default=4)
    d.set_defaults(func=cmd_demo)

    s = sub.add_parser("serve", help="run the local backend (JSON-RPC + page) on 127.0.0.1")
    add_serve_args(s)
    s.set_defaults(func=lambda a: _delegate("radfeat.server.serve", a))

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
    try:
        return int(args.func(args) or 0)
    except RadfeatError as exc:  # a refusal or failure with a readable message: never a traceback
        return _fail(str(exc), exc.exit_status)


if __name__ == "__main__":
    sys.exit(main())
