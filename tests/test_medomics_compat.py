"""radfeat --preprocess medomics against what MEDomics' own extraction stores, read back with pandas."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from helpers import radfeat
from medomics_reference import dead_channel_checkpoint, medomics_records
from radfeat.output.partial import csv_rows
from radfeat.pipeline.discovery import discover


def test_table_reads_back_like_medomics(tmp_path, home, tiny_checkpoint, make_patients):
    """(Its own home: registering the dead-channel weights there leaves the shared test home's default as it is.)"""
    from radfeat.weights.registration import add_weights

    ckpt = dead_channel_checkpoint(tiny_checkpoint, tmp_path / "dead.pt")
    add_weights("dead-channel-test", ckpt, log=lambda m: None)
    root = tmp_path / "data"
    make_patients(root, n_patients=2, per_folder=2, size=(120, 100))
    out = tmp_path / "r.csv"
    radfeat("extract", str(root), "--weights", "dead-channel-test", "--output", str(out), "--preprocess",
            "medomics", "--prefix", "my_img", "--quiet")
    files = [ref.path for ref in discover(root, 1).images]
    buf = io.StringIO()
    pd.DataFrame(medomics_records(files, 1, ckpt, "my_img")).to_csv(buf, index=False)
    theirs = pd.read_csv(io.StringIO(buf.getvalue()))
    ours = pd.read_csv(out)
    assert list(ours.columns) == list(theirs.columns)
    assert (ours["my_img_densefeatures_0"] == 0).all()  # the dead channel: 0 for every image ...
    assert ours.dtypes.to_dict() == theirs.dtypes.to_dict()  # ... and still float64, as in MEDomics' table
    assert (ours[["level_1", "filename"]] == theirs[["level_1", "filename"]]).all().all()
    dense = [c for c in ours.columns if "_densefeatures_" in c]
    preds = [c for c in ours.columns if "_predictions_" in c]
    assert np.max(np.abs(ours[preds].to_numpy() - theirs[preds].to_numpy())) <= 1e-5
    feats = theirs[dense].to_numpy()
    assert np.max(np.abs(ours[dense].to_numpy() - feats)) <= 1e-4 * np.max(np.abs(feats))


def test_number_text_is_arrows_except_integral_values():
    """Every cell is byte-identical to Arrow's CSV writer, except integral floats, which gain '.0'."""
    rng = np.random.default_rng(0)
    block = rng.standard_normal((64, 40)).astype(np.float32) * np.float32(10.0) ** rng.integers(-8, 9, (64, 40))
    block[0, :8] = [0.0, -0.0, 1.0, -3.0, 1e7, 1e20, np.nan, np.inf]
    block[1:, 9] = 0.0  # a column of zeros
    ours = csv_rows([["k"] * 64], [block]).decode().splitlines()
    table = pa.table({"k": ["k"] * 64, **{f"c{j}": block[:, j] for j in range(block.shape[1])}})
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False))
    arrow = buf.getvalue().decode().splitlines()
    changed = 0
    for mine, theirs in zip(ours, arrow, strict=True):
        for a, b in zip(mine.split(","), theirs.split(","), strict=True):
            if a != b:
                assert a == b + ".0" and b.lstrip("-").isdigit(), (a, b)
                changed += 1
    assert changed >= 63 + 5
    back = pd.read_csv(io.StringIO("k," + ",".join(f"c{j}" for j in range(40)) + "\n" + "\n".join(ours)))
    assert all(back[f"c{j}"].dtype == np.float64 for j in range(40))
