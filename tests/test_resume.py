"""A run killed mid-way (kill -9, Ctrl-C, SIGTERM) and started again ends with the uninterrupted table.

The run is stopped at a known point — paused after its 3rd batch by the test pause point
(``RADFEAT_TEST_PAUSE_AFTER``) — so the test never races the run, however loaded the machine.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pandas as pd
import pytest
from reliability_support import PausedRun, extract_cmd, rows, run_cli


def _cmd(root: Path, out: Path, weights: str) -> list[str]:
    return extract_cmd(root, out, weights)


def _interrupt(cmd: list[str], gate: Path, sig: int) -> tuple[int, str]:
    """Stop the run with ``sig`` while it is paused after its 3rd batch (6 rows): no race with its speed."""
    rc, _, err = PausedRun(cmd, gate, after=3).stop(sig)
    return rc, err


@pytest.mark.parametrize(("sig", "code", "word"), [(signal.SIGKILL, -9, None), (signal.SIGINT, 130, "interrupted"),
                                                   (signal.SIGTERM, 143, "terminated")])
def test_interrupt_and_resume(tmp_path, tiny_weights, make_patients, sig, code, word):
    root = tmp_path / "data"
    make_patients(root, n_patients=6, per_folder=10, size=(600, 500))
    out = tmp_path / "t.csv"
    partial = tmp_path / "t.csv.partial"
    rc, err = _interrupt(_cmd(root, out, tiny_weights), tmp_path / "gate", sig)
    assert rc == code, err
    if word:  # Ctrl-C and SIGTERM: one line that says how to resume, no traceback
        assert f"radfeat: error: {word}; finished rows are kept in t.csv.partial" in err
        assert "Traceback" not in err
    assert not out.exists()
    kept = rows(partial)
    assert kept == 6
    # a half-written last line (crash mid-write) must not break the resume
    with open(partial, "ab") as fh:
        fh.write(b'"p6","cxr_99999.jpg",0.12')
    proc = run_cli(_cmd(root, out, tiny_weights))
    assert proc.returncode == 0, proc.stderr
    assert f"Resuming: {kept} image(s)" in proc.stderr
    assert f"{kept} resumed" in proc.stdout
    assert not partial.exists()

    ref_out = tmp_path / "ref.csv"
    assert run_cli(_cmd(root, ref_out, tiny_weights)).returncode == 0
    assert out.read_bytes() == ref_out.read_bytes()  # the resumed table is the uninterrupted one, byte for byte


def test_changed_options_start_over(tmp_path, tiny_weights, make_patients):
    root = tmp_path / "data"
    make_patients(root, n_patients=6, per_folder=10, size=(600, 500))
    out = tmp_path / "t.csv"
    _interrupt(_cmd(root, out, tiny_weights), tmp_path / "gate", signal.SIGKILL)
    proc = run_cli(_cmd(root, out, tiny_weights) + ["--prefix", "other"])
    assert proc.returncode == 0 and "Starting over" in proc.stderr and "0 resumed" in proc.stdout
    assert pd.read_csv(out).columns[2] == "other_densefeatures_0"
