"""A run killed mid-way (kill -9 or Ctrl-C) and started again ends with the uninterrupted table."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def _cmd(root: Path, out: Path, weights: str) -> list[str]:
    return [sys.executable, "-m", "radfeat", "extract", str(root), "--weights", weights, "--output", str(out),
            "--batch-size", "2", "--threads", "1", "--quiet"]


def _rows(path: Path) -> int:
    return max(0, path.read_bytes().count(b"\n") - 1) if path.exists() else 0


def _interrupt(cmd: list[str], partial: Path, sig: int) -> None:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
    deadline = time.time() + 120
    while _rows(partial) < 6 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    assert proc.returncode != 0, "the run finished before it could be interrupted"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_interrupt_and_resume(tmp_path, tiny_weights, make_patients, sig):
    root = tmp_path / "data"
    make_patients(root, n_patients=6, per_folder=10, size=(600, 500))
    out = tmp_path / "t.csv"
    partial = tmp_path / "t.csv.partial"
    _interrupt(_cmd(root, out, tiny_weights), partial, sig)
    assert not out.exists()
    kept = _rows(partial)
    assert 6 <= kept < 60
    # a half-written last line (crash mid-write) must not break the resume
    with open(partial, "ab") as fh:
        fh.write(b'"p6","cxr_99999.jpg",0.12')
    proc = subprocess.run(_cmd(root, out, tiny_weights), capture_output=True, text=True, env=os.environ.copy(),
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"Resuming: {kept} image(s)" in proc.stderr
    assert f"{kept} resumed" in proc.stdout
    assert not partial.exists()

    ref_out = tmp_path / "ref.csv"
    subprocess.run(_cmd(root, ref_out, tiny_weights), check=True, capture_output=True, env=os.environ.copy(),
                   timeout=300)
    got, ref = pd.read_csv(out), pd.read_csv(ref_out)
    assert list(got.columns) == list(ref.columns)
    assert got[["level_1", "filename"]].equals(ref[["level_1", "filename"]])
    num = got.columns[2:]
    np.testing.assert_allclose(got[num].to_numpy(), ref[num].to_numpy(), rtol=1e-6, atol=1e-6)


def test_changed_options_start_over(tmp_path, tiny_weights, make_patients):
    root = tmp_path / "data"
    make_patients(root, n_patients=6, per_folder=10, size=(600, 500))
    out = tmp_path / "t.csv"
    _interrupt(_cmd(root, out, tiny_weights), tmp_path / "t.csv.partial", signal.SIGKILL)
    proc = subprocess.run(_cmd(root, out, tiny_weights) + ["--prefix", "other"], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=300)
    assert proc.returncode == 0 and "Starting over" in proc.stderr and "0 resumed" in proc.stdout
    assert pd.read_csv(out).columns[2] == "other_densefeatures_0"
