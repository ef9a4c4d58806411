"""``radfeat fit`` never writes through a planted symbolic link, and its model folder is still swapped in whole.

Through the real ``radfeat`` command (a subprocess), over JSON-RPC, and against the safe writer itself for a
link swapped in after validation.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("skl2onnx")

from helpers import serving, synthetic_table  # noqa: E402
from test_hardening_cli import one_line_error, radfeat  # noqa: E402

WORDS = "is a symbolic link; radfeat never writes through links"
MODEL = Path("DATA") / "models" / "eff"
FOLDERS = ["DATA", "DATA/models", "DATA/models/eff"]
FILES = ["metrics.json", "folds.csv", "predictions.csv", "roc.png", "logistic.onnx"]


def _fit_args(table: Path, labels: Path, ws: Path) -> list[str]:
    return ["fit", str(table), "--labels", str(labels), "--target", "effusion", "--folds", "3",
            "--models", "logistic", "--workspace", str(ws), "--name", "eff"]


def _plant(ws: Path, planted: str, tmp_path: Path) -> tuple[Path, Path]:
    """A link at ``planted`` (a folder of the model path, or a file of the model folder) to a victim outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("precious\n")
    link = ws / planted if planted in FOLDERS else ws / MODEL / planted
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside if planted in FOLDERS else victim)
    return link, outside


def _untouched(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]
    assert (outside / "victim.txt").read_text() == "precious\n"


@pytest.mark.parametrize("planted", FOLDERS + FILES)
def test_cli_fit_refuses_a_planted_link(tmp_path: Path, planted: str) -> None:
    table, labels = synthetic_table(tmp_path, n_patients=12)
    ws = tmp_path / "ws"
    link, outside = _plant(ws, planted, tmp_path)
    line = one_line_error(radfeat(*_fit_args(table, labels, ws), timeout=120))
    assert f"{link} {WORDS}" in line
    _untouched(outside)
    assert link.is_symlink()


def _digests(folder: Path) -> dict[str, str]:
    """sha256 of every output but metrics.json (a timestamp) and the ONNX heads (compared by :func:`_weights`)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.name != "metrics.json" and p.suffix != ".onnx"}


def _weights(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    """Every ONNX head's tensors.  A refit may land on the last bits of the solver's result differently (seen on
    the loaded CI machine: two serialisations alternating), so heads are compared by value, to 1e-9."""
    import onnx
    from onnx import numpy_helper

    return {p.name: {i.name: numpy_helper.to_array(i) for i in onnx.load(str(p)).graph.initializer}
            for p in sorted(folder.glob("*.onnx"))}


def test_cli_fit_twice_gives_identical_files_swapped_in_whole(tmp_path: Path) -> None:
    table, labels = synthetic_table(tmp_path, n_patients=12)
    ws = tmp_path / "ws"
    proc = radfeat(*_fit_args(table, labels, ws), timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = ws / MODEL
    first, first_weights = _digests(out), _weights(out)
    assert set(first) | set(first_weights) == set(FILES) - {"metrics.json"}
    meta = json.loads((out / "metrics.json").read_text())
    (out / "stale.txt").write_text("from an older fit\n")
    proc = radfeat(*_fit_args(table, labels, ws), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert _digests(out) == first  # same bytes; the old folder (and its stale file) replaced whole
    again_weights = _weights(out)
    assert again_weights.keys() == first_weights.keys()
    for name, tensors in first_weights.items():
        assert tensors.keys() == again_weights[name].keys()
        for key, value in tensors.items():
            np.testing.assert_allclose(again_weights[name][key], value, rtol=1e-9, atol=1e-12, err_msg=f"{name}:{key}")
    again = json.loads((out / "metrics.json").read_text())
    assert {k: v for k, v in again.items() if k not in ("created", "seconds")} == \
        {k: v for k, v in meta.items() if k not in ("created", "seconds")}
    assert sorted(p.name for p in out.parent.iterdir()) == ["eff"]  # no staging or old folder left


def test_staged_folder_never_follows_a_link_swapped_in_after_validation(tmp_path: Path) -> None:
    from radfeat.output.atomic import UnsafePath, staged_folder, write_text_atomic

    ws = tmp_path / "ws"
    models = ws / "DATA" / "models"
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("precious\n")
    (models / "eff").mkdir(parents=True)
    (models / "eff" / "metrics.json").symlink_to(victim)  # a link inside the old folder is replaced, not followed
    with staged_folder(models / "eff", root=ws) as stage:
        write_text_atomic(stage / "metrics.json", "{}", root=ws)
    assert not (models / "eff" / "metrics.json").is_symlink() and victim.read_text() == "precious\n"
    (models / "other").symlink_to(outside)
    with pytest.raises(UnsafePath, match=WORDS), staged_folder(models / "other", root=ws):
        pass
    with pytest.raises(UnsafePath, match=WORDS), staged_folder(models / "late", root=ws):  # swapped while fitting
        (models / "late").symlink_to(outside)
    (models / "late").unlink()
    (models / "eff").rename(ws / "moved")
    (ws / "DATA" / "models").rename(ws / "DATA" / "moved")
    (ws / "DATA" / "models").symlink_to(outside)
    with pytest.raises(UnsafePath, match=WORDS), staged_folder(models / "eff", root=ws):
        pass
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"] and victim.read_text() == "precious\n"
    assert not [p for p in (ws / "DATA" / "moved").iterdir() if p.name.startswith(".")]  # staging removed


@pytest.mark.parametrize("planted", ["DATA/models", "DATA/models/eff", "roc.png"])
def test_rpc_validate_fit_and_fit_model_refuse_a_planted_link(tmp_path: Path, planted: str) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    table, labels = synthetic_table(ws, n_patients=12)
    link, outside = _plant(ws, planted, tmp_path)
    opts = {"table": str(table), "labels": str(labels), "target": "effusion", "folds": 3, "models": ["logistic"],
            "name": "eff"}
    with serving(ws) as (_, rpc):
        v = rpc("validate_fit", options=opts)
        assert not v["valid"]
        assert v["problems"] == [{"field": "name", "message": f"{link} {WORDS} (remove it or choose another name)"}]
        ans = rpc.raw("fit_model", options=opts)
        assert ans["error"]["code"] == -32000 and f"{link} {WORDS}" in ans["error"]["message"]
        assert rpc("validate_fit", options={**opts, "name": "eff2"})["valid"] is (planted != "DATA/models")
    _untouched(outside)
