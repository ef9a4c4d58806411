"""The weights catalog: which TorchXRayVision weight sets exist and what they predict.

The catalog is data (``models/catalog.json``, shipped as ``radfeat.modeldata``).
``$RADFEAT_CATALOG`` replaces it (hospital mirrors, tests).  Weight sets that a
user registers with ``radfeat models add`` live in ``$RADFEAT_HOME/user_weights.json``
and behave like catalog entries.
"""

from __future__ import annotations

import difflib
import json
import math
import os
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from radfeat.errors import NotFound
from radfeat.output.atomic import write_text_atomic
from radfeat.weights import home
from radfeat.weights.catalog_schema import CatalogError, check_catalog, check_file, check_user_registry

N_PATHOLOGIES = 18


class UnknownWeights(NotFound, KeyError):
    """Raised for a weights name that is neither in the catalog nor user-registered."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


@dataclass(frozen=True)
class WeightSet:
    """One set of DenseNet-121 weights and what its 18 heads mean."""

    name: str
    file: str
    labels: tuple[str, ...]
    op_threshs: tuple[float | None, ...] | None = None
    url: str | None = None
    sha256: str | None = None
    size: int | None = None
    input_size: int = 224
    architecture: str = "densenet121"
    description: str = ""
    apply_sigmoid: bool = False
    source: str = "catalog"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def path(self) -> Path:
        """Where the checkpoint file lives (or will live once fetched): always a plain name in the weights folder."""
        problem = check_file(self.file)
        if problem:
            raise CatalogError(f"weights '{self.name}': {problem}")
        return home.weights_dir() / self.file

    @property
    def downloaded(self) -> bool:
        return self.path.is_file()

    @property
    def trained_labels(self) -> list[str]:
        return [label for label in self.labels if label]

    def thresholds_array(self) -> list[float] | None:
        """Operating points with NaN for untrained heads, as TorchXRayVision stores them."""
        if self.op_threshs is None:
            return None
        return [math.nan if t is None else float(t) for t in self.op_threshs]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["labels"] = list(self.labels)
        data["op_threshs"] = None if self.op_threshs is None else list(self.op_threshs)
        extra = data.pop("extra")
        if extra:  # model settings of non-TorchXRayVision entries (ONNX models: preprocessing, outputs)
            data["extra"] = extra
        return data


def _entry(raw: dict[str, Any], source: str) -> WeightSet:
    thr = raw.get("op_threshs")
    return WeightSet(
        name=raw["name"],
        file=raw["file"],
        labels=tuple(raw.get("labels") or ()),
        op_threshs=None if thr is None else tuple(None if t is None else float(t) for t in thr),
        url=raw.get("url"),
        sha256=(raw.get("sha256") or None),
        size=raw.get("size"),
        input_size=int(raw.get("input_size", 224)),
        architecture=raw.get("architecture", "densenet121"),
        description=raw.get("description", ""),
        apply_sigmoid=bool(raw.get("apply_sigmoid", False)),
        source=source,
        extra=dict(raw.get("extra") or {}),
    )


MAX_CATALOG_BYTES = 16 << 20


def _load_json(path: Path, what: str) -> Any:
    """A catalog or registry file as JSON; any failure is one line (:class:`CatalogError`)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CATALOG_BYTES + 1)
        if len(data) > MAX_CATALOG_BYTES:
            raise CatalogError(f"{what} {path}: larger than {MAX_CATALOG_BYTES >> 20} MB")
        return json.loads(data, parse_constant=_no_constant)
    except OSError as exc:
        raise CatalogError(f"{what} {path}: cannot be read ({exc.strerror or exc})") from None
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, CatalogError):
            raise
        raise CatalogError(f"{what} {path}: not valid JSON ({str(exc).splitlines()[0][:200]})") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _read_catalog() -> dict[str, Any]:
    override = os.environ.get("RADFEAT_CATALOG")
    if override:
        path = Path(override).expanduser()
        return check_catalog(_load_json(path, "catalog"), path)
    raw = json.loads(resources.files("radfeat.modeldata").joinpath("catalog.json").read_text("utf-8"))
    return check_catalog(raw, "models/catalog.json")


def default_pathologies() -> list[str]:
    """TorchXRayVision's 18 default pathologies, in prediction-column order."""
    return list(_read_catalog()["pathologies"])


class Catalog:
    """Catalog entries plus user-registered weights, looked up by name."""

    def __init__(self) -> None:
        raw = _read_catalog()
        self.default: str = raw.get("default") or raw["weights"][0]["name"]
        self.pathologies: list[str] = list(raw.get("pathologies", []))
        self._entries: dict[str, WeightSet] = {}
        for item in raw["weights"]:
            self._entries[item["name"]] = _entry(item, "catalog")
        for item in self._read_user().values():
            self._entries[item["name"]] = _entry(item, "user")

    @staticmethod
    def _read_user() -> dict[str, dict[str, Any]]:
        path = home.user_catalog_path()
        if not path.is_file():
            return {}
        return check_user_registry(_load_json(path, "registry"), path)

    def names(self) -> list[str]:
        return list(self._entries)

    def entries(self) -> list[WeightSet]:
        return list(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str | None = None) -> WeightSet:
        name = name or self.default
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, self.names(), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise UnknownWeights(
                f"Unknown weights '{name}'.{hint} Choose one of: {', '.join(self.names())}"
            ) from None

    def register(self, entry: WeightSet) -> None:
        """Add or replace a user weight set (persisted in the home folder)."""
        users = self._read_user()
        users[entry.name] = entry.to_json() | {"source": "user"}
        write_text_atomic(home.user_catalog_path(), json.dumps(users, indent=2))
        self._entries[entry.name] = entry
