"""``--engine ray`` on a real Ray: the same tables, byte for byte, as the local engine; kill and Ctrl-C.

Every Ray process runs inside a private network namespace with only loopback (see ray_support): an
in-process Ray (``ray.init`` by radfeat itself) and a two-node cluster on this machine (``ray start --head``
plus a second ``ray start --address …``), shared by the module.  Tiny models, few images.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytest.importorskip("ray", reason="the Ray engine needs the 'ray' extra")
from ray_support import NetNamespace, TwoNodeCluster, netns_problem, ray_env, run_in_ns  # noqa: E402

if netns_problem():
    pytest.skip(f"Ray tests need a private network namespace: {netns_problem()}", allow_module_level=True)

from radfeat.options import ExtractOptions  # noqa: E402
from radfeat.pipeline.run import extract  # noqa: E402

DRIVER = str(Path(__file__).with_name("ray_driver.py"))


@pytest.fixture(scope="module")
def ns():
    space = NetNamespace()
    yield space
    space.close()


@pytest.fixture(scope="module")
def cluster(ns, radfeat_home):
    c = TwoNodeCluster(ns)
    yield c
    c.stop()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from radfeat.synthetic import make_dataset

    base = tmp_path_factory.mktemp("raydata")
    make_dataset(base / "data", n_patients=3, per_folder=2, depth=2, size=(300, 260), seed=2,
                 dates_csv=base / "dates.csv")
    return base


@pytest.fixture(scope="module")
def autoencoder(radfeat_home):
    """A small TorchXRayVision ResNet autoencoder (blocks 1-2-2-1), registered as 'ae-ray'."""
    import torch
    from radfeat.weights.registration import add_weights
    from radfeat.xrv_compat import import_xrv

    ae_mod = import_xrv().autoencoders
    torch.manual_seed(7)
    ae = ae_mod._ResNetAE(ae_mod.Bottleneck, ae_mod.DeconvBottleneck, [1, 2, 2, 1], 1)
    path = radfeat_home / "ae-ray.pt"
    torch.save(ae.state_dict(), path)
    add_weights("ae-ray", path, log=lambda m: None)
    return "ae-ray"


def _local(raw: dict) -> bytes:
    summary = extract(ExtractOptions.from_dict(raw), log=lambda m: None)
    assert summary.failed == 0 and not summary.cancelled
    return Path(summary.output).read_bytes()


def _drive(ns, env, runs: list[dict], tmp_path: Path) -> list[dict]:
    spec = tmp_path / "runs.json"
    spec.write_text(json.dumps(runs))
    proc = run_in_ns(ns, [sys.executable, DRIVER, str(spec)], env, timeout=600)
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def test_in_process_ray_equals_local(ns, data, tiny_weights, tmp_path):
    """No address: radfeat starts a private Ray itself; nothing is written under HOME or TMPDIR; the items not
    used are listed as locally."""
    root = shutil.copytree(data / "data", tmp_path / "data")
    first = sorted(p for p in root.iterdir() if p.is_dir())[0]
    (first / "notes.txt").write_text("not an image")  # at the patient level: listed in the skipped file
    raw = {"input": str(root), "depth": 2, "weights": tiny_weights, "batch_size": 2}
    want = _local({**raw, "output": str(tmp_path / "local.csv")})
    home, tmpdir = tmp_path / "home", tmp_path / "tmpdir"
    home.mkdir()
    tmpdir.mkdir()
    ray_temp = Path(tempfile.mkdtemp(prefix="rfr", dir="/tmp"))  # short: Ray's socket paths
    env = ray_env("unused", HOME=str(home), TMPDIR=str(tmpdir), RADFEAT_RAY_TEMP=str(ray_temp))
    for var in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN"):
        env.pop(var)  # radfeat makes its own token for its private Ray
    out = tmp_path / "ray.csv"
    proc = run_in_ns(ns, [sys.executable, "-m", "radfeat", "extract", raw["input"], "--depth", "2", "--weights",
                          tiny_weights, "--batch-size", "2", "--engine", "ray", "--output", str(out), "--quiet"], env)
    assert "Starting a private Ray" in proc.stderr
    assert out.read_bytes() == want
    prov = json.loads(out.with_suffix(".json").read_text())
    assert prov["engine"]["name"] == "ray" and prov["engine"]["cluster"]["nodes"] == 1
    assert prov["counts"]["ok"] == 12 and prov["counts"]["skipped_files"] == 1
    skipped = (tmp_path / "ray.skipped.csv").read_text()
    assert skipped == (tmp_path / "local.skipped.csv").read_text() and "notes.txt" in skipped
    # Ray writes nothing there (ONNX Runtime 1.32's own device-id files are written by the local engine too)
    written = {str(p.relative_to(d)) for d in (home, tmpdir) for p in d.rglob("*") if p.is_file()}
    ort = {w for w in written if w.startswith(".cache/Microsoft/DeveloperTools/.onnxruntime/") or w == ".ses"}
    assert written == ort, written - ort
    assert not list(ray_temp.glob("session_2*")), "the private Ray's session files are removed"
    shutil.rmtree(ray_temp)


def test_two_node_cluster_tables_equal_local(ns, cluster, data, tiny_weights, autoencoder, tmp_path):
    root = str(data / "data")
    master = {"dates_csv": str(data / "dates.csv"), "filename_column": "image", "date_column": "taken_at",
              "patient_level": 1, "patient_id_int": True}
    cases = {
        "densenet": {"input": root, "depth": 2, "weights": tiny_weights, "batch_size": 2},
        "master": {"input": root, "depth": 2, "weights": tiny_weights, "batch_size": 3, "master_table": master,
                   "format": "parquet", "filename": "m.parquet", "prefix": "cxr"},
        "encoder": {"input": root, "depth": 2, "type": "encoder", "weights": autoencoder, "features": ["dense"],
                    "batch_size": 4},
        "fractal": {"input": root, "depth": 2, "type": "fractal", "max_box": 5, "batch_size": 1},
    }
    runs = []
    for name, raw in cases.items():
        ext = ".parquet" if raw.get("format") == "parquet" else ".csv"
        runs.append({**raw, "output": str(tmp_path / f"ray_{name}{ext}"), "engine": "ray",
                     "ray_address": cluster.address})
    summaries = _drive(ns, cluster.env, runs, tmp_path)
    assert [s["ok"] for s in summaries] == [12, 12, 12, 12]
    for (name, raw), run in zip(cases.items(), runs, strict=True):
        local_out = tmp_path / f"local_{name}{Path(run['output']).suffix}"
        want = _local({**raw, "output": str(local_out)})
        got = Path(run["output"])
        if name == "master":
            assert pq.read_table(got).equals(pq.read_table(local_out))
            assert got.read_bytes() == want
        else:
            assert got.read_bytes() == want, name
        prov = json.loads(got.with_suffix(".json").read_text())
        assert prov["engine"]["cluster"]["nodes"] == 2 and prov["engine"]["cluster"]["address"] == cluster.address
    # the master table came from the shards like the others, and said what did not match
    assert summaries[1]["master_table"]["rows"] == 12


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    from radfeat.synthetic import make_dataset

    root = tmp_path_factory.mktemp("raybig") / "data"
    make_dataset(root, n_patients=5, per_folder=8, size=(900, 800), seed=5)
    return root


@pytest.fixture(scope="module")
def big_want(big, tiny_weights, tmp_path_factory) -> bytes:
    """The local engine's table of ``big`` (batch 2)."""
    out = tmp_path_factory.mktemp("biglocal") / "l.csv"
    return _local({"input": str(big), "weights": tiny_weights, "batch_size": 2, "output": str(out)})


def test_backend_job_progress_cancel_and_resume(ns, cluster, big, big_want, tiny_weights, tmp_path):
    """start_extraction with engine ray: job_status moves with the images; cancel_job keeps the shards."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    options = {"input": str(big), "weights": tiny_weights, "batch_size": 2, "engine": "ray",
               "ray_address": cluster.address}
    proc = run_in_ns(ns, [sys.executable, DRIVER, "--rpc", str(workspace), json.dumps(options)], cluster.env,
                     timeout=600)
    first, second = json.loads(proc.stdout.strip().splitlines()[-1])["runs"]
    assert first["final"]["state"] == "cancelled", first["final"]
    assert first["final"]["options"]["engine"] == "ray"
    kept = first["final"]["summary"]["ok"]
    assert 8 <= kept < 40 and kept % 8 == 0  # whole shards of 8 images (4 batches of 2)
    assert first["final"]["resumable"] is True
    [offered] = first["partial_runs"]  # the page's "Resume" list shows the Ray run with its options
    assert offered["filename"] == "image_extracted_features.csv" and offered["rows_done"] == kept
    assert offered["options"]["engine"] == "ray" and offered["options"]["ray_address"] == cluster.address
    assert second["partial_runs"] == []
    assert second["final"]["state"] == "done", second["final"]
    assert second["final"]["summary"]["resumed"] == kept and second["final"]["summary"]["ok"] == 40
    polled = [s[2] for s in second["seen"] if s[1] == "extracting"]
    assert polled == sorted(polled) and polled[-1] <= 40, second["seen"]  # job_status follows the engine
    done = [d for stage, d, _total in second["reported"] if stage == "extracting"]
    assert done[0] == kept and done[-1] == 40, second["reported"]
    assert all(0 <= b - a <= 8 for a, b in itertools.pairwise(done)), second["reported"]  # one per block ≤ a shard
    out = workspace / "DATA" / "extracted_features" / "image_extracted_features.csv"
    assert out.read_bytes() == big_want


def _cli(big: Path, out: Path, weights: str, address: str) -> list[str]:
    return [sys.executable, "-m", "radfeat", "extract", str(big), "--weights", weights, "--output", str(out),
            "--batch-size", "2", "--engine", "ray", "--ray-address", address, "--quiet"]


def _shards(out: Path) -> int:
    return len(list(out.with_name(out.name + ".ray-shards").glob("*.json"))) - 1  # minus state.json


def _wait(cond, proc, what: str, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not cond():
        assert proc.poll() is None, f"the run ended before {what}: {proc.stderr.read()[-3000:]}"
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_killed_actor_and_ctrl_c_resume_give_the_same_table(ns, cluster, big, big_want, tiny_weights, tmp_path):
    want = big_want

    # 1. kill -9 an inference actor mid-run: Ray restarts it and retries its batch
    out = tmp_path / "killed.csv"
    proc = subprocess.Popen(ns.cmd(_cli(big, out, tiny_weights, cluster.address)), env=cluster.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait(lambda: _shards(out) >= 1 and ns.processes("InferenceActor"), proc, "an actor ran")
    victims = ns.processes("InferenceActor")
    os.kill(victims[0], signal.SIGKILL)
    assert not out.exists(), "the run finished before the kill"
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    assert "40 image(s)" in stdout and "0 failed" in stdout
    assert out.read_bytes() == want

    # 2. Ctrl-C: the Ray job stops, finished shards stay, the same command resumes
    out = tmp_path / "interrupted.csv"
    proc = subprocess.Popen(ns.cmd(_cli(big, out, tiny_weights, cluster.address)), env=cluster.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait(lambda: _shards(out) >= 1, proc, "a shard was written")
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-3000:]
    assert "interrupted; finished rows are kept in interrupted.csv.ray-shards/" in stderr
    assert not out.exists()
    kept = _shards(out)
    assert 1 <= kept <= 5  # (on a loaded machine the work in flight may finish every shard before Ctrl-C lands)
    proc = run_in_ns(ns, _cli(big, out, tiny_weights, cluster.address), cluster.env, timeout=600)
    assert f"Resuming: {kept * 8} image(s) already in {kept} shard(s)" in proc.stderr
    assert f"{kept * 8} resumed" in proc.stdout
    assert out.read_bytes() == want
    assert not out.with_name(out.name + ".ray-shards").exists()
