"""``radfeat models list|fetch|add|export|add-onnx|import``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from radfeat.cli.parser import split
from radfeat.extractors.onnx_inspect import OnnxModelError
from radfeat.weights import registration
from radfeat.weights.catalog import Catalog
from radfeat.weights.download import fetch
from radfeat.weights.export import export, needs_export
from radfeat.weights.offline_import import cli_import
from radfeat.weights.readiness import ensure_weights
from tqdm import tqdm


def run(a: argparse.Namespace) -> int:
    """``radfeat models …``; every refusal is a :class:`~radfeat.errors.RadfeatError` that :func:`radfeat.cli.main` reports."""
    if a.models_cmd == "list":
        return _list_models(registration.status(), a.json)
    if a.models_cmd == "add":
        registration.add_weights(a.name, Path(a.path))
    elif a.models_cmd == "import":
        return cli_import(a.folder)
    elif a.models_cmd == "add-onnx":
        registration.add_onnx(a.name, Path(a.path), input_size=a.input_size, channels=a.channels,
                              mean=_floats(a.mean, "mean"), std=_floats(a.std, "std"), scale=a.scale,
                              outputs=split(a.outputs) or None, crop=a.crop, pool=a.pool, task=a.task,
                              labels=split(a.labels) or None, activation=a.activation)
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
        return [float(v) for v in split(text)]
    except ValueError:
        raise OnnxModelError(f"--{what} must be numbers separated by commas, e.g. 0.485,0.456,0.406") from None
