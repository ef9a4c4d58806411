"""The Ray engine's kept shards, on real files: listed for "Resume" by a fresh backend, kept or started over.

The Ray engine itself is exercised in test_ray_engine.py (inside a private network namespace); here the
shard store is driven directly, so the listing and the resume rules are checked without a cluster.
"""

from __future__ import annotations

import os
from pathlib import Path

from helpers import serving
from radfeat.output.shards import ShardStore
from radfeat.pipeline.discovery import ImageRef

OUT = Path("DATA") / "extracted_features"
COLUMNS = ["level_1", "filename", "f0"]
FINGERPRINT = {"weights": "tiny", "preprocess": "xrv"}


def _images(n: int, stamp: tuple[int, int] = (100, 1)) -> list[ImageRef]:
    return [ImageRef(Path(f"/data/p{i}/img{i}.jpg"), (f"p{i}",), f"img{i}.jpg", stamp=stamp) for i in range(n)]


def _store(output: Path, images: list[ImageRef], options: dict, fingerprint: dict = FINGERPRINT) -> ShardStore:
    return ShardStore(output, images, 2, COLUMNS, fingerprint, True, lambda _m: None, options=options)


def test_kept_shards_are_offered_for_resume_by_a_new_backend(workspace):
    output = workspace / OUT / "image_extracted_features.csv"
    output.parent.mkdir(parents=True)
    images = _images(5)  # shards of 2: [0, 1] [2, 3] [4]
    options = {"input": "/data", "weights": "tiny", "engine": "ray", "ray_address": "auto"}
    store = _store(output, images, options)
    for pos in (0, 1, 3):  # shard 0 finished, shard 1 half done
        assert store.add(pos, f"p{pos},img{pos}.jpg,0.{pos}\n", "")
    assert store.add(1, "again", "") is False  # a retried batch's repeat is not recorded twice
    assert store.add(4, "", "cannot read file")  # shard 2 is written, but a resume does it again: not counted

    outside = workspace.parent / "elsewhere.ray-shards"  # a planted link to a folder is not a run
    outside.mkdir()
    (outside / "state.json").write_text('{"options": {"input": "/etc"}}')
    os.symlink(outside, output.parent / "planted.csv.ray-shards")

    with serving(workspace) as (_srv, rpc):
        [run] = rpc("list_partial_runs")["runs"]
    assert run["filename"] == output.name and run["output"] == str(output)
    assert run["rows_done"] == 2 and run["resumable"] is True and run["running"] is False
    assert run["options"] == options

    again = _store(output, images, {**options, "ray_address": "10.0.0.1:6379"})  # same fingerprint: kept
    assert again.todo() == [2, 3, 4] and again.images_done() == 2
    other = _store(output, images, options, fingerprint={**FINGERPRINT, "weights": "other"})
    assert other.todo() == [0, 1, 2, 3, 4]  # other options start over


def test_an_image_replaced_since_its_shard_was_written_is_done_again(tmp_path):
    output = tmp_path / "t.csv"
    images = _images(4)
    store = _store(output, images, {})
    for pos in range(4):
        store.add(pos, f"p{pos},img{pos}.jpg,0.{pos}\n", "")
    assert store.complete()

    replaced = images[:3] + [ImageRef(images[3].path, images[3].levels, images[3].filename, stamp=(100, 2))]
    again = _store(output, replaced, {})
    assert again.todo() == [2, 3] and again.changed == 1 and again.images_done() == 2
