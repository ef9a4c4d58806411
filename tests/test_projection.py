"""The projection's three ways of keeping rows between fit and projection give scikit-learn's PCA.

Rows are kept in memory up to a bound, past it in an unnamed temporary file, or (no folder) the table
is read again; CSV tables that fit are parsed in one read.  Real files, a real scikit-learn reference.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from radfeat.output import projection as proj


def _table(path, feats):
    names = ["filename"] + [f"img_densefeatures_{j}" for j in range(feats.shape[1])]
    arrays = [pa.array([f"{i}.jpg" for i in range(len(feats))])] + [pa.array(feats[:, j]) for j in range(feats.shape[1])]
    table = pa.Table.from_arrays(arrays, names=names)
    if path.suffix == ".parquet":
        pq.write_table(table, path, row_group_size=700)  # several blocks
    else:
        pacsv.write_csv(table, path)
    return [n for n in names if n != "filename"]


def _feats(rows=2500, d=30, seed=4):
    rng = np.random.default_rng(seed)
    feats = (rng.standard_normal((rows, 3)) * [6, 3, 1]) @ rng.standard_normal((3, d)) + 40.0
    return (feats + 0.05 * rng.standard_normal((rows, d))).astype(np.float32)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("keep", ["memory", "file", "reread"])
def test_every_way_of_keeping_rows_gives_scikit_learns_pca(tmp_path, fmt, keep):
    from sklearn.decomposition import PCA

    feats = _feats()
    path = tmp_path / f"t.{fmt}"
    columns = _table(path, feats)
    spill = tmp_path / "spill"
    limit = {"memory": None, "file": 100_000, "reread": 0}[keep]
    with proj._kept_rows(None if keep == "reread" else spill, limit) as rows:
        pca = proj.fit_pca(path, columns, 2, rows)
        points = proj.transform(path, columns, pca, rows)
        kept = "memory" if rows.memory is not None else "file" if rows.file is not None else "reread"
    assert kept == keep
    assert not spill.exists() or not list(spill.iterdir())  # the temporary file leaves no trace
    ref = PCA(n_components=2).fit(feats.astype(np.float64))
    expected = ref.transform(feats.astype(np.float64))
    np.testing.assert_allclose(pca.explained_variance, ref.explained_variance_, rtol=1e-5)
    for k in range(2):
        assert ref.components_[k][np.argmax(np.abs(ref.components_[k]))] > 0  # same sign convention
        np.testing.assert_allclose(points[:, k], expected[:, k], rtol=1e-4, atol=2e-3)


def test_missing_and_infinite_cells_count_as_the_shift_in_fit_and_projection(tmp_path):
    feats = _feats(rows=1500, d=8, seed=9)
    feats[0, 2] = np.nan  # in the first block: its mean is taken over the finite cells
    feats[900, 5] = np.inf
    path = tmp_path / "holes.parquet"
    columns = _table(path, feats)
    with proj._kept_rows(None) as rows:
        pca = proj.fit_pca(path, columns, 2, rows)
        kept = proj.transform(path, columns, pca, rows)
    again = proj.transform(path, columns, pca, None)  # read again: same answer
    assert np.isfinite(kept).all() and np.isfinite(pca.components).all()
    np.testing.assert_allclose(kept, again, rtol=1e-5, atol=1e-4)
    filled = feats.copy()
    filled[0, 2], filled[900, 5] = pca.shift[2], pca.shift[5]
    assert pca.shift[2] == pytest.approx(np.mean(feats[1:700, 2]), rel=1e-5)
    centred = filled.astype(np.float64) - filled.mean(axis=0)
    np.testing.assert_allclose(np.abs(kept), np.abs(centred @ pca.components.T), rtol=1e-4, atol=2e-3)
