"""Options of ``radfeat fit`` and their validation (the same words in CLI, RPC and page)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from radfeat.options import OptionsError, Problem

MODEL_KINDS = ("logistic", "mlp")
MODELS_SUBDIR = Path("DATA") / "models"
MIN_FOLDS, MAX_FOLDS = 2, 20
OUTPUT_FILES = ("metrics.json", "folds.csv", "predictions.csv", "roc.png")
_NAME_RE = re.compile(r"[A-Za-z0-9_]+")
_COLUMN_RE = re.compile(r"[^A-Za-z0-9_]+")


@dataclass
class FitOptions:
    """What one ``radfeat fit`` needs.

    ``labels`` is a CSV holding ``target`` (omit it when the table has the target column itself);
    it is joined to the table on ``join`` (default: ``filename`` when both have it, else the patient
    column).  ``group`` is the patient column (default ``level_1``, else the master table's
    ``level_K``).  ``columns`` are feature column names or glob patterns (default: every numeric
    column that is not an identifier, the target or the date).
    """

    table: str = ""
    target: str = ""
    labels: str | None = None
    join: str | None = None
    group: str | None = None
    columns: list[str] | None = None
    positive: str | None = None
    models: list[str] = field(default_factory=lambda: list(MODEL_KINDS))
    folds: int = 5
    seed: int = 0
    name: str | None = None
    workspace: str = "."

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FitOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise OptionsError([Problem(k, f"Unknown option '{k}'") for k in unknown])
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def model_name(self) -> str:
        """The output folder's name: ``name``, else ``<table stem>_<target>`` made safe."""
        if self.name:
            return self.name
        stem = Path(self.table).name.split(".")[0] or "table"
        return _COLUMN_RE.sub("_", f"{stem}_{self.target}").strip("_") or "model"

    def output_dir(self) -> Path:
        """``<workspace>/DATA/models/<name>``; links below the workspace are not resolved (they are refused)."""
        return Path(self.workspace).expanduser().resolve() / MODELS_SUBDIR / self.model_name()

    def output_files(self) -> list[Path]:
        """The model folder and every file a fit writes into it."""
        out = self.output_dir()
        heads = [f"{k}.onnx" for k in MODEL_KINDS if isinstance(self.models, list) and k in self.models]
        return [out, *(out / n for n in (*OUTPUT_FILES, *heads))]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


def validate(opts: FitOptions, *, check_paths: bool = True) -> list[Problem]:
    """Every problem with ``opts`` that can be seen without reading the data."""
    problems: list[Problem] = []

    def add(name: str, message: str) -> None:
        problems.append(Problem(name, message))

    if not opts.table:
        add("table", "Choose the extracted table to fit on")
    elif check_paths and not Path(opts.table).expanduser().is_file():
        add("table", f"Table not found: {opts.table}")
    if not isinstance(opts.target, str) or not opts.target:
        add("target", "Choose the target column (the label to predict)")
    if opts.labels is not None and (not isinstance(opts.labels, str) or not opts.labels):
        add("labels", "Labels must be the path of a CSV file")
    elif opts.labels and check_paths and not Path(opts.labels).expanduser().is_file():
        add("labels", f"Labels CSV not found: {opts.labels}")
    for key in ("join", "group", "positive"):
        value = getattr(opts, key)
        if value is not None and (not isinstance(value, str) or not value):
            add(key, f"{key.capitalize()} must be a column name" if key != "positive" else
                "Positive class must be one of the target's values")
    if opts.columns is not None and (not _str_list(opts.columns) or not opts.columns):
        add("columns", "Feature columns must be a non-empty list of column names or patterns (e.g. img_densefeatures_*)")
    if not _str_list(opts.models) or not opts.models or any(m not in MODEL_KINDS for m in opts.models):
        add("models", f"Models must be chosen from: {', '.join(MODEL_KINDS)}")
    if not _is_int(opts.folds) or not MIN_FOLDS <= opts.folds <= MAX_FOLDS:
        add("folds", f"Folds must be a whole number between {MIN_FOLDS} and {MAX_FOLDS}")
    if not _is_int(opts.seed) or opts.seed < 0:
        add("seed", "Seed must be a whole number of at least 0")
    if opts.name is not None and (not isinstance(opts.name, str) or not _NAME_RE.fullmatch(opts.name)):
        add("name", "Model name may contain only letters, digits and underscores")
    elif check_paths and isinstance(opts.workspace, str) and opts.workspace:
        problems.extend(output_problems(opts))
    return problems


def output_problems(opts: FitOptions) -> list[Problem]:
    """A planted symbolic link at ``DATA``, ``DATA/models``, the model folder or any output file is refused."""
    from radfeat.output.atomic import link_below

    try:
        workspace = Path(opts.workspace).expanduser().resolve()
        paths = opts.output_files()
    except (OSError, ValueError, RuntimeError) as exc:
        return [Problem("name", f"Model folder cannot be used: {exc}")]
    for path in paths:
        link = link_below(path, workspace)
        if link is not None:
            return [Problem("name", f"{link} is a symbolic link; radfeat never writes through links "
                                    "(remove it or choose another name)")]
        is_folder = path == paths[0]
        if path.exists() and not (path.is_dir() if is_folder else path.is_file()):
            return [Problem("name", f"{path} exists and is not a {'folder' if is_folder else 'file'}")]
    return []


def check(opts: FitOptions, *, check_paths: bool = True) -> None:
    problems = validate(opts, check_paths=check_paths)
    if problems:
        raise OptionsError(problems)
