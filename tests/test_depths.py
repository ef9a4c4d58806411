"""The depth survey (radfeat.pipeline.depths) and what the CLI says about images at other depths."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from radfeat.pipeline.depths import no_images_message, survey


def radfeat(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "radfeat", *args], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=300)


def test_survey_counts_images_per_depth(tmp_path, make_patients):
    root = tmp_path / "data"
    make_patients(root, depth=2, n_patients=2, per_folder=2, size=(32, 32))
    (root / "p1" / "notes.txt").write_text("not an image")
    (root / "p1" / ".hidden.jpg").write_bytes(b"")
    (root / "p1" / "stray.png").write_bytes(b"")  # an image file at depth 1 (decoding is not the survey's job)
    os.symlink(root, root / "p2" / "loop")  # a folder reached twice is visited once

    found = survey(root)
    assert found.images == {1: 1, 2: 8} and found.folders[1] == 2 and found.folders[2] == 4
    assert found.suggested_depth == 2 and found.total_images == 9 and not found.truncated
    assert found.others(2) == {1: 1}
    message = no_images_message(root, 3, found)
    assert message == (f"No images found 3 folder levels below {root}; images are at depth 1: 1 image, "
                       "depth 2: 8 images — choose depth 2")

    small = survey(root, limit=3)
    assert small.truncated is True

    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copyfile(next(root.rglob("*.jpg")), flat / "a.jpg")
    flat_survey = survey(flat)
    assert flat_survey.images == {0: 1} and flat_survey.suggested_depth is None
    assert "itself" in no_images_message(flat, 1, flat_survey)


def test_cli_refuses_a_depth_without_images_and_notes_other_depths(tmp_path, tiny_weights, make_patients):
    root = tmp_path / "data"
    make_patients(root, depth=2, n_patients=2, per_folder=1, size=(48, 48))
    proc = radfeat("extract", str(root), "--weights", tiny_weights, "--workspace", str(tmp_path / "ws"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "No images found 1 folder level below" in proc.stderr and "choose depth 2" in proc.stderr
    assert "depth 2: 4 images" in proc.stderr

    extra = root / "p1" / "adm1" / "deeper"  # images at mixed depths: the run reads depth 2 and says so
    extra.mkdir()
    shutil.copyfile(next(root.rglob("*.jpg")), extra / "x.jpg")
    proc = radfeat("extract", str(root), "--depth", "2", "--weights", tiny_weights, "--workspace",
                   str(tmp_path / "ws"), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "Note: 1 image at another depth is not part of this run (it reads depth 2)" in proc.stderr
    assert "depth 2: 4 images, depth 3: 1 image" in proc.stderr


def test_survey_counts_dicoms_also_without_extension(tmp_path):
    """The survey uses discovery's predicate: a .dcm file and an extension-less file with the DICM preamble
    count as images, a text file without one does not."""
    from dicom_support import make_dicom

    folder = tmp_path / "dcm" / "p1"
    folder.mkdir(parents=True)
    make_dicom(folder / "a.dcm")
    make_dicom(folder / "IM000001")
    (folder / "README").write_text("not a DICOM")
    found = survey(tmp_path / "dcm")
    assert found.images == {1: 2} and found.suggested_depth == 1
