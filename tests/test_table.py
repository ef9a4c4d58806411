"""The streaming table writer: its fast number formatting is byte-identical to Arrow's CSV writer."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from radfeat.output.partial import PartialTable
from radfeat.pipeline.discovery import ImageRef


def test_rows_match_arrow_csv_writer(tmp_path):
    rng = np.random.default_rng(0)
    refs = [ImageRef(Path("/x"), ("p 1", 'a,"b"'), f"f{i}é.jpg") for i in range(5)]
    f32 = (rng.normal(0, 1, (5, 7)) * rng.choice([1e-8, 1, 1e5], (5, 7))).astype(np.float32)
    f32[0, :3] = [np.nan, -0.0, np.inf]
    f64 = rng.normal(0, 1, (5, 3))  # float64 blocks (fractal) keep their precision
    cols = ["level_1", "level_2", "filename"] + [f"a{i}" for i in range(7)] + [f"b{i}" for i in range(3)]
    table = PartialTable(tmp_path / "o.csv", cols, {"x": 1}, log=lambda m: None)
    table.append(refs, [f32, f64])
    table.close()
    header, body = (tmp_path / "o.csv.partial").read_bytes().split(b"\n", 1)
    assert header.decode() == ",".join(cols)
    arrays = [pa.array(["p 1"] * 5), pa.array(['a,"b"'] * 5), pa.array([r.filename for r in refs])]
    arrays += [pa.array(f32[:, j]) for j in range(7)] + [pa.array(f64[:, j]) for j in range(3)]
    expected = io.BytesIO()
    pacsv.write_csv(pa.Table.from_arrays(arrays, names=cols), expected, pacsv.WriteOptions(include_header=False))
    # byte-identical to Arrow's writer except integral floats, which keep a decimal point (-0 → -0.0) so
    # that pandas reads every number column as float64 (see test_medomics_compat for the full rule)
    assert expected.getvalue().count(b",-0,") == 1
    assert body == expected.getvalue().replace(b",-0,", b",-0.0,")
    back = pacsv.read_csv(tmp_path / "o.csv.partial")
    # the shortest text of a float32 reads back as exactly that float32
    assert np.array_equal(np.asarray(back.column("a3").to_pylist(), dtype=np.float32), f32[:, 3])
    assert table.rows == 5 and "p 1/a,\"b\"/f0é.jpg" in table.done


def test_arff_round_trip_with_awkward_names(tmp_path):
    """ARFF written by radfeat reads back the same with liac-arff and with the page's reader (tabs, quotes …)."""
    from helpers import read_arff as liac_read
    from radfeat.output.formats import write_arff_from_csv
    from radfeat.output.paging import read_arff

    names = ["tab\there.jpg", "it's.png", "back\\slash.jpg", "comma,name.jpg", "new\nline.jpg", "plain.jpg"]
    src = tmp_path / "t.csv"
    table = pa.table({"level_1": ["p1"] * 6, "filename": names,
                      "img_x_0": pa.array([1.5, None, float("nan"), -2.0, 0.25, 1e-8], pa.float64())})
    pacsv.write_csv(table, src)
    write_arff_from_csv(src, tmp_path / "t.arff", text_columns=["level_1", "filename"])
    columns, rows = liac_read(tmp_path / "t.arff")
    assert columns == ["level_1", "filename", "img_x_0"]
    assert [r[1] for r in rows] == names
    assert [r[2] for r in rows] == [1.5, None, None, -2.0, 0.25, 1e-8]
    page_columns, page_rows, total = read_arff(tmp_path / "t.arff", offset=1, limit=4)
    assert page_columns == columns and total == 6 and page_rows == rows[1:5]


def test_listing_rows_match_arrow_except_integral_floats(tmp_path):
    """Rows of any types (the saliency listing): Arrow's CSV text, except that a float that is a whole
    number (a saturated prediction of exactly 1) keeps its decimal point and reads back as float."""
    import pandas as pd

    refs = [ImageRef(Path("/x"), ("p,1",), f"f{i}.jpg") for i in range(4)]
    cols = ["level_1", "filename", "pathology", "method", "style", "prediction", "path"]
    values = [["Effusion", None, 'a "b"', "Mass"], ["gradcam", "eigencam", "gradcam", "gradcam"],
              ["gray"] * 4, [0.25, None, 1e-7, 0.125], ["/o/a.png", "/o/b,c.png", "/o/é.png", "/o/d.png"]]
    table = PartialTable(tmp_path / "l.csv", cols, {"x": 1}, log=lambda m: None)
    table.append_columns(refs, values)
    table.append_columns(refs[:1], [["Mass"], ["gradcam"], ["gray"], [1.0], ["/o/e.png"]])
    table.close()
    body = (tmp_path / "l.csv.partial").read_bytes().split(b"\n", 1)[1]
    arrays = [pa.array(["p,1"] * 4), pa.array([r.filename for r in refs])] + [pa.array(v) for v in values]
    expected = io.BytesIO()
    pacsv.write_csv(pa.Table.from_arrays(arrays, names=cols), expected, pacsv.WriteOptions(include_header=False))
    lines = body.decode().splitlines(keepends=True)
    assert "".join(lines[:4]).encode() == expected.getvalue()
    assert lines[4].endswith(',1.0,"/o/e.png"\n')
    back = pd.read_csv(tmp_path / "l.csv.partial")
    assert back["prediction"].dtype == np.float64 and back["pathology"].isna().tolist() == [False, True, False,
                                                                                           False, False]


def test_parquet_row_groups_gather_many_csv_blocks(tmp_path):
    """Wide rows: Arrow's CSV reader gives ~50 rows per block; the Parquet file must not get a row group per
    block (thousands of tiny column chunks make every reader slow), and the values stay exact."""
    import pyarrow.parquet as pq
    from radfeat.output.formats import PARQUET_GROUP_BYTES, write_parquet_from_csv

    rng = np.random.default_rng(0)
    feats = rng.standard_normal((3000, 1024)).astype(np.float32)
    table = pa.Table.from_arrays([pa.array([f"{i}.jpg" for i in range(3000)])] + [pa.array(c) for c in feats.T],
                                 names=["filename"] + [f"img_densefeatures_{j}" for j in range(1024)])
    src, dest = tmp_path / "t.csv", tmp_path / "t.parquet"
    pacsv.write_csv(table, src)
    write_parquet_from_csv(src, dest, {"filename": pa.string()} | {f"img_densefeatures_{j}": pa.float32()
                                                                    for j in range(1024)})
    meta = pq.ParquetFile(dest).metadata
    assert meta.num_rows == 3000 and meta.num_row_groups <= 3000 * 1024 * 4 // PARQUET_GROUP_BYTES + 1
    back = pq.read_table(dest)
    assert back.column("filename").to_pylist() == [f"{i}.jpg" for i in range(3000)]
    np.testing.assert_array_equal(back.column("img_densefeatures_7").to_numpy(), feats[:, 7])
