"""The dataset view over real HTTP: table_info, project_table (PCA vs scikit-learn), column_values, row_image.

Small tables are real radfeat runs (tiny DenseNet) or tables written in radfeat's layout; the
100 000-row test checks shape and ordering of the projection (its time is printed, not asserted;
bench/bench_projection.py measures it).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import requests
from helpers import serving

OUT = Path("DATA") / "extracted_features"


def write_table(path: Path, feats: np.ndarray, preds: np.ndarray | None = None) -> None:
    """A table in radfeat's layout (level_1, filename, img_densefeatures_i, img_predictions_i)."""
    n = feats.shape[0]
    arrays = [pa.array([f"p{i % 7}" for i in range(n)]), pa.array([f"img{i}.jpg" for i in range(n)])]
    names = ["level_1", "filename"] + [f"img_densefeatures_{j}" for j in range(feats.shape[1])]
    arrays += [pa.array(feats[:, j]) for j in range(feats.shape[1])]
    if preds is not None:
        names += [f"img_predictions_{j}" for j in range(preds.shape[1])]
        arrays += [pa.array(preds[:, j]) for j in range(preds.shape[1])]
    table = pa.Table.from_arrays(arrays, names=names)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    elif path.suffix == ".arff":
        from radfeat.output.formats import write_arff_from_csv

        pacsv.write_csv(table, path.with_suffix(".tmp.csv"))
        write_arff_from_csv(path.with_suffix(".tmp.csv"), path, text_columns=["level_1", "filename"])
    else:
        pacsv.write_csv(table, path)


def call(rpc, name: str, **params) -> dict:
    """A raw JSON-RPC answer (the test client's own ``method`` argument would clash with a parameter)."""
    payload = {"jsonrpc": "2.0", "id": 1, "method": name, "params": params}
    return requests.post(rpc.url, json=payload, headers=rpc.headers, timeout=60).json()


def all_points(rpc, path: Path, limit: int, **kw) -> tuple[np.ndarray, list[int], dict]:
    points, index, offset = [], [], 0
    while True:
        page = rpc("project_table", path=str(path), offset=offset, limit=limit, **kw)
        points += page["points"]
        index += page["row_index"]
        offset += limit
        if offset >= page["total"]:
            return np.asarray(points), index, page


@pytest.mark.parametrize("fmt", ["csv", "parquet", "arff"])
def test_pca_matches_scikit_learn_up_to_sign(workspace, fmt):
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(3)
    feats = (rng.standard_normal((300, 3)) * [5, 2, 1]) @ rng.standard_normal((3, 40)) + 7.5
    feats = (feats + 0.05 * rng.standard_normal((300, 40))).astype(np.float32)
    preds = rng.random((300, 4), dtype=np.float32)
    path = workspace / OUT / f"small.{fmt}"
    write_table(path, feats, preds)
    ref = PCA(n_components=2).fit(feats.astype(np.float64))
    expected = ref.transform(feats.astype(np.float64))
    with serving(workspace) as (_srv, rpc):
        points, index, page = all_points(rpc, path, limit=128)
        assert page["method"] == "pca" and page["total"] == 300 and page["columns_used"] == 40
        assert index == list(range(300)) and points.shape == (300, 2)
        for k in range(2):
            sign = np.sign(points[:, k] @ expected[:, k])
            np.testing.assert_allclose(sign * points[:, k], expected[:, k], rtol=1e-4, atol=1e-3)
            # the sign is fixed: the component's largest-magnitude entry is positive
            assert ref.components_[k][np.argmax(np.abs(ref.components_[k]))] * sign > 0
        np.testing.assert_allclose(page["explained_variance"], ref.explained_variance_, rtol=1e-4)
        np.testing.assert_allclose(page["explained_variance_ratio"], ref.explained_variance_ratio_, rtol=1e-4)

        every = rpc("project_table", path=str(path), columns="all", limit=300)
        assert every["columns_used"] == 44 and len(every["points"]) == 300
        try:
            import umap  # noqa: F401
        except ImportError:  # optional: without it, UMAP is refused with a way out, PCA still works
            err = call(rpc, "project_table", path=str(path), method="umap")["error"]
            assert err["code"] == -32004 and "pip install umap-learn" in err["message"]
        for params in ({"method": "tsne"}, {"columns": "some"}):
            err = call(rpc, "project_table", path=str(path), **params)["error"]
            assert err["code"] == -32602 and "must be one of" in err["message"]


def test_table_info_values_and_row_image_of_a_real_run(tiny_weights, workspace, tmp_path, make_patients):
    root = tmp_path / "patients"
    make_patients(root, n_patients=3, per_folder=2, size=(64, 64))
    with serving(workspace) as (_srv, rpc):
        job = rpc("start_extraction", options={"input": str(root), "weights": tiny_weights, "format": "parquet",
                                               "filename": "run.parquet"})
        final = rpc.wait(job["job_id"])
        assert final["state"] == "done"
        table = final["output"]
        info = rpc("table_info", path=table)
        assert info["total"] == 6 and info["type"] == "densenet" and info["has_images"] is True
        assert info["image_root"] == str(root) and info["columns"][:2] == ["level_1", "filename"]
        kinds = info["kinds"]
        assert kinds["level_1"] == kinds["filename"] == "id"
        assert kinds["img_densefeatures_0"] == "feature" and kinds["img_predictions_0"] == "prediction"

        names = rpc("column_values", path=table, column="filename", offset=2, limit=3)
        assert names == {"column": "filename", "values": ["cxr_00003.jpg", "cxr_00004.jpg", "cxr_00005.jpg"],
                         "total": 6, "offset": 2, "numeric": False}
        values = rpc("column_values", path=table, column="img_predictions_0")
        assert len(values["values"]) == 6 and all(0 <= v <= 1 for v in values["values"]) and values["numeric"]
        page = rpc("read_table", path=table, limit=6)
        col = page["columns"].index("img_predictions_0")
        assert values["values"] == pytest.approx([row[col] for row in page["rows"]], rel=1e-6)

        image = rpc("row_image", path=table, row=4, size=64)
        assert image["image"] == str(root / "p3" / "cxr_00005.jpg") and image["data_url"].startswith("data:image/png")
        assert image["original_width"] == 64

        missing = rpc.raw("column_values", path=table, column="nope")["error"]
        assert missing["code"] == -32002 and "Column 'nope'" in missing["message"]
        out_of_range = rpc.raw("row_image", path=table, row=6)["error"]
        assert out_of_range["code"] == -32602
        (root / "p3" / "cxr_00005.jpg").unlink()
        gone = rpc.raw("row_image", path=table, row=4)["error"]
        assert gone["code"] == -32002 and "not in" in gone["message"]
        denied = rpc.raw("table_info", path=str(tmp_path / "elsewhere.csv"))["error"]
        assert denied["code"] == -32001
        bad_page = rpc.raw("project_table", path=table, limit=0)["error"]
        assert bad_page["code"] == -32602


def test_row_image_of_a_master_table(tiny_weights, workspace, tmp_path, make_patients):
    root = tmp_path / "mt"
    dates = tmp_path / "dates.csv"
    make_patients(root, n_patients=2, per_folder=2, size=(64, 64), dates_csv=dates)
    mt = {"dates_csv": str(dates), "filename_column": "image", "date_column": "taken_at", "patient_level": 1}
    with serving(workspace) as (_srv, rpc):
        job = rpc("start_extraction", options={"input": str(root), "weights": tiny_weights, "master_table": mt})
        table = rpc.wait(job["job_id"])["output"]
        info = rpc("table_info", path=table)
        assert info["master_table"] is True and info["has_images"] is True and "filename" not in info["columns"]
        assert info["kinds"]["taken_at"] == "id" and info["kinds"]["level_1"] == "id"
        image = rpc("row_image", path=table, row=2)
        assert image["image"] == str(root / "p2" / "cxr_00003.jpg")
    no_prov = workspace / OUT / "copy.csv"
    no_prov.write_bytes(Path(table).read_bytes())
    with serving(workspace) as (_srv, rpc):
        err = rpc.raw("row_image", path=str(no_prov), row=0)["error"]
        assert err["code"] == -32002 and "no provenance" in err["message"]


def test_projection_of_100k_rows_keeps_shape_and_order(workspace):
    """100 000 × 64 features: one dominant direction carries the row number, so ordering is checkable."""
    n, d = 100_000, 64
    rng = np.random.default_rng(0)
    direction = rng.standard_normal(d)
    direction /= np.linalg.norm(direction)
    t = np.linspace(-1, 1, n)
    feats = (np.outer(t * 50, direction) + 0.01 * rng.standard_normal((n, d))).astype(np.float32)
    path = workspace / OUT / "big.parquet"
    write_table(path, feats)
    with serving(workspace) as (_srv, rpc):
        start = time.perf_counter()
        first = rpc("project_table", path=str(path), limit=20000)
        print(f"100k x {d}: first page in {time.perf_counter() - start:.2f} s")
        points, index, page = all_points(rpc, path, limit=20000)
    assert first["total"] == n and len(first["points"]) == 20000 and first["row_index"][:3] == [0, 1, 2]
    assert points.shape == (n, 2) and index == list(range(n))
    x = points[:, 0]
    assert abs(np.corrcoef(x, t)[0, 1]) > 0.9999  # the first axis is the row order (up to sign)
    assert page["explained_variance_ratio"][0] > 0.99


def test_read_table_pages_parquet_by_row_group(workspace):
    """A page that straddles row groups reads only those groups and returns exactly the asked rows."""
    feats = np.arange(300 * 3, dtype=np.float32).reshape(300, 3)
    path = workspace / OUT / "groups.parquet"
    write_table(path, feats)
    pq.write_table(pq.read_table(path), path, row_group_size=50)
    assert pq.ParquetFile(path).metadata.num_row_groups == 6
    with serving(workspace) as (_srv, rpc):
        page = rpc("read_table", path=str(path), offset=45, limit=20)
        assert page["total"] == 300 and len(page["rows"]) == 20
        assert [row[1] for row in page["rows"]] == [f"img{i}.jpg" for i in range(45, 65)]
        assert page["rows"][0][2:] == [135.0, 136.0, 137.0]
        tail = rpc("read_table", path=str(path), offset=295, limit=50)
        assert [row[1] for row in tail["rows"]] == [f"img{i}.jpg" for i in range(295, 300)]
        assert rpc("read_table", path=str(path), offset=300, limit=5)["rows"] == []  # the end: an empty page
        past = rpc.raw("read_table", path=str(path), offset=400, limit=5)["error"]  # beyond it: refused (issue 11)
        assert past["code"] == -32602 and past["data"]["total"] == 300
        values = rpc("column_values", path=str(path), column="img_densefeatures_1", offset=98, limit=4)
        assert values["values"] == [295.0, 298.0, 301.0, 304.0]


def test_an_empty_cell_does_not_break_the_projection(workspace):
    rng = np.random.default_rng(5)
    feats = rng.standard_normal((40, 6)).astype(np.float32)
    path = workspace / OUT / "holes.csv"
    write_table(path, feats)
    lines = path.read_text().splitlines()
    cells = lines[3].split(",")
    cells[4] = ""  # row 2, img_densefeatures_2 left empty
    lines[3] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with serving(workspace) as (_srv, rpc):
        page = rpc("project_table", path=str(path), limit=40)
    points = np.asarray(page["points"])
    assert points.shape == (40, 2) and np.isfinite(points).all()
