"""`radfeat models import FOLDER` (radfeat.weights.offline_import): weights and exports registered from a folder, no network."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from radfeat.weights.catalog import Catalog
from radfeat.weights.digest import sha256_file
from radfeat.weights.offline_import import IMPORTED, PRESENT, REJECTED, import_folder

ENTRY = "densenet121-res224-nih"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from radfeat.synthetic import random_checkpoint

    return random_checkpoint(tmp_path_factory.mktemp("offline-ckpt") / "random.pt", seed=7, small=True)


def _catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sha256: str | None) -> str:
    """$RADFEAT_CATALOG = the shipped catalog with ENTRY's sha256 set; returns ENTRY's file name."""
    raw = json.loads(Path(__file__).resolve().parents[1].joinpath("models", "catalog.json").read_text())
    for item in raw["weights"]:
        if item["name"] == ENTRY:
            item["sha256"] = sha256
            # the real operating points are tiny (0.002…) and would amplify a random net's float noise
            # past the export check; raw outputs keep the ONNX check meaningful
            item["op_threshs"] = None
            item["url"] = "http://127.0.0.1:9/never-used.pt"  # an accidental download fails at once
            file = item["file"]
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(raw))
    monkeypatch.setenv("RADFEAT_CATALOG", str(path))
    return file


def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    import radfeat.weights.download

    def refuse(*a, **k):
        raise AssertionError("the offline import must not download anything")

    monkeypatch.setattr(radfeat.weights.download, "fetch", refuse)


def test_import_verifies_sha256_and_copies(tmp_path, monkeypatch, home, ckpt):
    _no_network(monkeypatch)
    file = _catalog(tmp_path, monkeypatch, sha256_file(ckpt))
    usb = tmp_path / "usb" / "models_data"
    usb.mkdir(parents=True)
    shutil.copyfile(ckpt, usb / file)
    (usb / "unrelated.pt").write_bytes(b"not ours")  # names that match no catalog entry are ignored
    lines: list[str] = []

    report = import_folder(tmp_path / "usb", log=lines.append)

    assert [(r.name, r.status) for r in report.results] == [(ENTRY, IMPORTED)]
    assert report.exit_code == 0
    ws = Catalog().get(ENTRY)
    assert ws.downloaded and ws.path == home / "weights" / file
    assert sha256_file(ws.path) == sha256_file(ckpt)
    assert any("imported" in line for line in lines)
    # importing again is a no-op
    again = import_folder(tmp_path / "usb", log=lines.append)
    assert [r.status for r in again.results] == [PRESENT] and again.exit_code == 0


def test_import_rejects_checksum_mismatch(tmp_path, monkeypatch, home, ckpt):
    file = _catalog(tmp_path, monkeypatch, "0" * 64)
    src = tmp_path / "usb"
    src.mkdir()
    shutil.copyfile(ckpt, src / file)

    report = import_folder(src, log=lambda m: None)

    assert [r.status for r in report.results] == [REJECTED]
    assert "does not match" in report.results[0].message
    assert report.exit_code == 1
    assert not Catalog().get(ENTRY).downloaded


def test_import_without_checksum_checks_the_checkpoint(tmp_path, monkeypatch, home, ckpt):
    file = _catalog(tmp_path, monkeypatch, None)
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    shutil.copyfile(ckpt, good / file)
    (bad / file).write_bytes(b"\x80\x02 definitely not a checkpoint")
    lines: list[str] = []

    rejected = import_folder(bad, log=lines.append)
    assert [r.status for r in rejected.results] == [REJECTED] and not Catalog().get(ENTRY).downloaded

    accepted = import_folder(good, log=lines.append)
    assert [r.status for r in accepted.results] == [IMPORTED]
    assert accepted.results[0].sha256 == sha256_file(ckpt)
    assert any("no checksum in the catalog" in line for line in lines)  # trust on first use: digest printed


def test_empty_folder_and_missing_folder(tmp_path, monkeypatch, home):
    _catalog(tmp_path, monkeypatch, None)
    lines: list[str] = []
    report = import_folder(tmp_path, log=lines.append)
    assert report.results == [] and report.exit_code == 1
    assert any("Expected file names" in line for line in lines)
    with pytest.raises(ValueError):
        import_folder(tmp_path / "nope")


def _tamper(onnx_file: Path, value: float = 0.987654) -> None:
    """Rewrite an export so that every prediction is ``value`` (same name, same inputs and outputs)."""
    import onnx
    from onnx import helper

    model = onnx.load(str(onnx_file))
    for node in model.graph.node:
        node.output[:] = ["predictions_real" if o == "predictions" else o for o in node.output]
    model.graph.node.extend([
        helper.make_node("Mul", ["predictions_real", "zero"], ["predictions_zero"]),
        helper.make_node("Add", ["predictions_zero", "fake"], ["predictions"]),
    ])
    model.graph.initializer.extend([helper.make_tensor("zero", onnx.TensorProto.FLOAT, [], [0.0]),
                                    helper.make_tensor("fake", onnx.TensorProto.FLOAT, [], [value])])
    onnx.save(model, str(onnx_file))


def test_tampered_export_beside_genuine_weights_is_never_used(tmp_path, monkeypatch, ckpt, make_patients):
    """A connected machine's home with a tampered export: ``radfeat models import`` exports again, predictions are real."""
    import subprocess
    import sys

    import pandas as pd
    from radfeat.weights.export import export

    file = _catalog(tmp_path, monkeypatch, sha256_file(ckpt))
    src = tmp_path / "download"
    src.mkdir()
    shutil.copyfile(ckpt, src / file)
    monkeypatch.setenv("RADFEAT_HOME", str(tmp_path / "connected"))
    import_folder(src, log=lambda m: None)
    genuine = export(Catalog().get(ENTRY), log=lambda m: None)
    _tamper(genuine.path)

    env = {**os.environ, "RADFEAT_HOME": str(tmp_path / "offline")}
    proc = subprocess.run([sys.executable, "-m", "radfeat", "models", "import", str(tmp_path / "connected")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "not copying" in proc.stdout + proc.stderr
    make_patients(tmp_path / "images", n_patients=2, per_folder=1)
    out = tmp_path / "out.csv"
    proc = subprocess.run([sys.executable, "-m", "radfeat", "extract", str(tmp_path / "images"), "--weights", ENTRY,
                           "--output", str(out), "--quiet"], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    preds = pd.read_csv(out).filter(like="_predictions_").to_numpy()
    assert preds.shape == (2, 18) and not np.allclose(preds, 0.987654, atol=1e-6)
    assert np.unique(preds.round(6)).size > 2
