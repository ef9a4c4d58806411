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
FORMATS = ("csv", "parquet")
PRECISIONS = ("fp32", "int8")
DEFAULT_PREFIX = "img"
DEFAULT_FILENAME = "image_extracted_features.csv"
OUTPUT_SUBDIR = Path("DATA") / "extracted_features"

_PREFIX_RE = re.compile(r"[A-Za-z0-9]+")
_NAME_RE = {"csv": re.compile(r"[A-Za-z0-9_]+\.csv"), "parquet": re.compile(r"[A-Za-z0-9_]+\.parquet")}


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
        return "Column prefix may contain only letters and digits"
    return None


def validate_filename(name: object, fmt: str = "csv") -> str | None:
    pattern = _NAME_RE.get(fmt, _NAME_RE["csv"])
    ext = ".parquet" if fmt == "parquet" else ".csv"
    if not isinstance(name, str) or not pattern.fullmatch(name):
        return f"File name must be letters, digits or underscores followed by {ext} (e.g. image_extracted_features{ext})"
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate(opts: ExtractOptions, *, check_paths: bool = True) -> list[Problem]:
    """Return every problem with ``opts`` (empty list when they are valid)."""
    from .catalog import Catalog

    problems: list[Problem] = []

    def add(field_name: str, message: str | None) -> None:
        if message:
            problems.append(Problem(field_name, message))

    if not opts.input:
        add("input", "Choose the folder that holds the patient folders")
    elif check_paths and not Path(opts.input).expanduser().is_dir():
        add("input", f"Input folder not found: {opts.input}")
    if not _is_int(opts.depth) or opts.depth < 1:
        add("depth", "Folder depth must be a whole number of at least 1")
    if opts.select is not None and not opts.select:
        add("select", "Select at least one folder")
    try:
        Catalog().get(opts.weights)
    except KeyError as exc:
        add("weights", str(exc))
    feats = opts.features
    if not feats:
        add("features", "Choose at least one of: dense features, predictions")
    elif any(f not in FEATURE_FAMILIES for f in feats):
        bad = ", ".join(sorted({f for f in feats if f not in FEATURE_FAMILIES}))
        add("features", f"Unknown feature family '{bad}'; choose from: dense, predictions")
    add("prefix", validate_prefix(opts.prefix))
    if opts.format not in FORMATS:
        add("format", f"Output format must be one of: {', '.join(FORMATS)}")
    elif opts.output is None:
        add("filename", validate_filename(opts.filename, opts.format))
    if opts.preprocess not in PREPROCESS_MODES:
        add("preprocess", f"Preprocessing must be one of: {', '.join(PREPROCESS_MODES)}")
    if opts.device not in DEVICES:
        add("device", f"Device must be one of: {', '.join(DEVICES)}")
    if opts.precision not in PRECISIONS:
        add("precision", f"Precision must be one of: {', '.join(PRECISIONS)}")
    if not _is_int(opts.batch_size) or not 1 <= opts.batch_size <= 1024:
        add("batch_size", "Batch size must be a whole number between 1 and 1024")
    if opts.threads is not None and (not _is_int(opts.threads) or opts.threads < 1):
        add("threads", "Threads must be a whole number of at least 1")
    if opts.master_table is not None:
        problems.extend(validate_master_table(opts.master_table, opts.depth, check_paths=check_paths))
    return problems


def validate_master_table(mt: MasterTableOptions, depth: int, *, check_paths: bool = True) -> list[Problem]:
    problems: list[Problem] = []
    if not mt.dates_csv:
        problems.append(Problem("master_table.dates_csv", "Master table needs a CSV of image dates"))
    elif check_paths and not Path(mt.dates_csv).expanduser().is_file():
        problems.append(Problem("master_table.dates_csv", f"Dates CSV not found: {mt.dates_csv}"))
    else:
        columns = None
        if check_paths:
            from .dates import read_columns

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
