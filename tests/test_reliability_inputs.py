"""What users' folders really hold, through the real CLI and the real backend: a run never dies on one
file and never hides one.  Non-UTF-8 names, dates CSVs from spreadsheets, pixel bombs and truncated
images, and everything that is not used (other depths, other files, broken links) counted and listed.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import zlib
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from helpers import Client, read_arff
from PIL import Image
from radfeat.server.serve import BackgroundServer
from radfeat.synthetic import chest_like
from reliability_support import extract_cmd, run_cli


def _png_declaring(width: int, height: int, rows: int) -> bytes:
    """A grey PNG whose header declares ``width × height`` but whose (complete) zlib stream holds ``rows`` rows."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes([90]) * width for _ in range(rows))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def _keys(df: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(df["level_1"], df["filename"], strict=True))


def test_names_that_are_not_utf8(tmp_path, tiny_weights, make_patients):
    root = tmp_path / "data"
    images = make_patients(root, n_patients=2, per_folder=2)
    raw = os.fsencode(root)
    shutil.copy(images[0], raw + b"/p1/caf\xe9.jpg")  # Latin-1 bytes, as a Windows share or an old archive gives
    os.mkdir(raw + b"/p\xe9re")
    shutil.copy(images[1], raw + b"/p\xe9re/x.jpg")
    open(raw + b"/p1/bad\xff.jpg", "wb").close()  # an empty file with such a name: an error line, not a crash
    expected = {("p1", "caf\\xe9.jpg"), ("p\\xe9re", "x.jpg")}

    tables = {}
    for fmt in ("csv", "parquet", "arff"):
        out = tmp_path / f"t.{fmt}"
        proc = run_cli(extract_cmd(root, out, tiny_weights, "--format", fmt))
        assert proc.returncode == 0, proc.stderr
        assert "6 image(s) → " in proc.stdout and "1 failed" in proc.stdout
        errors = pd.read_csv(tmp_path / "t.errors.csv", keep_default_na=False)
        assert errors["path"].tolist() == [f"{root}/p1/bad\\xff.jpg"] and errors["reason"][0].startswith("empty file")
        tables[fmt] = out
    csv_keys = _keys(pd.read_csv(tables["csv"], dtype=str))
    parquet_keys = _keys(pq.read_table(tables["parquet"]).to_pandas())
    columns, arff_rows = read_arff(tables["arff"])
    arff_keys = [(r[columns.index("level_1")], r[columns.index("filename")]) for r in arff_rows]
    assert expected <= set(csv_keys) and csv_keys == parquet_keys == arff_keys  # one spelling in every format

    with BackgroundServer(tmp_path / "data") as srv:  # the backend: JSON answers carry such names too
        rpc = Client(srv)
        folders = rpc("list_folders", root=str(root))["folders"]
        assert len(folders) == 3
        job = rpc("start_extraction", options={"input": str(root), "weights": tiny_weights, "threads": 1})
        final = rpc.wait(job["job_id"], timeout=300)
        assert final["state"] == "done", final
        assert final["summary"]["ok"] == 6 and final["errors"][0]["path"].endswith("p1/bad\\xff.jpg")
        page = rpc("read_table", path=final["output"], limit=10)
        assert expected <= {(r[0], r[1]) for r in page["rows"]}


def test_dates_csv_checked_before_extraction(tmp_path, tiny_weights, make_patients):
    root = tmp_path / "data"
    images = make_patients(root, n_patients=2, per_folder=1)
    cafe = images[0].with_name("café.jpg")  # a UTF-8 name on disk, Windows-1252 in Excel's CSV
    images[0].rename(cafe)
    out = tmp_path / "m.csv"

    def master(dates: Path) -> list[str]:
        return extract_cmd(root, out, tiny_weights, "--master-table", "--dates", dates, "--filename-column", "image",
                           "--date-column", "taken_at")

    mixed = tmp_path / "mixed.csv"
    mixed.write_text("image,taken_at\ncafé.jpg,2019-03-04\ncxr_00002.jpg,2019-03-04T10:22:00Z\n", encoding="utf-8")
    proc = run_cli(master(mixed))
    message = ("Date column 'taken_at' mixes dates with a time zone (line 3: '2019-03-04T10:22:00Z') and without "
               "(line 2: '2019-03-04'); write them all the same way")
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert "image(s) found" not in proc.stderr and not list(tmp_path.glob("m.*"))  # refused before any work

    workbook = tmp_path / "dates.csv"
    workbook.write_bytes(b"PK\x03\x04" + bytes(200))
    proc = run_cli(master(workbook))
    assert proc.returncode == 2 and "dates.csv is not a text CSV file (an Excel workbook; save it as CSV)" in proc.stderr

    no_dates = tmp_path / "nodates.csv"
    no_dates.write_text("image;taken_at\ncafé.jpg;soon\n", encoding="utf-8")
    proc = run_cli(master(no_dates))
    assert proc.returncode == 2 and "Date column 'taken_at' holds no dates (line 2: 'soon')" in proc.stderr

    excel = tmp_path / "excel.csv"  # Excel in a European locale: semicolons, Windows-1252
    excel.write_bytes("image ; taken_at\r\ncafé.jpg;04/03/2019\r\ncxr_00002.jpg;2019-03-05 08:00\r\n"
                      .encode("cp1252"))
    proc = run_cli(master(excel))
    assert proc.returncode == 0, proc.stderr
    assert "Dates CSV read as Windows-1252, semicolon-separated" in proc.stderr
    table = pd.read_csv(out, dtype=str)
    assert table["taken_at"].tolist() == ["04/03/2019", "2019-03-05 08:00"] and len(table) == 2

    with BackgroundServer(tmp_path) as srv:  # the backend and the page get the same words
        rpc = Client(srv)
        info = rpc("inspect_dates", path=str(excel))
        assert info["columns"] == ["image", "taken_at"] and info["encoding"] == "Windows-1252"
        options = {"input": str(root), "weights": tiny_weights,
                   "master_table": {"dates_csv": str(mixed), "filename_column": "image", "date_column": "taken_at"}}
        checked = rpc("validate_options", options=options)
        assert {"field": "master_table.date_column", "message": message} in checked["problems"]
        options["master_table"]["filename_column"] = "file"
        checked = rpc("validate_options", options=options)
        assert {"field": "master_table.filename_column",
                "message": "Column 'file' is not in the dates CSV (its columns: image, taken_at)"} in checked["problems"]


def _child_peak_rss_mb(proc) -> float:
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024


def test_pixel_limit_and_truncated_images(tmp_path, tiny_weights, make_patients):
    import subprocess

    root = tmp_path / "data"
    make_patients(root, n_patients=1, per_folder=1)
    folder = root / "p1"
    (folder / "bomb.png").write_bytes(_png_declaring(39000, 39000, 4))  # 1 kB declaring 1.5 gigapixels
    (folder / "short.png").write_bytes(_png_declaring(2000, 1500, 4))  # a clean stream, 4 rows of 1500
    Image.fromarray(chest_like(600, 500, 3)).save(folder / "cut.jpg", quality=95)
    data = (folder / "cut.jpg").read_bytes()
    (folder / "cut.jpg").write_bytes(data[: len(data) // 2])
    Image.fromarray(chest_like(2000, 3000, 4)).save(folder / "wide.png")  # a genuine 6 MP image

    out = tmp_path / "t.csv"
    proc = subprocess.Popen(extract_cmd(root, out, tiny_weights, "--max-pixels", "5M"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    peak = _child_peak_rss_mb(proc)
    assert proc.returncode == 0, stderr
    assert peak < 1500, f"peak memory {peak:.0f} MB"  # decoding the bomb alone would take 1.5 GB (9.7 GB before)
    reasons = dict(pd.read_csv(tmp_path / "t.errors.csv").itertuples(index=False))
    assert reasons[str(folder / "bomb.png")].startswith("image too large: 39000 × 39000 = 1521.0 megapixels, "
                                                        "above the limit of 5 (raise it with --max-pixels")
    assert reasons[str(folder / "wide.png")].startswith("image too large: 3000 × 2000 = 6.0 megapixels")
    assert reasons[str(folder / "short.png")] == "truncated image: the pixel data ends after about 4 of 1500 rows"
    assert "truncated" in reasons[str(folder / "cut.jpg")]
    assert "1 image(s) → " in stdout and "4 failed" in stdout

    proc = run_cli(extract_cmd(root, tmp_path / "d.csv", tiny_weights))  # the default (50 MP) takes the 6 MP one
    assert proc.returncode == 0 and "2 image(s) → " in proc.stdout and "3 failed" in proc.stdout
    proc = run_cli(extract_cmd(root, tmp_path / "z.csv", tiny_weights, "--max-pixels", "0"))
    assert proc.returncode == 2 and "Pixel limit must be a whole number of pixels between 1 and" in proc.stderr

    with BackgroundServer(tmp_path) as srv:  # the page's thumbnails obey the same limit
        answer = Client(srv).raw("thumbnail", path=str(folder / "bomb.png"))
        assert answer["error"]["code"] == -32004 and "image too large" in answer["error"]["message"]


def test_everything_not_used_is_counted_and_listed(tmp_path, tiny_weights, make_patients):
    root = tmp_path / "data"
    make_patients(root, depth=2, n_patients=2, per_folder=1)
    adm = root / "p1" / "adm1"
    image = next(adm.glob("*.jpg"))
    shutil.copy(image, root / "p1" / "top.jpg")  # one level too shallow
    (adm / "sub").mkdir()
    shutil.copy(image, adm / "sub" / "deep.jpg")  # one level too deep
    for name in ("notes.txt", "scan.tif", ".DS_Store", "Thumbs.db", ".hidden.jpg"):
        (adm / name).write_bytes(b"x")
    (root / "README.md").write_text("about this export")
    (root / "__MACOSX").mkdir()
    os.symlink(root / "gone.jpg", adm / "dangling.jpg")
    os.symlink("itself", root / "p2" / "itself")  # a link to itself: cannot be opened
    locked = root / "p2" / "adm9"
    locked.mkdir()
    shutil.copy(image, locked / "hidden_from_us.jpg")
    locked.chmod(0)
    unreadable = os.geteuid() != 0  # root reads any folder: then the self-link stands for it
    out = tmp_path / "t.csv"
    try:
        proc = run_cli(extract_cmd(root, out, tiny_weights, "--depth", "2"))
    finally:
        locked.chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    listed = dict(pd.read_csv(tmp_path / "t.skipped.csv").itertuples(index=False))
    expect = {
        root / "p1" / "top.jpg": "image 1 folder level below the input; this run reads images 2 levels below",
        adm / "sub" / "deep.jpg": "image 3 folder levels below the input; this run reads images 2 levels below",
        adm / "notes.txt": "not a JPG, PNG or DICOM image (.txt)",
        adm / "scan.tif": "not a JPG, PNG or DICOM image (.tif)",
        root / "README.md": "not a JPG, PNG or DICOM image (.md)",
        adm / "dangling.jpg": "broken link (its target does not exist)",
        root / "p2" / "itself": "cannot read (Too many levels of symbolic links)",
    }
    if unreadable:
        expect[locked] = "cannot open folder (Permission denied)"
    assert {Path(p): r for p, r in listed.items()} == expect
    n, found = len(expect), 4 if unreadable else 5
    assert f"{found} image(s) → {out}  (0 failed, 0 resumed, {n} item(s) skipped" in proc.stdout
    assert f"Skipped files and folders listed in {tmp_path / 't.skipped.csv'}" in proc.stdout
    assert "4 hidden or system file(s) ignored" in proc.stdout  # .DS_Store, Thumbs.db, .hidden.jpg, __MACOSX
    counts = json.loads((tmp_path / "t.json").read_text())["counts"]
    assert counts["skipped_files"] == n and counts["ignored"] == 4

    with BackgroundServer(tmp_path) as srv:
        rpc = Client(srv)
        job = rpc("start_extraction", options={"input": str(root), "depth": 2, "weights": tiny_weights})
        summary = rpc.wait(job["job_id"], timeout=300)["summary"]
        assert summary["skipped_files"] == n and summary["ignored"] == 4
        assert {Path(i["path"]): i["reason"] for i in summary["skipped_items"]} == expect

    flat = tmp_path / "flat"  # the wrong depth altogether: the message says where the images are
    make_patients(flat, depth=2, n_patients=2, per_folder=1)
    proc = run_cli(extract_cmd(flat, tmp_path / "f.csv", tiny_weights))
    assert proc.returncode == 2
    assert f"No images found 1 folder level below {flat}; images are at depth 2: 4 images — choose depth 2" \
        in proc.stderr
