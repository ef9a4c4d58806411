"""Dataset discovery: depth, selection, extensions, hidden files, order, symlink loops."""

from __future__ import annotations

import os

from radfeat.pipeline.discovery import discover, folders_at_depth


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def test_depth_select_and_order(tmp_path):
    for rel in ["p2/a1/x.JPG", "p1/a2/b.jpeg", "p1/a1/c.jpg", "p1/a1/a.png", "p1/a1/.hidden.jpg",
                "p1/a1/notes.txt", "p1/top.jpg", ".cache/a1/z.jpg"]:
        _touch(tmp_path / rel)
    found = discover(tmp_path, depth=2)
    assert [r.key for r in found.images] == ["p1/a1/a.png", "p1/a1/c.jpg", "p1/a2/b.jpeg", "p2/a1/x.JPG"]
    assert found.images[0].levels == ("p1", "a1") and found.images[0].filename == "a.png"
    assert folders_at_depth(tmp_path, 2) == ["p1/a1", "p1/a2", "p2/a1"]
    assert folders_at_depth(tmp_path, 1) == ["p1", "p2"]
    picked = discover(tmp_path, depth=2, select=["p1/a2", "p9/a1"])
    assert [r.key for r in picked.images] == ["p1/a2/b.jpeg"]
    assert ("p9/a1", "selected folder not found at this depth") in picked.problems
    assert [r.key for r in discover(tmp_path, depth=1).images] == ["p1/top.jpg"]


def test_symlink_loop_is_reported_not_followed_forever(tmp_path):
    _touch(tmp_path / "p1" / "img.jpg")
    os.symlink(tmp_path, tmp_path / "p1" / "loop")
    os.symlink(tmp_path / "p1", tmp_path / "p1-again")
    found = discover(tmp_path, depth=1)
    assert [r.key for r in found.images] == ["p1/img.jpg"]
    assert any("reached twice" in reason for _, reason in found.problems)
    deep = discover(tmp_path, depth=6)
    assert deep.images == []


def test_missing_root(tmp_path):
    found = discover(tmp_path / "nope", depth=1)
    assert found.images == [] and "cannot open input folder" in found.problems[0][1]
