"""Extraction options and their validation: one set of rules and words for CLI, RPC and UI.

:func:`validate` returns every problem as a :class:`Problem` (the field it concerns
and a one-line message).  The CLI prints them and exits with status 2, the RPC
``validate_options`` method returns them, and the page shows them next to the fields.
"""

from __future__ import annotations

import os
import re
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from radfeat.errors import OptionsError, Problem
from radfeat.extractors import registry
from radfeat.extractors.registry import ExtractionType
from radfeat.master_options import (  # noqa: F401  (re-exported: the master table's options are extract options)
    DEFAULT_DICOM_DATE_COLUMN,
    WORD_RE,
    MasterTableOptions,
    is_int,
    master_date_column,
    master_patient_column,
    validate_master_table,
)
from radfeat.output.paths import name_problem, path_problem
from radfeat.pipeline.limits import DEFAULT_MAX_PIXELS, MAX_MAX_PIXELS
from radfeat.weights.catalog import Catalog, UnknownWeights

__all__ = ["ExtractOptions", "MasterTableOptions", "OptionsError", "Problem", "check", "validate"]

FEATURE_FAMILIES = ("dense", "predictions")
PREPROCESS_MODES = ("xrv", "medomics")
DEVICES = ("auto", "cpu", "cuda")
FORMATS = ("csv", "parquet", "arff")
PRECISIONS = ("fp32", "int8")
ENGINES = ("local", "ray")  # ray: the same extraction on a Ray cluster (radfeat.pipeline.ray_engine)
DEFAULT_PREFIX = "img"
DEFAULT_FILENAME = "image_extracted_features.csv"
OUTPUT_SUBDIR = Path("DATA") / "extracted_features"

_NAME_RE = {fmt: re.compile(rf"[A-Za-z0-9_]+\.{fmt}") for fmt in FORMATS}  # output file names


@dataclass(init=False)
class ExtractOptions:
    """Everything one extraction needs; defaults are what the MEDomics page offers.

    The options of the extraction types (``max_box``, ``saliency_methods`` …) are declared by the
    types themselves (:mod:`radfeat.extractors.registry`) and held in ``type_options``, but read,
    set, passed and serialised flat like the others: ``ExtractOptions(max_box=7).max_box``,
    ``to_dict()["max_box"]``.  An option no type declares is refused.
    """

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
    max_pixels: int = DEFAULT_MAX_PIXELS  # images declaring more pixels are refused (listed), never decoded
    # DICOM input (see radfeat.pipeline.dicom): header columns, view filter, VOI LUT
    dicom_tags: list[str] | None = None  # tag keywords written as text columns after filename
    views: list[str] | None = None  # keep only images whose ViewPosition is one of these
    dicom_voi_lut: bool = False  # read_xray_dcm(voi_lut=True)
    head: list[str] | None = None  # ONNX heads made by ``radfeat fit``: their scores become columns
    engine: str = "local"  # "local" (this machine) or "ray" (a Ray cluster; see radfeat.pipeline.ray_engine)
    ray_address: str | None = None  # ray engine: None = a private Ray on this machine; "auto", HOST:PORT, ray://…
    type: str = ""  # the extraction type; left out, the registry's default type
    type_options: dict[str, Any] = field(default_factory=dict)

    def __init__(self, type_options: dict[str, Any] | None = None, **values: Any) -> None:
        own = {f.name: f for f in fields(self) if f.name != "type_options"}
        for name, spec in own.items():
            if name in values:
                value = values.pop(name)
            elif name == "type":
                value = registry.default_type()
            else:
                value = spec.default if spec.default is not MISSING else spec.default_factory()  # type: ignore[misc]
            object.__setattr__(self, name, value)
        chosen = {opt.name: opt.default_value() for opt, _ in registry.options()}
        chosen.update(type_options or {})
        for name, value in values.items():
            if registry.option(name) is None:
                raise TypeError(f"ExtractOptions got an unexpected option '{name}'")
            chosen[name] = value
        object.__setattr__(self, "type_options", chosen)

    def __getattr__(self, name: str) -> Any:  # only called for names that are not plain attributes
        opt = None if name.startswith("_") or name == "type_options" else registry.option(name)
        if opt is None:
            raise AttributeError(f"'ExtractOptions' object has no attribute '{name}'")
        return self.type_options.setdefault(name, opt.default_value())  # a type registered later

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self.__dataclass_fields__ and registry.option(name) is not None:
            self.type_options[name] = value
        else:
            object.__setattr__(self, name, value)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExtractOptions:
        """Build from JSON-like data (RPC params); unknown keys are *not* ignored: they are refused."""
        known = {f.name for f in fields(cls) if f.name != "type_options"} | {o.name for o, _ in registry.options()}
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
        """Flat JSON-like data: the common options, then every type option."""
        data = asdict(self)
        data.pop("type_options")
        names = [opt.name for opt, _ in registry.options()]
        for name in names + [n for n in self.type_options if n not in names]:
            data[name] = getattr(self, name)
        return data

    def output_path(self) -> Path:
        """Where the table goes: ``--output`` if given, else ``<workspace>/DATA/extracted_features/<filename>``."""
        # The folder is resolved, never the file or the folders radfeat makes: a planted link there must be
        # refused (radfeat.output.paths), not followed.
        if self.output:
            out = Path(os.path.abspath(Path(self.output).expanduser()))
            return out.parent.resolve() / out.name
        return Path(self.workspace).expanduser().resolve() / OUTPUT_SUBDIR / self.filename


registry.COMMON_FIELDS.update(f.name for f in fields(ExtractOptions))


def validate_prefix(prefix: object) -> str | None:
    if not isinstance(prefix, str) or prefix == "":
        return "Column prefix must not be empty"
    if not WORD_RE.fullmatch(prefix):  # MEDomics' own rule (^[a-zA-Z0-9_]+$)
        return "Column prefix may contain only letters, digits and underscores"
    return None


def default_filename(kind: str | None = None, fmt: str = "csv") -> str:
    """The CLI's default output name for an extraction type and format."""
    chosen = registry.get(kind) or registry.get(registry.default_type())
    assert chosen is not None
    return chosen.default_filename(fmt if fmt in FORMATS else "csv")


def resolve_weights(opts: ExtractOptions) -> Any:
    """The weight set ``opts`` runs (a :class:`radfeat.weights.catalog.WeightSet`), or None for a type without.

    Without ``weights``: the type's default weight set, else the catalog's default when the type takes
    it; a type with neither (an ONNX run) must name its model.  Raises ``KeyError`` with a readable message.
    """
    kind = registry.get(opts.type)
    if kind is None or not kind.uses_weights:
        return None
    catalog = Catalog()
    name = opts.weights or kind.default_weights or (catalog.default if kind.catalog_default else None)
    if not name:
        raise UnknownWeights(kind.missing_weights)
    return catalog.get(name)


def weights_label(opts: ExtractOptions) -> str:
    """What a run is known by in job lists: the weight set's name, or the type when it uses none."""
    wset = resolve_weights(opts)
    return opts.type if wset is None else wset.name


def validate_filename(name: object, fmt: str = "csv") -> str | None:
    pattern = _NAME_RE.get(fmt, _NAME_RE["csv"])
    ext = f".{fmt}" if fmt in FORMATS else ".csv"
    if not isinstance(name, str) or not pattern.fullmatch(name):
        return f"File name must be letters, digits or underscores followed by {ext} (e.g. image_extracted_features{ext})"
    return name_problem(name)  # reserved on Windows (CON.csv, NUL.csv …) or too long


def validate(opts: ExtractOptions, *, check_paths: bool = True) -> list[Problem]:
    """Return every problem with ``opts`` (empty list when they are valid)."""
    problems = _input_problems(opts, check_paths)
    kind = registry.get(opts.type)
    if kind is None:
        problems.append(Problem("type", f"Extraction type must be one of: {', '.join(registry.names())}"))
    else:
        problems.extend(type_problems(kind, opts))
    problems.extend(_common_problems(opts, kind))
    if check_paths and not any(p.field in ("filename", "output", "format", "workspace") for p in problems):
        from radfeat.output.paths import output_problems  # planted links, names Windows cannot create

        problems.extend(Problem(where, message) for where, message in output_problems(opts))
    from radfeat.pipeline.headers import dicom_problems  # pydicom: only when options are checked

    problems.extend(dicom_problems(opts))
    if opts.head is not None:
        from radfeat.fit.apply import head_problems

        problems.extend(head_problems(opts.head, kind))
    problems.extend(_engine_problems(opts, kind))
    if opts.master_table is not None:
        if kind is not None and kind.no_master_table:
            problems.append(Problem("master_table", kind.no_master_table))
        else:
            problems.extend(validate_master_table(opts.master_table, opts.depth, check_paths=check_paths))
    return problems


def _input_problems(opts: ExtractOptions, check_paths: bool) -> list[Problem]:
    problems = []
    if not opts.input:
        problems.append(Problem("input", "Choose the folder that holds the patient folders"))
    elif path_problem(opts.input, "Input"):
        problems.append(Problem("input", path_problem(opts.input, "Input")))
    elif check_paths and Path(opts.input).expanduser().is_file():
        problems.append(Problem("input", f"{opts.input} is a file, not a folder; "
                                         "choose the folder that holds the patient folders"))
    elif check_paths and not Path(opts.input).expanduser().is_dir():
        problems.append(Problem("input", f"Input folder not found: {opts.input}"))
    if not is_int(opts.depth) or opts.depth < 1:
        problems.append(Problem("depth", "Folder depth must be a whole number of at least 1"))
    if opts.select is not None and not opts.select:
        problems.append(Problem("select", "Select at least one folder"))
    return problems


def type_problems(kind: ExtractionType, opts: ExtractOptions) -> list[Problem]:
    """The weight set, the feature families and the type's own options."""
    problems: list[Problem] = []
    wset = None
    if kind.uses_weights:
        try:
            wset = resolve_weights(opts)
        except (KeyError, ValueError) as exc:  # unknown name, or a malformed catalog (CatalogError)
            problems.append(Problem("weights", str(exc)))
    if wset is not None:
        own = registry.kind_of(wset.architecture)
        if own not in kind.weights_kinds:
            problems.append(Problem("weights", kind.weights_mismatch.format(
                name=wset.name, word=registry.weights_word(own), own=own)))
    if kind.features:
        problems.extend(feature_problems(opts.features, wset))
    for opt in kind.options:
        message = opt.check(getattr(opts, opt.name)) if opt.check is not None else None
        if message:
            problems.append(Problem(opt.name, message))
    if kind.check is not None:
        problems.extend(kind.check(opts, wset))
    return problems


def feature_problems(feats: Any, wset: Any) -> list[Problem]:
    """``--features``: dense, predictions or both; an autoencoder has no predictions."""
    if not feats:
        return [Problem("features", "Choose at least one of: dense features, predictions")]
    if any(f not in FEATURE_FAMILIES for f in feats):
        bad = ", ".join(sorted({f for f in feats if f not in FEATURE_FAMILIES}))
        return [Problem("features", f"Unknown feature family '{bad}'; choose from: dense, predictions")]
    if wset is not None and wset.architecture == "resnet-ae" and "dense" not in feats:
        return [Problem("features", f"'{wset.name}' is an autoencoder and gives no predictions; "
                                    "choose dense (its latent code)")]
    return []


def _common_problems(opts: ExtractOptions, kind: ExtractionType | None) -> list[Problem]:
    problems: list[Problem] = []

    def add(field_name: str, message: str | None) -> None:
        if message:
            problems.append(Problem(field_name, message))

    add("prefix", validate_prefix(opts.prefix))
    if opts.format not in FORMATS:
        add("format", f"Output format must be one of: {', '.join(FORMATS)}")
    elif opts.output is None:
        add("filename", validate_filename(opts.filename, opts.format))
    if opts.preprocess not in PREPROCESS_MODES:
        add("preprocess", f"Preprocessing must be one of: {', '.join(PREPROCESS_MODES)}")
    if opts.device not in DEVICES:
        add("device", f"Device must be one of: {', '.join(DEVICES)}")
    elif opts.engine != "ray":  # on a Ray cluster the workers' devices count (checked once connected)
        from radfeat.weights.session import device_problem  # ONNX Runtime: only when options are checked

        add("device", device_problem(opts.device))
    if opts.precision not in PRECISIONS:
        add("precision", f"Precision must be one of: {', '.join(PRECISIONS)}")
    elif opts.precision == "int8" and kind is not None and not kind.int8:
        add("precision", "int8 precision is available for DenseNet and encoder features only")
    if not is_int(opts.batch_size) or not 1 <= opts.batch_size <= 1024:
        add("batch_size", "Batch size must be a whole number between 1 and 1024")
    if opts.threads is not None and (not is_int(opts.threads) or opts.threads < 1):
        add("threads", "Threads must be a whole number of at least 1")
    if not is_int(opts.max_pixels) or not 1 <= opts.max_pixels <= MAX_MAX_PIXELS:
        add("max_pixels", f"Pixel limit must be a whole number of pixels between 1 and {MAX_MAX_PIXELS:,} "
                          f"(default {DEFAULT_MAX_PIXELS:,})")
    return problems


def _engine_problems(opts: ExtractOptions, kind: ExtractionType | None) -> list[Problem]:
    """``engine`` and ``ray_address`` (see :mod:`radfeat.pipeline.ray_engine`)."""
    if opts.engine not in ENGINES:
        return [Problem("engine", f"Engine must be one of: {', '.join(ENGINES)}")]
    if opts.engine == "local":
        if opts.ray_address:
            return [Problem("ray_address", "A Ray address needs the Ray engine (--engine ray)")]
        return []
    from radfeat.pipeline.ray_cluster import address_problem, ray_missing

    problems = [Problem("engine", msg) for msg in (ray_missing(),) if msg]
    if kind is not None and kind.no_ray_engine:
        problems.append(Problem("engine", kind.no_ray_engine))
    if opts.head:  # a head holds its own ONNX Runtime session, which the Ray workers do not rebuild yet
        problems.append(Problem("engine", "Fitted heads (--head) run on the local engine only"))
    msg = address_problem(opts.ray_address)
    if msg:
        problems.append(Problem("ray_address", msg))
    return problems


def check(opts: ExtractOptions, *, check_paths: bool = True) -> None:
    """Raise :class:`OptionsError` listing every problem, if any."""
    problems = validate(opts, check_paths=check_paths)
    if problems:
        raise OptionsError(problems)
