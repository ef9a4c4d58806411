"""Benchmark: the Ray engine against the local engine, same images, same machine (the engine's overhead).

Prints, for each engine, images/s end to end (a fresh driver process, start-up included) and in steady
state (from 10 % to 100 % of the images, from the progress callbacks), their ratio, and the peak memory of
the driver and every process it started (Ray's GCS, raylet, workers and actors): the sum of their PSS
(shared pages counted once) and of their RSS.  ``--memory N`` runs the Ray engine again on N images
(symlinks to the same files) to show that memory does not grow with the dataset.

    python bench/bench_ray.py --images 500 [--memory 1500]

The Ray engine starts a private Ray on this machine (``--engine ray`` without an address).  As root the
whole benchmark runs inside a private network namespace with only loopback, so Ray never binds or
probes another address.  Weights: a random-initialised full-size DenseNet-121; images: 2048×2496 8-bit
JPGs (quality 95), the same as bench_extract.py's (cached in --data).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_extract import ensure_weights, make_images, replicate  # noqa: E402

_NETNS_MARK = "RADFEAT_BENCH_NETNS"


def _in_private_netns() -> bool:
    return os.environ.get(_NETNS_MARK) == "1"


def _reexec_in_netns() -> None:
    """As root: run this script again inside `unshare -n` with only loopback up."""
    if _in_private_netns() or os.geteuid() != 0 or shutil.which("unshare") is None:
        return
    os.environ[_NETNS_MARK] = "1"
    argv = " ".join(f"'{a}'" for a in [sys.executable, *sys.argv])
    os.execvp("unshare", ["unshare", "-n", "sh", "-c", f"ip link set lo up && exec {argv}"])


def _tree(root: int) -> list[int]:
    """``root`` and all its descendants."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(parents.get(pid, []))
    return out


def _memory(pids: list[int]) -> tuple[int, int]:
    """Sum of PSS and of RSS (kB) of ``pids``."""
    pss = rss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return pss, rss


def run_engine(images: Path, weights: str, out: Path, engine: str, batch: int) -> dict:
    """A fresh driver process runs the extraction; its process tree's memory is sampled meanwhile."""
    cmd = [sys.executable, __file__, "--driver", json.dumps({
        "input": str(images), "weights": weights, "output": str(out), "resume": False, "batch_size": batch,
        "engine": engine})]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0, 0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            pss, rss = _memory(_tree(proc.pid))
            peak[0], peak[1] = max(peak[0], pss), max(peak[1], rss)
            stop.wait(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{engine} engine failed:\n{stderr[-4000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result.update(wall=wall, pss_kb=peak[0], rss_kb=peak[1])
    return result


def driver(raw: str) -> None:
    """The driver process: one extraction, then its progress timeline as JSON."""
    from radfeat.options import ExtractOptions
    from radfeat.pipeline.run import extract

    timeline: list[tuple[float, int]] = []
    summary = extract(ExtractOptions.from_dict(json.loads(raw)),
                      progress=lambda p: timeline.append((time.perf_counter(), p.done)) if p.stage == "extracting"
                      else None, log=lambda m: None)
    total = summary.total
    start = next((t, d) for t, d in timeline if d >= 0.1 * total)
    end = timeline[-1]
    steady = (end[1] - start[1]) / (end[0] - start[0]) if end[0] > start[0] else 0.0
    print(json.dumps({"ok": summary.ok, "total": total, "loop_rate": summary.images_per_s, "steady": steady}))


def _line(name: str, r: dict) -> str:
    return (f"{name:6s} {r['total'] / r['wall']:6.2f} images/s end to end ({r['wall']:.1f} s wall), "
            f"{r['steady']:6.2f} images/s steady (10 %→100 %), peak memory PSS {r['pss_kb'] / 1024:.0f} MB "
            f"(RSS sum {r['rss_kb'] / 1024:.0f} MB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--memory", type=int, default=0, help="also run the Ray engine on this many images (symlinks)")
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "radfeat-bench")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--driver", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.driver:
        return driver(a.driver)
    _reexec_in_netns()
    a.data.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("RADFEAT_HOME", str(a.data / "home"))
    os.environ.setdefault("RADFEAT_RAY_TEMP", tempfile.mkdtemp(prefix="rfb", dir="/tmp"))
    from radfeat.weights.catalog import Catalog
    from radfeat.weights.export import export
    from radfeat.weights.session import default_threads

    print(f"machine: {default_threads()} cores; load average before: {os.getloadavg()[0]:.1f}; "
          f"private network namespace: {'yes' if _in_private_netns() else 'no'}", flush=True)
    paths = make_images(a.data / "images", a.images)
    root = a.data / f"ray{a.images}"
    replicate(paths, root, a.images)
    name = ensure_weights(a.data)
    export(Catalog().get(name), log=lambda m: None)
    out = a.data / "out"
    local = run_engine(root, name, out / "local.csv", "local", a.batch_size)
    print(_line("local", local))
    ray = run_engine(root, name, out / "ray.csv", "ray", a.batch_size)
    print(_line("ray", ray))
    same = (out / "local.csv").read_bytes() == (out / "ray.csv").read_bytes()
    print(f"ray / local: {ray['steady'] / local['steady']:.0%} steady, "
          f"{(ray['total'] / ray['wall']) / (local['total'] / local['wall']):.0%} end to end; "
          f"tables identical: {same}; load average after: {os.getloadavg()[0]:.1f}")
    if a.memory:
        big = replicate(paths, a.data / f"ray{a.memory}", a.memory)
        more = run_engine(big, name, out / "ray_big.csv", "ray", a.batch_size)
        print(_line(f"ray×{a.memory / a.images:g}", more) + f"  [{a.memory} images]")
    shutil.rmtree(os.environ["RADFEAT_RAY_TEMP"], ignore_errors=True)


if __name__ == "__main__":
    main()
