"""Extraction options and their validation: one set of rules and words for CLI, RPC and UI.

:func:`validate` returns every problem as a :class:`Problem` (the field it concerns
and a one-line message).  The CLI prints them and exits with status 2, the RPC
``validate_options`` method returns them, and the page shows them next to the fields.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

FEATURE_FAMILIES = ("dense", "predictions")
PREPROCESS_MODES = ("xrv", "medomics")
DEVICES = ("auto", "cpu", "cuda")
FORMATS = ("csv", "parquet", "arff")
PRECISIONS = ("fp32", "int8")
DEFAULT_PREFIX = "img"
DEFAULT_FILENAME = "image_extracted_features.csv"
OUTPUT_SUBDIR = Path("DATA") / "extracted_features"
SALIENCY_SUBDIR = Path("DATA") / "saliency"

# Extraction types.  densenet, encoder and onnx run a model chosen with ``weights`` (its catalog
# ``architecture`` says which type it belongs to); saliency needs a DenseNet weight set; fractal uses none.
EXTRACTION_TYPES = ("densenet", "encoder", "onnx", "fractal", "saliency")
MODEL_TYPES = ("densenet", "encoder", "onnx", "saliency")
DEFAULT_ENCODER = "resnet50-res512-all"
DEFAULT_MAX_BOX = 41
MAX_MAX_BOX = 255
SALIENCY_METHODS = ("gradcam", "gradcampp", "eigencam")
CLASS_METHODS = ("gradcam", "gradcampp")  # one map per pathology (eigencam: one per image)
SALIENCY_STYLES = ("gray", "colormap", "overlay", "multiply")
# CLI default file names per type (the options' own default stays image_extracted_features.csv)
DEFAULT_STEMS = {"densenet": "image_extracted_features", "encoder": "image_extracted_features",
                 "onnx": "image_extracted_features", "fractal": "image_fractal_features",
                 "saliency": "image_saliency_maps"}

_PREFIX_RE = re.compile(r"[A-Za-z0-9_]+")  # MEDomics' own rule (^[a-zA-Z0-9_]+$)
DEFAULT_DICOM_DATE_COLUMN = "date"
_NAME_RE = {fmt: re.compile(rf"[A-Za-z0-9_]+\.{fmt}") for fmt in FORMATS}


class OptionsError(ValueError):
    """Invalid options, refused before any work starts."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems))


@dataclass(frozen=True)
class Problem:
    field: str
    message: str


@dataclass
class MasterTableOptions:
    """Join the rows to a CSV of image dates and keep one patient column (MEDprofiles layout)."""

    dates_csv: str = ""
    filename_column: str = ""
    date_column: str = ""
    patient_level: int = 1
    patient_id_int: bool = False
    dates_from_dicom: bool = False  # each image's date from its DICOM header instead of the dates CSV
    patient_from_dicom: bool = False  # the patient column from PatientID instead of the level_K folder


@dataclass
class ExtractOptions:
    """Everything one extraction needs; defaults are what the MEDomics page offers."""

    input: str = ""
    depth: int = 1
    select: list[str] | None = None
    weights: str | None = None
    features: list[str] = field(default_factory=lambda: list(FEATURE_FAMILIES))
    prefix: str = DEFAULT_PREFIX
    filename: str = DEFAULT_FILENAME
    workspace: str = "."
    output: str | None = None
    format: str = "csv"
    preprocess: str = "xrv"
    device: str = "auto"
    precision: str = "fp32"
    batch_size: int = 16
    threads: int | None = None
    master_table: MasterTableOptions | None = None
    resume: bool = True
    # extraction type and its own options (see EXTRACTION_TYPES); ignored by the types they do not concern
    type: str = "densenet"
    max_box: int = DEFAULT_MAX_BOX  # fractal: largest (odd) box size
    pathologies: list[str] | None = None  # saliency: trained labels to map (None: all of them)
    saliency_methods: list[str] = field(default_factory=lambda: ["gradcam"])
    styles: list[str] = field(default_factory=lambda: list(SALIENCY_STYLES))
    # DICOM input (see radfeat.pipeline.dicom): header columns, view filter, VOI LUT
    dicom_tags: list[str] | None = None  # tag keywords written as text columns after filename
    views: list[str] | None = None  # keep only images whose ViewPosition is one of these
    dicom_voi_lut: bool = False  # read_xray_dcm(voi_lut=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExtractOptions:
        """Build from JSON-like data (RPC params), ignoring unknown keys is *not* done: they are refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise OptionsError([Problem(k, f"Unknown option '{k}'") for k in unknown])
        data = dict(data)
        mt = data.get("master_table")
        if isinstance(mt, dict):
            mknown = {f.name for f in fields(MasterTableOptions)}
            bad = sorted(set(mt) - mknown)
            if bad:
                raise OptionsError([Problem(f"master_table.{k}", f"Unknown option 'master_table.{k}'") for k in bad])
            data["master_table"] = MasterTableOptions(**mt)
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def output_path(self) -> Path:
        """Where the table goes: ``--output`` if given, else ``<workspace>/DATA/extracted_features/<filename>``."""
        if self.output:
            return Path(self.output).expanduser().resolve()
        return (Path(self.workspace).expanduser() / OUTPUT_SUBDIR / self.filename).resolve()


def validate_prefix(prefix: object) -> str | None:
    if not isinstance(prefix, str) or prefix == "":
        return "Column prefix must not be empty"
    if not _PREFIX_RE.fullmatch(prefix):
        return "Column prefix may contain only letters, digits and underscores"
    return None


def default_filename(kind: str = "densenet", fmt: str = "csv") -> str:
    """The CLI's default output name for an extraction type and format."""
    return f"{DEFAULT_STEMS.get(kind, DEFAULT_STEMS['densenet'])}.{fmt if fmt in FORMATS else 'csv'}"


def type_of(architecture: str) -> str:
    """The extraction type that runs a weight set of this catalog ``architecture``."""
    if architecture == "onnx":
        return "onnx"
    if architecture.startswith("densenet"):
        return "densenet"
    return "encoder"


def resolve_weights(opts: ExtractOptions) -> Any:
    """The weight set ``opts`` runs (a :class:`radfeat.weights.catalog.WeightSet`), or None for fractal features.

    Without ``weights``: the catalog default (densenet, saliency) or ``resnet50-res512-all`` (encoder);
    an ONNX run must name its model.  Raises ``KeyError`` with a readable message.
    """
    from radfeat.weights.catalog import Catalog, UnknownWeights

    if opts.type == "fractal":
        return None
    name = opts.weights
    if not name:
        if opts.type == "onnx":
            raise UnknownWeights("Choose the ONNX model to run (register one with 'radfeat models add-onnx')")
        if opts.type == "encoder":
            name = DEFAULT_ENCODER
    return Catalog().get(name)


def weights_label(opts: ExtractOptions) -> str:
    """What a run is known by in job lists: the weight set's name, or the type when it uses none."""
    ws = resolve_weights(opts)
    return opts.type if ws is None else ws.name


def validate_filename(name: object, fmt: str = "csv") -> str | None:
    pattern = _NAME_RE.get(fmt, _NAME_RE["csv"])
    ext = f".{fmt}" if fmt in FORMATS else ".csv"
    if not isinstance(name, str) or not pattern.fullmatch(name):
        return f"File name must be letters, digits or underscores followed by {ext} (e.g. image_extracted_features{ext})"
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate(opts: ExtractOptions, *, check_paths: bool = True) -> list[Problem]:
    """Return every problem with ``opts`` (empty list when they are valid)."""
    from radfeat.weights.catalog import Catalog

    problems: list[Problem] = []

    def add(field_name: str, message: str | None) -> None:
        if message:
            problems.append(Problem(field_name, message))

    if not opts.input:
        add("input", "Choose the folder that holds the patient folders")
    elif check_paths and Path(opts.input).expanduser().is_file():
        add("input", f"{opts.input} is a file, not a folder; choose the folder that holds the patient folders")
    elif check_paths and not Path(opts.input).expanduser().is_dir():
        add("input", f"Input folder not found: {opts.input}")
    if not _is_int(opts.depth) or opts.depth < 1:
        add("depth", "Folder depth must be a whole number of at least 1")
    if opts.select is not None and not opts.select:
        add("select", "Select at least one folder")
    kind = opts.type
    ws = None
    if kind not in EXTRACTION_TYPES:
        add("type", f"Extraction type must be one of: {', '.join(EXTRACTION_TYPES)}")
    elif kind == "densenet":
        try:
            ws = Catalog().get(opts.weights)
        except KeyError as exc:
            add("weights", str(exc))
    elif kind in MODEL_TYPES:
        try:
            ws = resolve_weights(opts)
        except KeyError as exc:
            add("weights", str(exc))
    if ws is not None:
        add("weights", _weights_type_problem(kind, ws))
    if kind in ("densenet", "encoder"):
        feats = opts.features
        if not feats:
            add("features", "Choose at least one of: dense features, predictions")
        elif any(f not in FEATURE_FAMILIES for f in feats):
            bad = ", ".join(sorted({f for f in feats if f not in FEATURE_FAMILIES}))
            add("features", f"Unknown feature family '{bad}'; choose from: dense, predictions")
        elif ws is not None and ws.architecture == "resnet-ae" and "dense" not in feats:
            add("features", f"'{ws.name}' is an autoencoder and gives no predictions; choose dense (its latent code)")
    if kind == "fractal":
        mb = opts.max_box
        if not _is_int(mb) or not 3 <= mb <= MAX_MAX_BOX or mb % 2 == 0:
            add("max_box", f"Largest box size must be an odd whole number between 3 and {MAX_MAX_BOX}")
    if kind == "saliency":
        problems.extend(_saliency_problems(opts, ws))
    add("prefix", validate_prefix(opts.prefix))
    if opts.format not in FORMATS:
        add("format", f"Output format must be one of: {', '.join(FORMATS)}")
    elif opts.output is None:
        add("filename", validate_filename(opts.filename, opts.format))
    if opts.preprocess not in PREPROCESS_MODES:
        add("preprocess", f"Preprocessing must be one of: {', '.join(PREPROCESS_MODES)}")
    if opts.device not in DEVICES:
        add("device", f"Device must be one of: {', '.join(DEVICES)}")
    else:
        from radfeat.weights.session import device_problem

        add("device", device_problem(opts.device))
    if opts.precision not in PRECISIONS:
        add("precision", f"Precision must be one of: {', '.join(PRECISIONS)}")
    elif opts.precision == "int8" and kind in EXTRACTION_TYPES and kind not in ("densenet", "encoder"):
        add("precision", "int8 precision is available for DenseNet and encoder features only")
    if not _is_int(opts.batch_size) or not 1 <= opts.batch_size <= 1024:
        add("batch_size", "Batch size must be a whole number between 1 and 1024")
    if opts.threads is not None and (not _is_int(opts.threads) or opts.threads < 1):
        add("threads", "Threads must be a whole number of at least 1")
    from radfeat.pipeline.headers import dicom_problems

    problems.extend(dicom_problems(opts))
    if opts.master_table is not None:
        if kind == "saliency":
            add("master_table", "Master table is not available for saliency maps (the result lists image files)")
        else:
            problems.extend(validate_master_table(opts.master_table, opts.depth, check_paths=check_paths))
    return problems


_TYPE_WORDS = {"densenet": "a TorchXRayVision DenseNet", "encoder": "a TorchXRayVision encoder",
               "onnx": "an ONNX model"}


def _weights_type_problem(kind: str, ws: Any) -> str | None:
    """The weight set must be of the kind the type runs (its catalog architecture decides)."""
    own = type_of(ws.architecture)
    if kind == "saliency":
        if own != "densenet":
            return f"Saliency maps need a DenseNet weight set; '{ws.name}' is {_TYPE_WORDS[own]}"
        return None
    if own != kind:
        return f"Weights '{ws.name}' are {_TYPE_WORDS[own]}; choose type '{own}'"
    return None


def _str_list_problem(values: object, allowed: tuple[str, ...], what: str, field_label: str) -> str | None:
    if not isinstance(values, list) or not values:
        return f"Choose at least one {what}: {', '.join(allowed)}"
    bad = sorted({str(v) for v in values if v not in allowed})
    if bad:
        return f"Unknown {field_label} '{', '.join(bad)}'; choose from: {', '.join(allowed)}"
    return None


def _saliency_problems(opts: ExtractOptions, ws: Any) -> list[Problem]:
    problems: list[Problem] = []
    msg = _str_list_problem(opts.saliency_methods, SALIENCY_METHODS, "saliency method", "saliency method")
    if msg:
        problems.append(Problem("saliency_methods", msg))
    msg = _str_list_problem(opts.styles, SALIENCY_STYLES, "map style", "map style")
    if msg:
        problems.append(Problem("styles", msg))
    paths = opts.pathologies
    if paths is not None and (not isinstance(paths, list) or not all(isinstance(p, str) for p in paths)):
        problems.append(Problem("pathologies", "Pathologies must be a list of label names"))
    elif ws is not None and type_of(ws.architecture) == "densenet":
        trained = ws.trained_labels
        if paths is not None:
            bad = [p for p in paths if p not in trained]
            if bad:
                problems.append(Problem("pathologies", f"Unknown pathology '{', '.join(bad)}' for weights "
                                                       f"'{ws.name}'; choose from: {', '.join(trained)}"))
        wants_class = isinstance(opts.saliency_methods, list) and any(m in CLASS_METHODS for m in opts.saliency_methods)
        if wants_class and not (trained if paths is None else paths):
            problems.append(Problem("pathologies", "Choose at least one pathology to map"))
    return problems


def saliency_pathologies(opts: ExtractOptions, ws: Any) -> list[str]:
    """The pathologies a saliency run maps: the chosen ones, else every label the weight set was trained for."""
    return list(ws.trained_labels) if opts.pathologies is None else list(opts.pathologies)


def master_date_column(mt: MasterTableOptions) -> str:
    """The master table's date column: the dates CSV's, or (dates from DICOM headers) ``date`` unless named."""
    return mt.date_column or (DEFAULT_DICOM_DATE_COLUMN if mt.dates_from_dicom else "")


def master_patient_column(mt: MasterTableOptions) -> str:
    return "PatientID" if mt.patient_from_dicom else f"level_{mt.patient_level}"


def validate_master_table(mt: MasterTableOptions, depth: int, *, check_paths: bool = True) -> list[Problem]:
    problems: list[Problem] = []
    for key in ("dates_from_dicom", "patient_from_dicom", "patient_id_int"):
        if not isinstance(getattr(mt, key), bool):
            problems.append(Problem(f"master_table.{key}", f"Option '{key}' must be true or false"))
    if mt.dates_from_dicom:
        if mt.date_column and not _NAME_RE["csv"].fullmatch(mt.date_column + ".csv"):
            problems.append(Problem("master_table.date_column",
                                    "Date column name may contain only letters, digits and underscores"))
    elif not mt.dates_csv:
        problems.append(Problem("master_table.dates_csv", "Master table needs a CSV of image dates"))
    elif check_paths and not Path(mt.dates_csv).expanduser().is_file():
        problems.append(Problem("master_table.dates_csv", f"Dates CSV not found: {mt.dates_csv}"))
    else:
        columns = None
        if check_paths:
            from radfeat.output.dates import read_columns

            try:
                columns = read_columns(Path(mt.dates_csv).expanduser())
            except ValueError as exc:
                problems.append(Problem("master_table.dates_csv", str(exc)))
        for key, label in (("filename_column", "file name"), ("date_column", "date")):
            col = getattr(mt, key)
            if not col:
                problems.append(Problem(f"master_table.{key}", f"Choose the {label} column of the dates CSV"))
            elif columns is not None and col not in columns:
                problems.append(Problem(f"master_table.{key}", f"Column '{col}' is not in the dates CSV"))
        if mt.filename_column and mt.filename_column == mt.date_column:
            problems.append(Problem("master_table.date_column", "File name and date columns must differ"))
    if not _is_int(mt.patient_level) or not (_is_int(depth) and 1 <= mt.patient_level <= max(depth, 1)):
        problems.append(
            Problem("master_table.patient_level", f"Patient level must be between 1 and the folder depth ({depth})")
        )
    return problems


def check(opts: ExtractOptions, *, check_paths: bool = True) -> None:
    """Raise :class:`OptionsError` listing every problem, if any."""
    problems = validate(opts, check_paths=check_paths)
    if problems:
        raise OptionsError(problems)
