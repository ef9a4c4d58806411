"""``saliency``: class activation maps of a DenseNet weight set, saved as PNG in four styles.

Why no torch at run time.  For TorchXRayVision's DenseNets the score of pathology ``c`` is
``y_c = g(z_c)`` with ``z_c = Σ_k W_ck · mean_ij A_k(i, j) + b_c``, ``A = relu(F)`` the last feature
map and ``g`` sigmoid followed by the operating-point calibration — increasing wherever the head
is trained.  So the gradient that Grad-CAM takes at ``A`` is ``∂y_c/∂A_k(i, j) = g'(z_c) W_ck / (h w)``,
constant over the map, and

* **Grad-CAM** (Selvaraju et al. 2017) at ``A`` = ``relu(Σ_k α_k A_k)`` with ``α_k = g' W_ck / (h w)`` —
  a positive multiple of **CAM** (Zhou et al. 2016) ``relu(Σ_k W_ck A_k)``; after the per-map
  normalisation below they are the same picture.  HiResCAM is identical here as well.
* **Grad-CAM++** (Chattopadhyay et al. 2018, closed form with the exponential score as in their
  paper and in pytorch-grad-cam, without its 1e-6 epsilon): with ``G_k = g' W_ck / (h w)`` and
  ``S_k = Σ_ij A_k(i, j)``, ``a_k = 1 / (2 + S_k G_k)`` where ``G_k ≠ 0``, weights
  ``w_k = h w · relu(G_k) · a_k`` and the map ``relu(Σ_k w_k A_k)``.  Needs ``g'(z_c)``, computed
  from ``z_c`` (the exported ``features`` times the classifier) and the calibration.
* **Eigen-CAM** (Muhammad & Yeasin 2020): the projection of the (mean-centred) activations on their
  first principal component, ``relu``'d; class-agnostic (one map per image, ``pathology`` empty).
  The sign of a principal component is arbitrary: we orient it so that it correlates positively
  with the total activation.

The export (``radfeat.weights.export``) gives ``activations`` = ``A`` as an extra ONNX output and saves the
classifier beside it; maps are computed in NumPy, min–max normalised to [0, 1] (as pytorch-grad-cam
does), resized bilinearly (``cv2.resize``) to the image region the model saw — the centre square
crop for ``xrv`` preprocessing, the whole image for ``medomics`` — and written as PNG:

* ``gray`` — the map, 0–255 grey;
* ``colormap`` — the map through a small built-in *jet* colour map (RGB);
* ``overlay`` — half colour map, half image (RGB);
* ``multiply`` — the image multiplied by the map (grey).

Files: ``<workspace>/DATA/saliency/<output stem>/<level_1>/…/<file name with '.' → '_'>/
<method>[_<pathology>]_<style>.png``.  The result table lists every map: ``level_*``, ``filename``,
``pathology``, ``method``, ``style``, ``prediction`` (the pathology's calibrated prediction for the
image, empty for Eigen-CAM) and ``path`` (absolute).  A map is listed only after its file is written;
resuming redoes images whose maps were not all listed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from radfeat.extractors import lime_maps
from radfeat.extractors.base import BatchResult, Extractor
from radfeat.extractors.declarations.saliency import CLASS_METHODS, LISTING_COLUMNS, SALIENCY, saliency_folder
from radfeat.extractors.densenet import densenet_provenance
from radfeat.options import ExtractOptions
from radfeat.pipeline.discovery import ImageRef
from radfeat.pipeline.images import center_square, read_gray, to_uint8
from radfeat.pipeline.preprocess import make as make_preprocess
from radfeat.weights.export import export
from radfeat.weights.readiness import ensure_weights
from radfeat.weights.session import OnnxSession

# ---------------------------------------------------------------------------------------------
# Maps (NumPy only)


def cam_maps(act: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Grad-CAM / CAM: ``relu(Σ_k W_pk A_k)`` for each row ``p`` of ``weight`` → ``(P, h, w)`` float64."""
    a = act.astype(np.float64).reshape(act.shape[0], -1)
    maps = weight.astype(np.float64) @ a
    return np.maximum(maps, 0.0).reshape(weight.shape[0], *act.shape[1:])


def score_slopes(logits: np.ndarray, thresholds: Sequence[float] | None, apply_sigmoid: bool) -> np.ndarray:
    """``g'(z)``: derivative of each reported score with respect to its logit (0 for untrained heads)."""
    z = np.asarray(logits, dtype=np.float64)
    if thresholds is None:
        if not apply_sigmoid:
            return np.ones_like(z)
        p = 1.0 / (1.0 + np.exp(-z))
        return p * (1.0 - p)
    p = 1.0 / (1.0 + np.exp(-z))
    t = np.asarray([0.5 if (v is None or math.isnan(v)) else v for v in thresholds], dtype=np.float64)
    trained = np.asarray([not (v is None or math.isnan(v)) for v in thresholds])
    slope = np.where(p < t, 1.0 / (2.0 * t), 1.0 / (2.0 * (1.0 - t)))
    return np.where(trained, p * (1.0 - p) * slope, 0.0)


def gradcampp_maps(act: np.ndarray, weight: np.ndarray, slopes: np.ndarray) -> np.ndarray:
    """Grad-CAM++ for each row of ``weight`` (with its ``g'`` in ``slopes``) → ``(P, h, w)`` float64."""
    k, h, w = act.shape
    a = act.astype(np.float64).reshape(k, -1)
    grads = slopes[:, None] * weight.astype(np.float64) / (h * w)  # (P, K), constant over the map
    sums = a.sum(axis=1)  # S_k
    denom = 2.0 + sums[None, :] * grads
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where((grads != 0) & (denom != 0), 1.0 / denom, 0.0)
    weights = (h * w) * np.maximum(grads, 0.0) * alpha
    return np.maximum(weights @ a, 0.0).reshape(-1, h, w)


def eigencam_map(act: np.ndarray) -> np.ndarray:
    """Eigen-CAM: relu of the activations' projection on their first principal component → ``(h, w)``."""
    k, h, w = act.shape
    a = act.astype(np.float64).reshape(k, -1).T  # (positions, channels)
    centred = a - a.mean(axis=0)
    if not np.any(centred):
        return np.zeros((h, w))
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    proj = centred @ vt[0]
    if float(np.dot(proj, a.sum(axis=1))) < 0:  # orient the component along the total activation
        proj = -proj
    return np.maximum(proj, 0.0).reshape(h, w)


def normalise(cam: np.ndarray) -> np.ndarray:
    """Min–max to [0, 1] (all zeros when the map is flat)."""
    cam = cam - cam.min()
    top = cam.max()
    return cam / top if top > 0 else np.zeros_like(cam)


def upsample(cam: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a normalised map to ``height × width`` (float32 in [0, 1])."""
    import cv2

    out = cv2.resize(cam.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(out, 0.0, 1.0, out=out)


# ---------------------------------------------------------------------------------------------
# Pictures


def jet_lut() -> np.ndarray:
    """256 × 3 uint8 *jet* colour map (blue → cyan → yellow → red)."""
    x = np.linspace(0.0, 1.0, 256)
    rgb = [np.clip(1.5 - np.abs(4.0 * x - c), 0.0, 1.0) for c in (3.0, 2.0, 1.0)]
    return np.rint(np.stack(rgb, axis=1) * 255).astype(np.uint8)


_JET = jet_lut()


def styled(cam: np.ndarray, image: np.ndarray, style: str) -> np.ndarray:
    """One picture (uint8, grey ``H × W`` or RGB ``H × W × 3``) of a map already at the image's size."""
    level = np.rint(cam * 255.0).astype(np.uint8)
    if style == "gray":
        return level
    if style == "colormap":
        return _JET[level]
    if style == "overlay":
        rgb = np.repeat(image[:, :, None], 3, axis=2).astype(np.float32)
        return np.rint(0.5 * _JET[level].astype(np.float32) + 0.5 * rgb).astype(np.uint8)
    if style == "multiply":
        return np.rint(image.astype(np.float32) * cam).astype(np.uint8)
    raise ValueError(f"unknown style {style!r}")


def write_png(path: Path, picture: np.ndarray) -> None:
    import cv2
    from radfeat.output.atomic import write_bytes_atomic

    data = picture if picture.ndim == 2 else picture[:, :, ::-1]  # OpenCV writes BGR
    ok, png = cv2.imencode(".png", np.ascontiguousarray(data), [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise OSError(f"cannot encode {path}")
    write_bytes_atomic(path, png.tobytes())  # never through a planted link, folders included


def display_image(pixels: np.ndarray, maxval: float, mode: str) -> np.ndarray:
    """The region the model saw, as 8-bit grey: centre crop (``xrv``) or the whole image (``medomics``)."""
    return np.ascontiguousarray(to_uint8(center_square(pixels) if mode == "xrv" else pixels, maxval), dtype=np.uint8)


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "x"


# ---------------------------------------------------------------------------------------------
# Extractor


@dataclass
class _Item:
    x: np.ndarray
    image: np.ndarray


class SaliencyExtractor(Extractor):
    kind = SALIENCY.name

    def describe(self) -> str:
        return f"Preparing saliency maps for {self.wset.name}"

    def prepare(self) -> None:
        opts, wset = self.opts, self.wset
        ensure_weights(wset, self.log)
        self.info = export(wset, log=self.log)
        head = np.load(self.info.head_path)
        self.weight, self.bias = head["weight"], head["bias"]
        self.session = OnnxSession(self.info.path, opts.device, self.threads, log=self.log)
        self.provider = self.session.provider
        self.pre = make_preprocess(opts.preprocess, wset.input_size)
        self.pathologies = saliency_pathologies(opts, wset)
        labels = list(wset.labels)
        self.indices = [labels.index(p) for p in self.pathologies]
        self.methods = list(opts.saliency_methods)
        self.styles = list(opts.styles)
        self.folder = saliency_folder(opts)
        self.maps_written = 0
        self.lime = lime_maps.settings(opts)

    def columns(self) -> list[str]:
        return list(LISTING_COLUMNS)

    def fingerprint(self) -> dict[str, Any]:
        opts = self.opts
        return {"type": self.kind, "weights": self.wset.name, "weights_sha256": self.info.weights_sha256,
                "preprocess": opts.preprocess, "pathologies": self.pathologies, "methods": self.methods,
                "styles": self.styles, "folder": str(self.folder),
                **({"lime": vars(self.lime)} if "lime" in self.methods else {})}

    def start_line(self) -> str:
        n_class = sum(m in CLASS_METHODS for m in self.methods)
        per_image = (n_class * len(self.pathologies) + (len(self.methods) - n_class)) * len(self.styles)
        return (f"saliency maps ({', '.join(self.methods)}) of {self.wset.name} on {self.provider}, "
                f"{per_image} PNG file(s) per image in {self.folder}")

    def load(self, ref: ImageRef) -> _Item:
        pixels, maxval = read_gray(ref.path, self.opts.max_pixels, dicom_voi_lut=self.opts.dicom_voi_lut)
        return _Item(self.pre(pixels, maxval), display_image(pixels, maxval, self.opts.preprocess))

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Calibrated predictions of preprocessed images ``N × S × S`` (LIME's classifier function)."""
        return self.session.run(np.ascontiguousarray(batch[:, None], dtype=np.float32), ["predictions"])[0]

    def maps(self, act: np.ndarray, feats: np.ndarray, x: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
        """``(method, pathology, normalised map)`` for one image (``act``: K × h × w, ``feats``: K, ``x``: input)."""
        out: list[tuple[str, str, np.ndarray]] = []
        weight = self.weight[self.indices]
        for method in self.methods:
            if method == "lime":
                maps = lime_maps.lime_maps(x, self.predict, self.indices, self.lime)
            elif method == "gradcam":
                maps = cam_maps(act, weight)
            elif method == "gradcampp":
                logits = feats.astype(np.float64) @ weight.T.astype(np.float64) + self.bias[self.indices]
                thr = self.wset.thresholds_array()
                slopes = score_slopes(logits, None if thr is None else [thr[i] for i in self.indices],
                                      self.wset.apply_sigmoid)
                maps = gradcampp_maps(act, weight, slopes)
            else:
                out.append((method, "", normalise(eigencam_map(act))))
                continue
            out.extend((method, name, normalise(m)) for name, m in zip(self.pathologies, maps, strict=True))
        return out

    def run(self, items: Sequence[_Item], refs: Sequence[ImageRef]) -> BatchResult:
        x = np.stack([it.x for it in items])[:, None]
        preds, feats, act = self.session.run(x, ["predictions", "features", "activations"])
        result = BatchResult(values=[[] for _ in LISTING_COLUMNS])
        jobs = []
        for n, (item, ref) in enumerate(zip(items, refs, strict=True)):
            height, width = item.image.shape
            where = self.folder.joinpath(*ref.levels, safe_name(ref.filename))
            rows = []
            for method, pathology, cam in self.maps(act[n], feats[n], item.x):
                big = upsample(cam, height, width)
                stem = method if not pathology else f"{method}_{safe_name(pathology)}"
                pred = float(preds[n, self.wset.labels.index(pathology)]) if pathology else None
                for style in self.styles:
                    path = where / f"{stem}_{style}.png"
                    rows.append((pathology, method, style, pred, str(path)))
                    jobs.append((n, path, big, item.image, style))
            result.refs.extend([ref] * len(rows))
            for row in rows:
                for col, value in zip(result.values, row, strict=True):
                    col.append(value)
        failed: dict[int, str] = {}

        def write(job: tuple[int, Path, np.ndarray, np.ndarray, str]) -> None:
            n, path, big, image, style = job
            try:
                write_png(path, styled(big, image, style))
            except (OSError, ValueError) as exc:
                failed.setdefault(n, f"cannot write saliency map: {exc}")

        with ThreadPoolExecutor(max(1, min(self.threads, 8)), thread_name_prefix="radfeat-png") as pool:
            list(pool.map(write, jobs))
        if failed:  # drop every row of an image with a missing file; the image is listed as failed
            bad_keys = {refs[n].key for n in failed}
            keep = [i for i, r in enumerate(result.refs) if r.key not in bad_keys]
            result.refs = [result.refs[i] for i in keep]
            result.values = [[col[i] for i in keep] for col in result.values]
            result.failed = [(refs[n], reason) for n, reason in sorted(failed.items())]
        self.maps_written += len(result.refs)
        return result

    def finish(self, summary: Any) -> None:
        self.log(f"Saliency maps: {self.maps_written} PNG file(s) written under {self.folder}")

    def provenance(self) -> dict[str, Any]:
        record = densenet_provenance(self.wset, self.info)
        record["export"]["max_act_diff"] = self.info.max_act_diff
        return {
            **record,
            "saliency": {"folder": str(self.folder), "methods": self.methods, "styles": self.styles,
                         "pathologies": self.pathologies, "maps_written": self.maps_written,
                         "normalisation": "min-max per map", "resize": "bilinear (cv2.resize)",
                         "colormap": "jet", **({"lime": {**vars(self.lime), "explainer": "lime.lime_base.LimeBase"}}
                                               if "lime" in self.methods else {})},
        }


def saliency_pathologies(opts: ExtractOptions, wset: Any) -> list[str]:
    """The pathologies a saliency run maps: the chosen ones, else every label the weight set was trained for."""
    return list(wset.trained_labels) if opts.pathologies is None else list(opts.pathologies)
