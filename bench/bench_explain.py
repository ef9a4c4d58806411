"""Cost of the new model-based outputs on this machine: LIME maps per image, PSPNet anatomy at full size.

    python bench/bench_explain.py [--samples 1000] [--threads N] [--skip-lime] [--skip-anatomy]

Both use random-initialised networks of the real size (nothing is downloaded) in a temporary
RADFEAT_HOME, so the numbers are the real compute:

* LIME: a full DenseNet-121 exported to ONNX, one synthetic 2048 × 2496 radiograph, ``--samples``
  perturbed images scored in batches of 16; prints seconds per image (they do not depend on how many
  pathologies are mapped: one neighbourhood serves them all);
* anatomy: TorchXRayVision's ChestX-Det PSPNet layout at 512 × 512 ([3, 4, 23, 3] blocks), exported and
  checked (mask IoU per structure, ONNX against torch on synthetic radiographs), then seconds per image
  for ONNX Runtime.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def bench_lime(samples: int, threads: int) -> None:
    from radfeat.extractors.lime_maps import LimeSettings, lime_maps
    from radfeat.pipeline.preprocess import make
    from radfeat.synthetic import chest_like, random_checkpoint
    from radfeat.weights.export import export
    from radfeat.weights.registration import add_weights
    from radfeat.weights.session import OnnxSession

    ckpt = random_checkpoint(Path(os.environ["RADFEAT_HOME"]) / "dense.pt")
    ws = add_weights("bench-dense", ckpt, log=lambda m: None)
    info = export(ws, log=lambda m: None)
    session = OnnxSession(info.path, "cpu", threads)
    x = make("xrv", 224)(chest_like(2048, 2496, seed=1), 255.0)

    def predict(batch: np.ndarray) -> np.ndarray:
        return session.run(batch[:, None].astype(np.float32), ["predictions"])[0]

    t = time.perf_counter()
    lime_maps(x, predict, [0, 7, 10], LimeSettings(samples=samples, batch_size=16))
    dt = time.perf_counter() - t
    print(f"LIME: {samples} samples, DenseNet-121 at 224, {threads} thread(s): {dt:.1f} s per image "
          f"({1000 * dt / samples:.1f} ms per sample)")


def bench_anatomy(threads: int) -> None:
    import torch
    from radfeat.weights.catalog import Catalog
    from radfeat.weights.segmentation import export_segmentation
    from radfeat.weights.session import OnnxSession
    from radfeat.xrv_compat import import_xrv

    import_xrv()
    from torchxrayvision.baseline_models.chestx_det.ptsemseg.pspnet import pspnet

    ws = Catalog().get("chestx-det-pspnet")
    torch.manual_seed(0)
    net = pspnet(14).eval()
    ws.path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, ws.path)
    t = time.perf_counter()
    info = export_segmentation(ws, log=print)
    print(f"anatomy: export and check at {info.input_size}: {time.perf_counter() - t:.0f} s; "
          f"min IoU {info.min_iou:.6f}, max |Δ logit| {info.max_logit_diff:.2e}")
    session = OnnxSession(info.path, "cpu", threads)
    x = np.zeros((1, 1, 512, 512), np.float32)
    session.run(x, ["logits"])
    t = time.perf_counter()
    for _ in range(2):
        session.run(x, ["logits"])
    print(f"anatomy: ONNX Runtime, {threads} thread(s): {(time.perf_counter() - t) / 2:.1f} s per image at 512")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--skip-lime", action="store_true")
    p.add_argument("--skip-anatomy", action="store_true")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["RADFEAT_HOME"] = home
        if not a.skip_lime:
            bench_lime(a.samples, a.threads)
        if not a.skip_anatomy:
            bench_anatomy(a.threads)


if __name__ == "__main__":
    sys.exit(main())
