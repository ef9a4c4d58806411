"""Checkpoints are pickles: loading must never run code from them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from radfeat.weights.checkpoint import CheckpointError, infer_config, load_checkpoint


class _Payload:
    """Pickles as a call to os.system; loading it with plain pickle would run the command."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _malicious(tmp_path, wrap_in_model: bool):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    if wrap_in_model:
        from radfeat.xrv_compat import import_xrv

        model = import_xrv().models.DenseNet(num_classes=18, growth_rate=4, block_config=(1, 1, 1, 1),
                                             num_init_features=8)
        model.pathologies = _Payload(str(marker))  # hidden inside an otherwise valid checkpoint
        torch.save(model, path)
    else:
        torch.save({"state_dict": _Payload(str(marker))}, path)
    return path, marker


@pytest.mark.parametrize("wrap_in_model", [False, True])
def test_malicious_checkpoint_does_not_execute(tmp_path, radfeat_home, wrap_in_model):
    path, marker = _malicious(tmp_path, wrap_in_model)
    with pytest.raises(CheckpointError, match="refuses to load: the file asks for 'posix.system'"):
        load_checkpoint(path)
    assert not marker.exists()
    proc = subprocess.run([sys.executable, "-m", "radfeat", "models", "add", "evil", str(path)],
                          capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert proc.returncode == 1
    assert "refuses to load" in proc.stderr and "Traceback" not in proc.stderr
    assert not marker.exists()
    # the same file really is dangerous with an unrestricted loader (proves the test can fail)
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_formats_accepted(tmp_path, tiny_checkpoint):
    ckpt = load_checkpoint(tiny_checkpoint)
    assert ckpt.kind == "module" and ckpt.num_classes == 18
    assert ckpt.pathologies[0] == "Atelectasis" and len(ckpt.op_threshs) == 18
    cfg = infer_config(ckpt.state_dict)
    assert cfg.block_config == (2, 2, 2, 2) and cfg.growth_rate == 8 and cfg.num_init_features == 16

    full = torch.load(tiny_checkpoint, weights_only=False)
    legacy = tmp_path / "legacy.pt"  # the pre-1.6 format TorchXRayVision's published weights use
    torch.save(full, legacy, _use_new_zipfile_serialization=False)
    assert load_checkpoint(legacy).state_dict.keys() == ckpt.state_dict.keys()

    plain = tmp_path / "plain.pt"
    torch.save(full.state_dict(), plain)
    sd = load_checkpoint(plain)
    assert sd.kind == "state_dict" and sd.pathologies is None and len(sd.op_threshs) == 18

    wrapped = tmp_path / "wrapped.pt"
    torch.save({"epoch": 3, "model_state_dict": full.state_dict()}, wrapped)
    assert load_checkpoint(wrapped).kind == "state_dict"


def test_not_a_checkpoint(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="not a DenseNet checkpoint"):
        load_checkpoint(other)


def test_models_add_and_list(tmp_path, tiny_checkpoint):
    env = {**os.environ, "RADFEAT_HOME": str(tmp_path / "home")}  # its own home: 'mine' must not become others' default
    run = lambda *a: subprocess.run([sys.executable, "-m", "radfeat", *a], capture_output=True, text=True,  # noqa: E731
                                    env=env, timeout=120)
    proc = run("models", "add", "mine", str(tiny_checkpoint))
    assert proc.returncode == 0, proc.stderr
    assert "Registered 'mine' (18 outputs, 15 labelled, with operating thresholds)" in proc.stdout
    table = run("models", "list").stdout
    assert "densenet121-res224-chex*" in table and "mine" in table
    rows = {r["name"]: r for r in json.loads(run("models", "list", "--json").stdout)}
    assert len(rows) == 10 + len([n for n in rows if rows[n]["source"] == "user"])  # 7 DenseNets, ResNet, AE, PSPNet
    chex = rows["densenet121-res224-chex"]
    assert len(chex["trained_labels"]) == 11 and not chex["downloaded"] and not chex["exported"]
    assert rows["mine"]["downloaded"] and not rows["mine"]["exported"]
    proc = run("models", "export", "mine")
    assert proc.returncode == 0 and "ONNX check on a probe batch" in proc.stdout
    assert json.loads(run("models", "list", "--json").stdout)[-1]["exported"] is True
    proc = run("models", "add", "densenet121-res224-chex", str(tiny_checkpoint))
    assert proc.returncode == 2 and "is a catalog weight set" in proc.stderr
