"""The extraction-type registry: one declaration per type feeds validation, the CLI, list_types and runs.

A throw-away type registered at run time shows up everywhere a built-in type does, and runs end to
end through the real engine; the built-in types' names appear as literals only in their own modules.
"""

from __future__ import annotations

import ast
import contextlib
import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers import serving
from radfeat import cli
from radfeat.errors import OptionsError, Problem
from radfeat.extractors import registry
from radfeat.extractors.base import BatchResult, Extractor
from radfeat.options import ExtractOptions, check, validate
from radfeat.pipeline.discovery import ImageRef
from radfeat.pipeline.images import read_gray

BACKEND = Path(__file__).resolve().parents[1] / "backend"


class MeanExtractor(Extractor):
    """Mean grey level of each image over ``mean_bands`` horizontal bands."""

    kind = "meanbands"

    def columns(self) -> list[str]:
        return [f"{self.opts.prefix}_meanbands_{i}" for i in range(self.opts.mean_bands)]

    def fingerprint(self) -> dict[str, Any]:
        return {"type": self.kind, "bands": self.opts.mean_bands, "prefix": self.opts.prefix}

    def load(self, ref: ImageRef) -> np.ndarray:
        pixels, maxval = read_gray(ref.path)
        bands = np.array_split(pixels.astype(np.float64) / maxval, self.opts.mean_bands, axis=0)
        return np.array([b.mean() for b in bands])

    def run(self, items: Sequence[np.ndarray], refs: Sequence[ImageRef]) -> BatchResult:
        return BatchResult(list(refs), blocks=[np.stack(items)])


def _bands_problem(value: object) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 8
    return None if ok else "Bands must be a whole number between 1 and 8"


def _no_odd_prefix(opts: ExtractOptions, wset: Any) -> list[Problem]:
    return [Problem("prefix", "Mean bands need a prefix other than 'odd'")] if opts.prefix == "odd" else []


@pytest.fixture
def meanbands() -> Iterator[registry.ExtractionType]:
    kind = registry.register(registry.ExtractionType(
        name="meanbands", label="Mean bands", description="Mean grey level of horizontal bands.",
        extractor=MeanExtractor, columns="<prefix>_meanbands_0…", order=90, default_stem="image_mean_bands",
        options=(registry.Option("mean_bands", "Bands", "int", 3, min=1, max=8, check=_bands_problem,
                                 help="number of horizontal bands"),),
        check=_no_odd_prefix))
    yield kind
    registry.unregister(kind.name)


def test_throwaway_type_in_validation_and_options(meanbands, tmp_path):
    assert "meanbands" in registry.names()
    opts = ExtractOptions(input=str(tmp_path), type="meanbands")
    assert opts.mean_bands == 3 and opts.to_dict()["mean_bands"] == 3
    assert validate(opts) == []
    bad = ExtractOptions.from_dict({"input": str(tmp_path), "type": "meanbands", "mean_bands": 9, "prefix": "odd"})
    assert [(p.field, p.message) for p in validate(bad)] == [
        ("mean_bands", "Bands must be a whole number between 1 and 8"),
        ("prefix", "Mean bands need a prefix other than 'odd'")]
    with pytest.raises(OptionsError):
        check(bad)
    unknown = validate(ExtractOptions(input=str(tmp_path), type="nosuch"))
    assert unknown[0].message.startswith("Extraction type must be one of: densenet, encoder, onnx, fractal, saliency")
    assert unknown[0].message.endswith(", meanbands")
    with pytest.raises(TypeError):
        ExtractOptions(no_such_option=1)


def test_throwaway_type_in_cli_help_and_run(meanbands, make_patients, tmp_path, radfeat_home):
    parser = cli.build_parser()
    extract_parser = parser._subparsers._group_actions[0].choices["extract"]  # noqa: SLF001
    text = extract_parser.format_help()
    assert "meanbands" in text and "--mean-bands" in text and "number of horizontal bands" in text

    root = tmp_path / "data"
    make_patients(root, n_patients=2, per_folder=1, size=(40, 30))
    workspace = tmp_path / "ws"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        status = cli.main(["extract", str(root), "--type", "meanbands", "--mean-bands", "2", "--workspace",
                           str(workspace), "--quiet"])
    assert status == 0
    table = pd.read_csv(workspace / "DATA" / "extracted_features" / "image_mean_bands.csv", dtype={"level_1": str})
    assert list(table.columns) == ["level_1", "filename", "img_meanbands_0", "img_meanbands_1"]
    assert len(table) == 2 and table["img_meanbands_0"].between(0, 1).all()

    with contextlib.redirect_stderr(io.StringIO()) as err:
        status = cli.main(["extract", str(root), "--type", "meanbands", "--mean-bands", "0", "--quiet"])
    assert status == 2 and "Bands must be a whole number between 1 and 8" in err.getvalue()


def test_list_types_over_rpc(meanbands, workspace, tiny_weights):
    with serving(workspace) as (_srv, rpc):
        answer = rpc("list_types")
    assert answer["default"] == "densenet"
    by_name = {t["name"]: t for t in answer["types"]}
    assert [t["name"] for t in answer["types"]] == ["densenet", "encoder", "onnx", "fractal", "saliency", "anatomy", "meanbands"]
    dense = by_name["densenet"]
    assert dense["uses_weights"] and dense["weights_kinds"] == ["densenet"]
    assert dense["default_weights"] == "densenet121-res224-chex" and dense["column_count"] == 1042
    assert dense["default_filename"] == "image_extracted_features.csv" and dense["options"] == []
    fractal = by_name["fractal"]
    assert not fractal["uses_weights"] and fractal["weights_kinds"] == [] and fractal["default_weights"] is None
    assert fractal["default_filename"] == "image_fractal_features.csv"
    (max_box,) = fractal["options"]
    assert {k: max_box[k] for k in ("name", "kind", "default", "min", "max", "choices")} == {
        "name": "max_box", "kind": "int", "default": 41, "min": 3, "max": 255, "choices": None}
    assert by_name["saliency"]["weights_kinds"] == ["densenet"] and not by_name["saliency"]["master_table"]
    methods = next(o for o in by_name["saliency"]["options"] if o["name"] == "saliency_methods")
    assert methods["kind"] == "multichoice" and methods["choices"] == ["gradcam", "gradcampp", "eigencam", "lime"]
    assert by_name["encoder"]["default_weights"] == "resnet50-res512-all"
    assert by_name["onnx"]["default_weights"] is None
    assert by_name["meanbands"]["options"][0]["name"] == "mean_bands"
    for entry in answer["types"]:
        assert set(entry) >= {"name", "label", "description", "uses_weights", "weights_kinds", "default_weights",
                              "default_filename", "columns", "column_count", "options"}


def test_a_type_name_clash_is_refused(meanbands):
    with pytest.raises(ValueError, match="already"):
        registry.register(registry.ExtractionType(
            name="other", label="x", description="x", extractor=Extractor, columns="x",
            options=(registry.Option("mean_bands", "x", "int", 1, help="x"),)))
    with pytest.raises(ValueError, match="common option"):
        registry.register(registry.ExtractionType(
            name="other", label="x", description="x", extractor=Extractor, columns="x",
            options=(registry.Option("prefix", "x", "text", "", help="x"),)))
    assert "other" not in registry.names()


def _string_literals(tree: ast.AST) -> Iterator[tuple[int, str]]:
    docstrings = set()  # and dictionary keys: record fields such as provenance's "onnx" file name
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            docstrings.update(id(key) for key in node.keys if key is not None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def test_type_names_are_literals_only_in_their_own_modules():
    """A type's name is spelled only in its declaration and its implementation modules.

    weights/ is left out: it holds catalog data (architectures such as ``densenet121`` and the ``onnx``
    architecture of registered models), not extraction types.  The dataset view's column kinds
    (``id``, ``feature``, ``prediction``, ``fractal``, ``text``: words of its RPC answer) name the
    ``<prefix>_fractal_<feature>`` column family, not the type.
    """
    column_kind_words = {("output/tabular.py", "fractal"), ("output/projection.py", "fractal")}
    owners: dict[str, set[Path]] = {}  # a type's declaration module and its extractor's module
    for path in sorted((BACKEND / "extractors" / "declarations").glob("[!_]*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):  # ExtractionType(name="…", …)
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "ExtractionType":
                name = next(k.value.value for k in node.keywords if k.arg == "name")  # type: ignore[attr-defined]
                owners.setdefault(name, set()).add(path.relative_to(BACKEND))
    for kind in registry.types():
        implementation = Path(kind.implemented_in.replace("radfeat.", "").replace(".", "/") + ".py")
        owners.setdefault(kind.name, set()).add(implementation)
    found = []
    for path in sorted(BACKEND.rglob("*.py")):
        rel = path.relative_to(BACKEND)
        if rel.parts[0] == "weights":
            continue
        for line, text in _string_literals(ast.parse(path.read_text(encoding="utf-8"))):
            if text in owners and rel not in owners[text] and (str(rel), text) not in column_kind_words:
                found.append(f"{rel}:{line}: {text!r}")
    assert not found, "type names outside their modules:\n" + "\n".join(found)
