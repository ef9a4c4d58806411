"""Hostile catalogs, planted links, unsafe names and checkpoints, through the real ``radfeat`` command.

Each case runs ``python -m radfeat`` in a subprocess and checks what a user sees (one line, exit status)
and what is on disk afterwards (nothing written outside the workspace and ``$RADFEAT_HOME``).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest


def radfeat(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "radfeat", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=timeout)


def one_line_error(proc: subprocess.CompletedProcess, code: int = 2) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


# ----------------------------------------------------------------------------------- 1. catalogs
@pytest.mark.parametrize("entry, words", [
    ({"name": "x", "url": "http://127.0.0.1:9/p", "file": "{victim}"}, "plain file name"),
    ({"name": "x", "url": "http://127.0.0.1:9/p", "file": "../../victim"}, "plain file name"),
    ({"name": "x", "url": "http://127.0.0.1:9/p", "file": "..\\victim"}, "plain file name"),
    ({"name": "x", "url": "http://127.0.0.1:9/p", "file": "CON.pt"}, "reserved"),
    ({"name": "../../../x", "url": "http://127.0.0.1:9/p", "file": "a.pt"}, "weights name"),
    ({"name": "x/y", "url": "http://127.0.0.1:9/p", "file": "a.pt"}, "weights name"),
    ({"name": "x", "url": "file:///etc/passwd", "file": "a.pt"}, "http"),
    ({"name": "x", "url": "http://h/p", "file": "a.pt", "sha256": "zz"}, "sha256"),
    ({"name": "x", "url": "http://h/p", "file": "a.pt", "input_size": -3}, "input_size"),
])
def test_hostile_catalog_entry_is_refused_in_one_line(tmp_path, entry, words):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    entry = json.loads(json.dumps(entry).replace("{victim}", str(victim).replace("\\", "\\\\")))
    cat = tmp_path / "catalog.json"
    cat.write_text(json.dumps({"weights": [entry]}))
    env = {"RADFEAT_CATALOG": str(cat), "RADFEAT_HOME": str(tmp_path / "home")}
    for args in (("models", "fetch", "x"), ("models", "export", "x"), ("models", "list")):
        line = one_line_error(radfeat(*args, env=env, timeout=60))
        assert words in line and str(cat) in line
    assert victim.read_text() == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "home") == ["catalog.json", "victim"]


@pytest.mark.parametrize("text", ['{"weights": [', "[]", '{"weights": []}', '{"weights": [1]}', "\x00\xff",
                                  '{"weights": [{"name": "x", "file": "a.pt", "op_threshs": [NaN]}]}',
                                  "[" * 5000 + "]" * 5000])
def test_malformed_catalog_gives_one_line(tmp_path, text):
    cat = tmp_path / "catalog.json"
    cat.write_text(text, encoding="latin-1")
    proc = radfeat("models", "list", env={"RADFEAT_CATALOG": str(cat), "RADFEAT_HOME": str(tmp_path / "h")},
                   timeout=60)
    assert str(cat) in one_line_error(proc)


def test_tampered_user_registry_is_refused(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "user_weights.json").write_text(json.dumps(
        {"evil": {"name": "evil", "file": "../../outside.pt", "labels": [], "source": "user"}}))
    proc = radfeat("models", "export", "evil", env={"RADFEAT_HOME": str(home)}, timeout=60)
    line = one_line_error(proc)
    assert "user_weights.json" in line and "plain file name" in line
    assert not (tmp_path / "outside.pt").exists()


@pytest.mark.parametrize("name", ["../up", "a/b", "..", "x" * 65, "x..y", ""])
def test_models_add_refuses_unsafe_names(tmp_path, radfeat_home, tiny_checkpoint, name):
    proc = radfeat("models", "add", name, str(tiny_checkpoint), timeout=120)
    assert "weights name" in one_line_error(proc).lower()
    assert not list(Path(radfeat_home).glob("**/*up*"))


# ------------------------------------------------------------------------------ 2. planted links
SIDE_FILES = ["t.csv", "t.csv.partial", "t.csv.partial.json", "t.json", "t.errors.csv", "t.unmatched.csv"]


@pytest.mark.parametrize("planted", SIDE_FILES + ["DATA", "DATA/extracted_features"])
def test_planted_symlink_is_refused_before_work(tmp_path, radfeat_home, make_patients, planted):
    make_patients(tmp_path / "in", n_patients=1, per_folder=1, size=(40, 40))
    ws = tmp_path / "ws"
    out_dir = ws / "DATA" / "extracted_features"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    link = ws / planted if planted.startswith("DATA") else out_dir / planted
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside if planted.startswith("DATA") else victim)
    proc = radfeat("extract", str(tmp_path / "in"), "--type", "fractal", "--max-box", "3", "--workspace", str(ws),
                   "--filename", "t.csv", "--quiet")
    assert "symbolic link" in one_line_error(proc)
    assert victim.read_text() == "precious\n" and list(outside.iterdir()) == []


def test_saliency_folder_link_is_refused(tmp_path, tiny_weights, make_patients):
    make_patients(tmp_path / "in", n_patients=1, per_folder=1, size=(40, 40))
    ws = tmp_path / "ws"
    (ws / "DATA").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (ws / "DATA" / "saliency").symlink_to(outside)
    proc = radfeat("extract", str(tmp_path / "in"), "--type", "saliency", "--weights", tiny_weights,
                   "--workspace", str(ws), "--quiet")
    assert "symbolic link" in one_line_error(proc)
    assert list(outside.iterdir()) == []


def test_writer_refuses_a_link_swapped_in_after_validation(tmp_path):
    """The safe writer itself (every write goes through it) refuses links below a trusted root."""
    from radfeat.output.atomic import (
        UnsafePath,
        atomic_open,
        file_lock,
        open_file,
        trust_root,
        write_text_atomic,
    )

    ws = trust_root(tmp_path / "ws")
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "v.txt"
    victim.write_text("precious")
    (ws / "DATA").mkdir(parents=True)
    (ws / "DATA" / "extracted_features").symlink_to(outside)
    with pytest.raises(UnsafePath, match="symbolic link"):
        write_text_atomic(ws / "DATA" / "extracted_features" / "t.csv", "x")
    (ws / "DATA" / "extracted_features").unlink()
    (ws / "DATA" / "extracted_features").mkdir()
    leaf = ws / "DATA" / "extracted_features" / "t.csv"
    leaf.symlink_to(victim)
    for attempt in (lambda: write_text_atomic(leaf, "x"), lambda: open_file(leaf, "ab"),
                    lambda: open_file(leaf, "rb+"), lambda: file_lock(leaf).__enter__()):
        with pytest.raises(UnsafePath):
            attempt()
    leaf.unlink()
    with atomic_open(leaf, "w") as fh:  # the folder is swapped while the temporary file is being written
        fh.write("a,b\n")
        os.rename(ws / "DATA" / "extracted_features", ws / "DATA" / "moved")
        (ws / "DATA" / "extracted_features").symlink_to(outside)
    assert victim.read_text() == "precious" and sorted(p.name for p in outside.iterdir()) == ["v.txt"]
    assert (ws / "DATA" / "moved" / "t.csv").read_text() == "a,b\n"


# --------------------------------------------------------------------- 7. names Windows cannot create
@pytest.mark.parametrize("name, words", [("CON.csv", "reserved"), ("NUL.csv", "reserved"), ("com1.csv", "reserved"),
                                         ("Lpt9.csv", "reserved"), ("x" * 296 + ".csv", "too long")])
def test_output_names_windows_cannot_create_are_refused(tmp_path, radfeat_home, make_patients, name, words):
    make_patients(tmp_path / "in", n_patients=1, per_folder=1, size=(40, 40))
    proc = radfeat("extract", str(tmp_path / "in"), "--type", "fractal", "--workspace", str(tmp_path / "ws"),
                   "--filename", name, "--quiet")
    assert words in one_line_error(proc)
    proc = radfeat("extract", str(tmp_path / "in"), "--type", "fractal", "--output", str(tmp_path / "CON.txt."),
                   "--quiet")
    assert "reserved" in one_line_error(proc)
    assert not (tmp_path / "ws" / "DATA").exists()


def test_very_long_input_path_is_a_validation_problem(tmp_path, radfeat_home):
    proc = radfeat("extract", "/" + "a" * 6000, "--type", "fractal", "--workspace", str(tmp_path), "--quiet")
    assert "too long" in one_line_error(proc)


# --------------------------------------------------------------------------- 7. hostile checkpoints
def _u(text: str) -> bytes:
    return b"X" + len(text).to_bytes(4, "little") + text.encode()


_MODULE = b"ctorchxrayvision.models\nDenseNet\n)\x81"  # a TorchXRayVision module object, built empty


def _nested_modules(depth: int) -> bytes:
    """A pickle of modules nested ``depth`` deep (each one's ``_modules`` holds the next)."""
    level = _MODULE + b"}" + _u("_modules") + b"}" + _u("c")
    return b"\x80\x02" + level * depth + _MODULE + b"ssb" * depth + b"."


def _self_referencing() -> bytes:
    """A module whose ``_modules`` holds the module itself."""
    return b"\x80\x02" + _MODULE + b"q\x01}" + _u("_modules") + b"}" + _u("self") + b"h\x01ssb."


def _torch_zip(path: Path, data_pkl: bytes) -> None:
    """A PyTorch zip checkpoint whose ``data.pkl`` is ``data_pkl``."""
    import zipfile

    import torch

    template = path.with_suffix(".template")
    torch.save({}, template)
    with zipfile.ZipFile(template) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as dst:
        for item in src.infolist():
            dst.writestr(item.filename, data_pkl if item.filename.endswith("/data.pkl") else src.read(item))
    template.unlink()


def _fifo_tar(path: Path) -> None:
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("sys_info")
        payload = b"\x80\x02}q\x00."
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
        fifo = tarfile.TarInfo("storages")
        fifo.type = tarfile.FIFOTYPE
        tar.addfile(fifo)


@pytest.mark.parametrize("kind", ["deep", "self", "fifo"])
def test_hostile_checkpoint_gives_one_line_and_returns(tmp_path, radfeat_home, kind):
    path = tmp_path / f"{kind}.pt"
    if kind == "deep":
        _torch_zip(path, _nested_modules(5000))
    elif kind == "self":
        _torch_zip(path, _self_referencing())
    else:
        _fifo_tar(path)
    proc = radfeat("models", "add", f"hostile-{kind}", str(path), timeout=120)
    line = one_line_error(proc, 1)
    assert path.name in line


# ---------------------------------------------------------------- 15. nothing under $HOME or $TMPDIR
def test_cli_run_with_export_leaves_home_and_tmpdir_untouched(tmp_path, tiny_checkpoint, make_patients):
    home, tmp, rhome = tmp_path / "home", tmp_path / "tmp", tmp_path / "radfeat-home"
    for d in (home, tmp):
        d.mkdir()
    make_patients(tmp_path / "in", n_patients=2, per_folder=1, size=(64, 64))
    env = {"HOME": str(home), "TMPDIR": str(tmp), "RADFEAT_HOME": str(rhome), "XDG_CACHE_HOME": "",
           "XDG_CONFIG_HOME": "", "XDG_DATA_HOME": "", "MPLCONFIGDIR": "", "NUMBA_CACHE_DIR": ""}
    env = {k: v for k, v in env.items() if v} | {"PYTHONDONTWRITEBYTECODE": "1"}
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "MPLCONFIGDIR", "NUMBA_", "TORCH_HOME"))}
    run = lambda *a: subprocess.run([sys.executable, "-m", "radfeat", *a], capture_output=True, text=True,  # noqa: E731
                                    env={**clean, **env}, cwd=tmp_path, timeout=600)
    assert run("models", "add", "tiny", str(tiny_checkpoint)).returncode == 0
    proc = run("extract", str(tmp_path / "in"), "--weights", "tiny", "--workspace", str(tmp_path / "ws"), "--quiet")
    assert proc.returncode == 0, proc.stderr
    refused = run("extract", str(tmp_path / "in"), "--weights", "tiny", "--filename", "CON.csv", "--quiet")
    assert refused.returncode == 2
    assert list(home.rglob("*")) == [] and list(tmp.rglob("*")) == []
    assert (tmp_path / "ws" / "DATA" / "extracted_features" / "image_extracted_features.csv").is_file()


# ------------------------------------------------------------------ 7. downloads: TLS and planted links
class _Files:
    """A tiny HTTP(S) server on 127.0.0.1 serving fixed bytes at any path."""

    def __init__(self, body: bytes, cert: tuple[Path, Path] | None = None):
        import http.server
        import ssl
        import threading

        payload = body

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if cert is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(cert[0]), str(cert[1]))
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _catalog_for(tmp_path: Path, url: str) -> dict[str, str]:
    cat = tmp_path / "catalog.json"
    cat.write_text(json.dumps({"weights": [{"name": "x", "url": url, "file": "x.pt", "labels": []}]}))
    return {"RADFEAT_CATALOG": str(cat), "RADFEAT_HOME": str(tmp_path / "home")}


def test_tls_certificate_failure_is_not_reported_as_no_network(tmp_path):
    import shutil as sh

    if sh.which("openssl") is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True, timeout=60)
    server = _Files(b"weights", (crt, key))
    try:
        proc = radfeat("models", "fetch", "x", env=_catalog_for(tmp_path, f"https://127.0.0.1:{server.port}/x.pt"),
                       timeout=120)
    finally:
        server.close()
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]  # (beside the progress bar)
    assert len(errors) == 1 and "certificate" in errors[0] and "no network" not in errors[0], proc.stderr
    assert not (tmp_path / "home" / "weights" / "x.pt").exists()


def test_download_never_writes_through_a_planted_part_link(tmp_path):
    server = _Files(b"downloaded bytes")
    env = _catalog_for(tmp_path, f"http://127.0.0.1:{server.port}/x.pt")
    victim = tmp_path / "victim"
    victim.write_text("precious")
    weights = tmp_path / "home" / "weights"
    weights.mkdir(parents=True)
    (weights / "x.pt.part").symlink_to(victim)
    try:
        proc = radfeat("models", "fetch", "x", env=env, timeout=120)  # the link is replaced, never followed
        assert proc.returncode == 0, proc.stderr
        assert victim.read_text() == "precious"
        assert not (weights / "x.pt").is_symlink() and (weights / "x.pt").read_bytes() == b"downloaded bytes"
        (weights / "x.pt").unlink()
        (weights / "x.pt").symlink_to(victim)
        proc = radfeat("models", "fetch", "x", env=env, timeout=120)
    finally:
        server.close()
    assert victim.read_text() == "precious"


def test_import_skips_a_fifo_named_like_weights(tmp_path):
    folder = tmp_path / "usb"
    folder.mkdir()
    os.mkfifo(folder / "x.pt")
    env = _catalog_for(tmp_path, "http://127.0.0.1:9/x.pt")
    proc = radfeat("models", "import", str(folder), env=env, timeout=120)  # returns: a FIFO is never opened
    assert proc.returncode == 1 and "No weight files found" in proc.stdout + proc.stderr


def test_output_path_that_is_a_link_is_refused(tmp_path, radfeat_home, make_patients):
    make_patients(tmp_path / "in", n_patients=1, per_folder=1, size=(40, 40))
    victim = tmp_path / "victim.csv"
    victim.write_text("precious")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "t.csv").symlink_to(victim)
    proc = radfeat("extract", str(tmp_path / "in"), "--type", "fractal", "--max-box", "3",
                   "--output", str(tmp_path / "out" / "t.csv"), "--quiet")
    assert "symbolic link" in one_line_error(proc)
    assert victim.read_text() == "precious"
