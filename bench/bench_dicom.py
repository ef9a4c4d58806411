"""Benchmark: DICOM decode + preprocessing, radfeat vs TorchXRayVision's read_xray_dcm pipeline, per transfer syntax.

Prints, for 12-bit radiographs of --rows × --cols (default 2048 × 2496) stored uncompressed, RLE, JPEG 2000 and
JPEG-LS (when the encoders are installed), the images/s of
  (ref)    read_xray_dcm → XRayCenterCrop → XRayResizer(224), one image at a time;
  (ours)   radfeat's read_gray → exact xrv preprocessing, one thread;
and the header pass (--dicom-tags / --views / master-table dates) in headers/s.

    python bench/bench_dicom.py --images 6
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--rows", type=int, default=2048)
    ap.add_argument("--cols", type=int, default=2496)
    a = ap.parse_args()

    from dicom_support import encoder_available, make_dicom
    from radfeat.pipeline.dicom import read_tags
    from radfeat.pipeline.images import read_gray
    from radfeat.pipeline.preprocess import make
    from radfeat.xrv_compat import import_xrv

    xrv = import_xrv()
    crop, resize = xrv.datasets.XRayCenterCrop(), xrv.datasets.XRayResizer(224)
    pre = make("xrv")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in (None, "rle", "j2k", "jpegls"):
            if kind and not encoder_available(kind):
                continue
            paths = [make_dicom(Path(tmp) / f"{kind}_{i}.dcm", bits=12, compress=kind, shape=(a.rows, a.cols),
                                seed=i) for i in range(a.images)]
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for p in paths:
                    resize(crop(xrv.utils.read_xray_dcm(p)[None]))
            ref = len(paths) / (time.perf_counter() - t)
            t = time.perf_counter()
            for p in paths:
                pre(*read_gray(p))
            ours = len(paths) / (time.perf_counter() - t)
            print(f"{kind or 'uncompressed':>12}: reference {ref:6.2f} images/s, radfeat {ours:6.2f} images/s "
                  f"({ours / ref:.1f}x)")
        t = time.perf_counter()
        n = 0
        for p in Path(tmp).iterdir():
            read_tags(p, ["PatientID", "ViewPosition", "StudyDate", "StudyTime", "AcquisitionDateTime"])
            n += 1
        print(f"header pass: {n / (time.perf_counter() - t):.0f} headers/s (stop_before_pixels)")


if __name__ == "__main__":
    main()
