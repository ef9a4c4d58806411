"""The extraction-type registry: every type declares itself once, in a light declaration module.

A declaration module (:mod:`radfeat.extractors.declarations`: ``densenet.py``, ``fractal.py`` …)
builds an :class:`ExtractionType` — name, label, description, its :class:`Option` fields with
defaults and validation, its columns, the weight sets it runs and where its
:class:`~radfeat.extractors.base.Extractor` lives (load, run, provenance) — and passes it to
:func:`register` at import time.  :func:`discover` imports every declaration module by walking that
package (the way pyradiomics finds its feature classes by name), so a new type is one new declaration
file (plus its implementation module, unless the declaration holds the class itself): option
validation, the CLI's ``--type`` choices, flags and help, the ``list_types`` RPC method, the page's
type cards and fields and the bundle (whose recipe walks the package files) all read this registry.

Declarations import nothing heavy: the extractor is named ``"module:Class"`` and imported on first use
(:meth:`ExtractionType.extractor_class`), so ``radfeat --help`` and option validation never load
ONNX Runtime, SciPy or pandas.

Type options travel flat, as before: ``ExtractOptions.max_box``, RPC ``{"max_box": 41}``, CLI
``--max-box``.  Their names are unique across types and distinct from the common options.
"""

from __future__ import annotations

import copy
import importlib
import pkgutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from radfeat.errors import Problem

if TYPE_CHECKING:  # only for annotations: the registry imports no type module at import time
    from radfeat.extractors.base import Extractor
    from radfeat.options import ExtractOptions
    from radfeat.weights.catalog import WeightSet

OPTION_KINDS = ("int", "choice", "multichoice", "text", "bool")


@dataclass(frozen=True)
class Option:
    """One option of a type: an ``ExtractOptions`` attribute, an RPC key, a CLI flag and a page field.

    ``check(value)`` returns the sentence that refuses a bad value (the same words everywhere) or
    ``None``; checks that need the weight set or other options belong in :attr:`ExtractionType.check`.
    ``choices`` ``None`` for a ``multichoice`` means the choices depend on the weight set (pathologies).
    A ``multichoice``/``text`` list is written comma-separated on the command line.
    """

    name: str
    label: str
    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    min: int | None = None
    max: int | None = None
    check: Callable[[Any], str | None] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in OPTION_KINDS:
            raise ValueError(f"option {self.name}: kind must be one of {', '.join(OPTION_KINDS)}")

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def default_value(self) -> Any:
        """A fresh copy of the default (lists are never shared between option objects)."""
        return copy.deepcopy(self.default)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "kind": self.kind, "default": self.default,
                "choices": None if self.choices is None else list(self.choices), "min": self.min, "max": self.max,
                "help": self.help}


@dataclass(frozen=True)
class ExtractionType:
    """Everything radfeat needs to know about one extraction type (see the module docstring)."""

    name: str
    label: str
    description: str
    extractor: type[Extractor] | str  # the class, or "module:Class" imported on first use
    columns: str  # human text for the page and the CLI help, e.g. "<prefix>_fractal_<feature>"
    column_count: int | None = None  # columns after level_*/filename, when fixed
    options: tuple[Option, ...] = ()
    default_stem: str = "image_extracted_features"  # default output file name, without the format suffix
    order: int = 100  # position in lists (CLI help, validation messages, the page)
    is_default: bool = False
    # -- weights ------------------------------------------------------------------------------------
    weights_kinds: tuple[str, ...] = ()  # kinds (home types) of the weight sets this type runs; () = none
    architectures: tuple[str, ...] = ()  # catalog architecture prefixes whose weight sets are of this kind
    weights_word: str = ""  # how this kind of weight set is called in messages ("a TorchXRayVision DenseNet")
    default_weights: str | None = None  # weight set used when none is named ...
    catalog_default: bool = False  # ... or the catalog's default one
    missing_weights: str = ""  # the message when no weight set is named and there is no default
    weights_mismatch: str = "Weights '{name}' are {word}; choose type '{own}'"
    # -- which common options apply ------------------------------------------------------------------
    features: bool = False  # honours --features dense,predictions
    int8: bool = False  # offers --precision int8
    preprocess: bool = False  # honours --preprocess xrv|medomics
    no_master_table: str | None = None  # why a master table is refused (None: it is offered)
    no_ray_engine: str | None = None  # why --engine ray is refused (None: it runs on a Ray cluster too)
    check: Callable[[ExtractOptions, WeightSet | None], list[Problem]] | None = field(default=None, compare=False)
    # folders the type writes besides the table (saliency maps); validation refuses links there
    output_folders: Callable[[ExtractOptions], list[Path]] | None = field(default=None, compare=False)

    def extractor_class(self) -> type[Extractor]:
        """The implementation, imported the first time a run needs it when declared as ``"module:Class"``."""
        if isinstance(self.extractor, str):
            return pkgutil.resolve_name(self.extractor)  # type: ignore[no-any-return]
        return self.extractor

    @property
    def implemented_in(self) -> str:
        """The module of the extractor class (without importing it)."""
        return self.extractor.partition(":")[0] if isinstance(self.extractor, str) else self.extractor.__module__

    @property
    def uses_weights(self) -> bool:
        return bool(self.weights_kinds)

    def default_filename(self, fmt: str) -> str:
        return f"{self.default_stem}.{fmt}"


_TYPES: dict[str, ExtractionType] = {}
_OPTIONS: dict[str, tuple[Option, str]] = {}  # option name -> (option, type name)
_lock = threading.RLock()
_discovered = False
# names of ExtractOptions' own fields; options.py fills it (the registry must not import options.py)
COMMON_FIELDS: set[str] = set()


def register(kind: ExtractionType) -> ExtractionType:
    """Add a type (called by its module at import time); refuses a clash of type or option names."""
    with _lock:
        old = _TYPES.get(kind.name)
        if old is not None and old.implemented_in != kind.implemented_in:
            raise ValueError(f"extraction type '{kind.name}' is already registered by {old.implemented_in}")
        if old is not None:
            unregister(kind.name)  # the same module imported again (reload)
        for opt in kind.options:
            owner = _OPTIONS.get(opt.name)
            if opt.name in COMMON_FIELDS or owner is not None:
                where = "a common option" if owner is None else f"an option of type '{owner[1]}'"
                raise ValueError(f"option '{opt.name}' of type '{kind.name}' is already {where}")
        _TYPES[kind.name] = kind
        for opt in kind.options:
            _OPTIONS[opt.name] = (opt, kind.name)
        return kind


def unregister(name: str) -> None:
    """Remove a type (tests add throw-away types)."""
    with _lock:
        kind = _TYPES.pop(name, None)
        if kind is not None:
            for opt in kind.options:
                _OPTIONS.pop(opt.name, None)


def discover() -> None:
    """Import every module of :mod:`radfeat.extractors.declarations` once, so that each type registers itself."""
    global _discovered
    if _discovered:
        return
    with _lock:
        if _discovered:
            return
        importlib.import_module("radfeat.options")  # fills COMMON_FIELDS, which register() checks names against
        import radfeat.extractors.declarations as package

        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{package.__name__}.{info.name}")
        _discovered = True


def types() -> list[ExtractionType]:
    """Every registered type, in display order."""
    discover()
    with _lock:
        return sorted(_TYPES.values(), key=lambda t: (t.order, t.name))


def names() -> list[str]:
    return [t.name for t in types()]


def get(name: object) -> ExtractionType | None:
    discover()
    return _TYPES.get(name) if isinstance(name, str) else None


def default_type() -> str:
    """The type a run has when none is chosen."""
    listed = types()
    return next((t.name for t in listed if t.is_default), listed[0].name)


def options() -> Iterator[tuple[Option, ExtractionType]]:
    """Every type option with its type, in display order."""
    for kind in types():
        for opt in kind.options:
            yield opt, kind


def option(name: str) -> Option | None:
    discover()
    found = _OPTIONS.get(name)
    return None if found is None else found[0]


def kind_of(architecture: str) -> str | None:
    """The type whose weight sets have this catalog ``architecture`` (the weight set's kind), if any."""
    for kind in types():
        if any(architecture.startswith(prefix) for prefix in kind.architectures):
            return kind.name
    return None


def weights_word(kind: str | None) -> str:
    """How weight sets of a kind are called in messages."""
    owner = get(kind)
    return owner.weights_word if owner is not None and owner.weights_word else "of an unknown kind"


def describe_types(default_weights: str | None = None) -> dict[str, Any]:
    """The ``list_types`` answer: every type as the page and scripts need it (see README, "JSON-RPC")."""
    entries = []
    for kind in types():
        weights = kind.default_weights or (default_weights if kind.catalog_default else None)
        entries.append({
            "name": kind.name, "label": kind.label, "description": kind.description,
            "uses_weights": kind.uses_weights, "weights_kinds": list(kind.weights_kinds),
            "default_weights": weights, "default_filename": kind.default_filename("csv"),
            "columns": kind.columns, "column_count": kind.column_count,
            "options": [opt.to_json() for opt in kind.options],
            "features": kind.features, "int8": kind.int8, "preprocess": kind.preprocess,
            "master_table": kind.no_master_table is None,
        })
    return {"default": default_type(), "types": entries}
