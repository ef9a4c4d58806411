"""The output side, through the real CLI and the real backend: one run per output at a time, a full or
read-only disk in one line with the rows kept, resume that notices changed images, umask-following files.

Runs that must be caught mid-way are paused at a known batch by the test pause point
(``RADFEAT_TEST_PAUSE_AFTER``), so nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Client
from PIL import Image
from radfeat.server.serve import BackgroundServer
from radfeat.synthetic import chest_like
from reliability_support import (
    PausedRun,
    extract_cmd,
    paused_in_process,
    release,
    rows,
    run_cli,
    wait_for,
)

BUSY = "Another radfeat run is already writing"


def test_second_run_on_the_same_output_is_refused(tmp_path, tiny_weights, make_patients):
    root = tmp_path / "data"
    make_patients(root, n_patients=3, per_folder=2)
    ws = tmp_path / "ws"
    out = ws / "DATA" / "extracted_features" / "image_extracted_features.csv"
    options = {"input": str(root), "weights": tiny_weights, "batch_size": 2, "threads": 1}

    first = PausedRun(extract_cmd(root, out, tiny_weights), tmp_path / "gate")  # CLI holds the output
    second = run_cli(extract_cmd(root, out, tiny_weights))
    assert second.returncode == 75 and f"radfeat: error: {BUSY} {out}" in second.stderr
    assert "Traceback" not in second.stderr and "image(s) found" not in second.stderr
    with BackgroundServer(ws) as srv:
        answer = Client(srv).raw("start_extraction", options=options)
        assert answer["error"]["code"] == -32003 and answer["error"]["message"].startswith(f"{BUSY} {out}")
    first.release()
    rc, _, err = first.finish()
    assert rc == 0, err
    assert rows(out) == 6 and json.loads(out.with_suffix(".json").read_text())["counts"]["ok"] == 6

    with BackgroundServer(ws) as srv, paused_in_process(tmp_path / "gate2") as marker:  # the backend holds it
        rpc = Client(srv)
        job = rpc("start_extraction", options={**options, "resume": False, "overwrite": True})
        wait_for(marker.exists, what="the backend's job to pause")
        second = run_cli(extract_cmd(root, out, tiny_weights))
        assert second.returncode == 75 and BUSY in second.stderr
        release(tmp_path / "gate2")
        assert rpc.wait(job["job_id"], timeout=300)["state"] == "done"
    assert rows(out) == 6


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small real file system (root only), unmounted however the test ends."""
    path.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a small tmpfs")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_disk_full_keeps_rows_and_resumes_byte_identical(tmp_path, tiny_weights, make_patients):
    root = tmp_path / "data"
    make_patients(root, n_patients=4, per_folder=10)
    ref = tmp_path / "ref.csv"
    assert run_cli(extract_cmd(root, ref, tiny_weights)).returncode == 0
    with _tmpfs(tmp_path / "small", "1m") as disk:
        filler = disk / "filler"
        filler.write_bytes(bytes(1024 * 1024 - 16 * 1024 - ref.stat().st_size // 2))  # room for about half
        out = disk / "t.csv"
        proc = run_cli(extract_cmd(root, out, tiny_weights))
        assert proc.returncode == 74, proc.stderr
        assert "radfeat: error: Cannot write " in proc.stderr and ": no space left on the disk; " in proc.stderr
        assert "finished row(s) are kept in t.csv.partial: fix the cause (free space, permissions) and run the " \
               "same command to resume" in proc.stderr
        assert "Traceback" not in proc.stderr and not out.exists()
        kept = rows(disk / "t.csv.partial")
        assert 0 < kept < 40
        filler.unlink()
        proc = run_cli(extract_cmd(root, out, tiny_weights))
        assert proc.returncode == 0, proc.stderr
        assert out.read_bytes() == ref.read_bytes()


def test_read_only_output_folder(tmp_path, tiny_weights, make_patients):
    root = tmp_path / "data"
    make_patients(root, n_patients=1, per_folder=2)
    if os.geteuid() == 0:  # root ignores permissions: a read-only file system is the real thing
        ctx = _tmpfs(tmp_path / "ro", "1m")
        folder = ctx.__enter__()
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        cause = "the folder is on a read-only file system"
    else:
        ctx, folder = contextlib.nullcontext(), tmp_path / "ro"
        folder.mkdir(mode=0o555)
        cause = "permission denied (the folder is not writable)"
    try:
        proc = run_cli(extract_cmd(root, folder / "t.csv", tiny_weights))
    finally:
        ctx.__exit__(None, None, None)
    assert proc.returncode == 74
    assert proc.stderr.strip().splitlines() == [f"radfeat: error: Cannot write {folder}: {cause}"]


def test_resume_notices_changed_and_deleted_images(tmp_path, tiny_weights, make_patients):
    root = tmp_path / "data"
    images = make_patients(root, n_patients=3, per_folder=2)
    out = tmp_path / "t.csv"
    rc, _, _ = PausedRun(extract_cmd(root, out, tiny_weights), tmp_path / "gate", after=2).stop(signal.SIGKILL)
    assert rc == -9 and rows(tmp_path / "t.csv.partial") == 4  # p1's and p2's images are done
    images[0].unlink()  # deleted after its row was written
    old = images[2].stat()
    Image.fromarray(chest_like(80, 96, 99)).save(images[2], quality=95)  # same name, new pixels
    os.utime(images[2], ns=(old.st_atime_ns, old.st_mtime_ns + 10**9))

    proc = run_cli(extract_cmd(root, out, tiny_weights))
    assert proc.returncode == 0, proc.stderr
    assert ("Resume: 1 image(s) changed since their rows were written (done again), 1 no longer found "
            "(rows dropped)") in proc.stderr
    assert "5 image(s) → " in proc.stdout and "2 resumed" in proc.stdout
    assert "Since the interrupted run: 1 image(s) changed (done again), 1 no longer found (rows dropped)" in proc.stdout
    counts = json.loads((tmp_path / "t.json").read_text())["counts"]
    assert counts["changed_since_resume"] == 1 and counts["vanished_since_resume"] == 1
    fresh = tmp_path / "fresh.csv"
    assert run_cli(extract_cmd(root, fresh, tiny_weights)).returncode == 0
    assert out.read_bytes() == fresh.read_bytes()  # same rows, same order, same bytes as a run on today's data


def test_every_output_follows_the_umask(tmp_path, tiny_weights, make_patients):
    root = tmp_path / "data"
    make_patients(root, n_patients=2, per_folder=1, dates_csv=tmp_path / "dates.csv")
    out = tmp_path / "out"
    for fmt in ("csv", "parquet", "arff"):
        cmd = extract_cmd(root, out / f"t_{fmt}.{fmt}", tiny_weights, "--format", fmt, "--master-table", "--dates",
                          tmp_path / "dates.csv", "--filename-column", "image", "--date-column", "taken_at")
        assert run_cli(cmd, preexec_fn=lambda: os.umask(0o027)).returncode == 0
    files = sorted(p.name for p in out.iterdir())
    assert {"t_csv.csv", "t_csv.errors.csv", "t_csv.json", "t_csv.skipped.csv", "t_csv.unmatched.csv",
            "t_parquet.parquet", "t_arff.arff"} <= set(files)
    modes = {name: stat.S_IMODE((out / name).stat().st_mode) for name in files}
    assert modes == dict.fromkeys(files, 0o640)
