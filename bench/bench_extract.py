"""Benchmark: TorchXRayVision's reference pipeline vs radfeat, side by side on the same JPGs.

Prints images/s for
  (a) TorchXRayVision's reference pipeline (what radfeat's default ``xrv`` mode equals): skimage read,
      xrv normalise, centre crop, skimage resize, torch eager ``features2`` and ``forward`` separately,
      one image at a time, the model loaded once.  (The MEDomics app differs: it resizes the whole
      image with ``cv2.resize`` INTER_AREA, radfeat's ``--preprocess medomics``, and rebuilds the model
      for every image, so it is slower than (a)).
  (b) radfeat end to end: ``radfeat extract`` on the same files to a CSV (a fresh process);
  (c) radfeat inference alone: ONNX Runtime on ready 224×224 tensors;
  (d) radfeat decode + preprocessing alone, on all cores;
the ratio b/a, how close b comes to the bound 1/(1/c + 1/d), peak RSS of ``radfeat extract`` on
100 vs 2,000 images, and (with --int8) the speed and deviation of the opt-in int8 mode.

    python bench/bench_extract.py --images 200 --ref-images 20 [--memory] [--int8]

Weights are a random-initialised full-size DenseNet-121 (same compute as the published weights);
no download happens.  The dataset is cached in --data (default /tmp/radfeat-bench).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

BENCH_WEIGHTS = "bench-densenet121"


def make_images(root: Path, n: int, size: tuple[int, int] = (2496, 2048)) -> list[Path]:
    """``n`` 8-bit JPGs (quality 95) of ``size``, in patient folders of 10, built from a few synthetic bases."""
    from PIL import Image
    from radfeat.synthetic import chest_like

    paths = []
    bases = None
    rng = np.random.default_rng(0)
    for i in range(n):
        path = root / f"p{i // 10:04d}" / f"img{i:05d}.jpg"
        paths.append(path)
        if path.exists():
            continue
        if bases is None:
            bases = [chest_like(*size, seed=s) for s in range(4)]
        path.parent.mkdir(parents=True, exist_ok=True)
        img = np.roll(bases[i % 4], int(rng.integers(0, 200)), axis=int(i % 2))
        Image.fromarray(img).save(path, "JPEG", quality=95)
    return paths


def replicate(paths: list[Path], root: Path, n: int) -> Path:
    """A dataset of ``n`` images made of symlinks to ``paths`` (for the memory test)."""
    for i in range(n):
        link = root / f"p{i // 10:05d}" / f"img{i:06d}.jpg"
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(paths[i % len(paths)])
    return root


def ensure_weights(work: Path) -> str:
    from radfeat.synthetic import random_checkpoint
    from radfeat.weights.catalog import Catalog
    from radfeat.weights.registration import add_weights

    if BENCH_WEIGHTS not in Catalog():
        add_weights(BENCH_WEIGHTS, random_checkpoint(work / "bench.pt", seed=0), log=lambda m: None)
    return BENCH_WEIGHTS


def bench_reference(paths: list[Path], ckpt_model) -> float:
    """(a) TorchXRayVision's pipeline, one image at a time."""
    import skimage.io
    import torch
    from radfeat.xrv_compat import import_xrv

    xrv = import_xrv()
    crop, resize = xrv.datasets.XRayCenterCrop(), xrv.datasets.XRayResizer(224)
    t = time.perf_counter()
    for p in paths:
        img = xrv.datasets.normalize(skimage.io.imread(str(p)), 255)
        if img.ndim > 2:
            img = img[:, :, 0]
        x = torch.from_numpy(resize(crop(img[None]))).unsqueeze(0)
        with torch.no_grad():
            ckpt_model.features2(x.clone())
            ckpt_model(x.clone())
    return len(paths) / (time.perf_counter() - t)


def run_cli(args: list[str]) -> tuple[float, int, dict]:
    """Run ``radfeat extract`` in a fresh process; return wall seconds, peak RSS (kB) and its summary JSON."""
    code = (
        "import resource,subprocess,sys,json,time;t=time.perf_counter();"
        "r=subprocess.run(sys.argv[1:]);"
        "print(json.dumps({'rc':r.returncode,'s':time.perf_counter()-t,"
        "'rss':resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))"
    )
    proc = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "radfeat", "extract", *args],
                          capture_output=True, text=True)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if out["rc"] != 0:
        raise SystemExit(proc.stderr)
    return out["s"], out["rss"], {}


def bench_inference(onnx: Path, threads: int, batch: int = 16, seconds: float = 8.0, precision="fp32") -> float:
    """(c) ONNX Runtime on ready tensors."""
    from radfeat.weights.session import OnnxSession

    sess = OnnxSession(onnx, "cpu", threads, log=lambda m: None)
    x = np.random.default_rng(0).normal(0, 300, (batch, 1, 224, 224)).astype(np.float32)
    sess.run(x)
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds:
        sess.run(x)
        n += batch
    return n / (time.perf_counter() - t)


def bench_decode(paths: list[Path], threads: int) -> float:
    """(d) decode + exact preprocessing alone, across ``threads`` workers."""
    from radfeat.pipeline.images import read_gray
    from radfeat.pipeline.preprocess import make

    pre = make("xrv")
    job = lambda p: pre(*read_gray(p))  # noqa: E731
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(job, paths[:threads]))
        t = time.perf_counter()
        list(pool.map(job, paths))
    return len(paths) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--ref-images", type=int, default=20, help="images for the (slow) reference pipeline")
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "radfeat-bench")
    ap.add_argument("--memory", action="store_true", help="peak RSS of radfeat extract on 100 vs 2,000 images")
    ap.add_argument("--int8", action="store_true", help="also measure the opt-in int8 mode")
    ap.add_argument("--batch-size", type=int, default=16)
    a = ap.parse_args()

    a.data.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("RADFEAT_HOME", str(a.data / "home"))
    from radfeat.weights.catalog import Catalog
    from radfeat.weights.export import export
    from radfeat.weights.session import default_threads

    threads = default_threads()
    print(f"machine: {platform.processor() or platform.machine()}, {threads} cores, "
          f"python {platform.python_version()}")
    paths = make_images(a.data / "images", a.images)
    print(f"dataset: {len(paths)} JPGs 2048x2496 8-bit q95 in {a.data / 'images'}")
    name = ensure_weights(a.data)
    info = export(Catalog().get(name), log=lambda m: None)

    import torch

    torch.set_num_threads(threads)
    from radfeat.xrv_compat import import_xrv

    import_xrv()
    ref_model = torch.load(Catalog().get(name).path, map_location="cpu", weights_only=False).eval()
    a_rate = bench_reference(paths[: a.ref_images], ref_model)
    print(f"(a) reference pipeline (TorchXRayVision, one at a time): {a_rate:6.2f} images/s "
          f"({a.ref_images} images)")

    out = a.data / "out" / "bench.csv"
    args = [str(a.data / "images"), "--weights", name, "--output", str(out), "--no-resume", "--quiet",
            "--batch-size", str(a.batch_size)]
    secs, rss, _ = run_cli(args)
    prov = json.loads(out.with_name("bench.json").read_text())
    b_rate = len(paths) / secs
    print(f"(b) radfeat extract, end to end (fresh process, to CSV): {b_rate:6.2f} images/s "
          f"({secs:.1f} s wall; extraction loop {prov['images_per_s']:.2f} images/s; peak RSS {rss / 1024:.0f} MB)")
    c_rate = bench_inference(info.path, threads, a.batch_size)
    print(f"(c) inference alone (ONNX Runtime, batch {a.batch_size}, {threads} threads): {c_rate:6.2f} images/s")
    d_rate = bench_decode(paths, threads)
    print(f"(d) decode + preprocessing alone ({threads} threads): {d_rate:6.2f} images/s")
    bound = 1.0 / (1.0 / c_rate + 1.0 / d_rate)
    print(f"b/a = {b_rate / a_rate:.1f}x   bound 1/(1/c+1/d) = {bound:.2f} images/s   "
          f"b = {100 * b_rate / bound:.0f}% of bound (end to end), {100 * prov['images_per_s'] / bound:.0f}% (loop)")

    if a.int8:
        from radfeat.weights.quantize import compare, quantized

        q = quantized(info.path, log=lambda m: None)
        q_rate = bench_inference(q, threads, a.batch_size, precision="int8")
        dev = compare(info.path, q, [p for p in paths[:16]])
        print(f"int8 (opt-in, approximate): inference {q_rate:6.2f} images/s ({q_rate / c_rate:.2f}x fp32); "
              f"max |Δ| predictions {dev['max_pred_diff']:.3g}, features {dev['max_feat_rel_diff']:.3g} "
              f"of the largest feature, feature correlation {dev['feat_corr']:.5f}")

    if a.memory:
        for n in (100, 2000):
            root = replicate(paths, a.data / f"mem{n}", n)
            secs, rss, _ = run_cli([str(root), "--weights", name, "--output", str(a.data / "out" / f"mem{n}.csv"),
                                    "--no-resume", "--quiet", "--batch-size", str(a.batch_size)])
            print(f"peak RSS, {n:5d} images: {rss / 1024:7.0f} MB  ({n / secs:.2f} images/s)")


if __name__ == "__main__":
    main()
