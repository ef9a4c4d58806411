"""``anatomy``: segment 14 anatomical structures (TorchXRayVision's ChestX-Det PSPNet) and measure them.

The weight set is exported to ONNX on first use (:mod:`radfeat.weights.segmentation`) and run with
ONNX Runtime; the image is preprocessed like every TorchXRayVision model (``--preprocess xrv``:
normalise, centre crop, skimage-exact resize; or ``medomics``) at the model's size (512), the
ImageNet normalisation is inside the graph.  A structure's mask is ``logit > 0``.  Columns (see
:mod:`radfeat.extractors.anatomy_measures`): for each structure ``<prefix>_anatomy_<structure>_area``,
``…_bbox_x0 … _bbox_y1``, ``…_centroid_x``, ``…_centroid_y``; then ``<prefix>_anatomy_ctr`` and
``<prefix>_anatomy_lung_area_ratio``.

A model registered with ``radfeat models add-onnx --task segmentation`` (e.g. a pneumothorax U-Net) runs
the same way with its own preprocessing (:mod:`radfeat.extractors.onnx_model`) and labels; its masks come
from its output as registered (sigmoid logits, softmax or probabilities), measured at the output's size.

With ``masks`` (``--anatomy-masks``) every image also gets an overlay PNG of its masks (one colour
per structure over the model's view of the image) under
``<workspace>/DATA/anatomy/<output stem>/<level_1>/…/<file name>_masks.png``, listed in a last
column ``mask_path``; a row is written only after its file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from radfeat.extractors import anatomy_measures as am
from radfeat.extractors.base import BatchResult, Extractor
from radfeat.extractors.declarations.anatomy import ANATOMY, OWN_MODEL_ARCHITECTURE
from radfeat.pipeline.discovery import ImageRef
from radfeat.pipeline.images import read_gray
from radfeat.pipeline.preprocess import make as make_preprocess

ANATOMY_SUBDIR = Path("DATA") / "anatomy"
MASK_COLUMN = "mask_path"


@dataclass
class _Item:
    x: np.ndarray
    view: am.View
    image: np.ndarray | None  # the model's view as 8-bit grey, S × S (only when writing masks)


class AnatomyExtractor(Extractor):
    kind = ANATOMY.name
    float64 = True  # pixel coordinates and ratios: keep full precision

    def describe(self) -> str:
        return f"Preparing anatomical segmentation with {self.wset.name}"

    def prepare(self) -> None:
        from radfeat.weights.readiness import ensure_weights
        from radfeat.weights.session import OnnxSession

        opts, wset = self.opts, self.wset
        ensure_weights(wset, self.log)
        self.own_model = wset.architecture == OWN_MODEL_ARCHITECTURE
        if self.own_model:
            from radfeat.weights.export import weights_sha256

            self.cfg = wset.extra
            self.info = None
            self.sha = weights_sha256(wset)
            self.labels = list(self.cfg["labels"])
            path = wset.path
        else:
            from radfeat.weights.segmentation import export_segmentation

            self.info = export_segmentation(wset, log=self.log)
            self.sha = self.info.weights_sha256
            self.labels = list(self.info.labels)
            path = self.info.path
            self.pre = make_preprocess(opts.preprocess, self.info.input_size)
        self.size = wset.input_size if self.own_model else self.info.input_size
        self.session = OnnxSession(path, opts.device, self.threads, log=self.log)
        self.provider = self.session.provider
        self.batch_size = min(self.batch_size, 4)  # 14 × 512² float logits per image
        self.masks = bool(opts.anatomy_masks)
        self.folder = (Path(opts.workspace).expanduser() / ANATOMY_SUBDIR / opts.output_path().stem).resolve()
        self.written = 0

    def columns(self) -> list[str]:
        return am.measure_columns(self.opts.prefix, self.labels) + ([MASK_COLUMN] if self.masks else [])

    def fingerprint(self) -> dict[str, Any]:
        return {"type": self.kind, "weights": self.wset.name, "weights_sha256": self.sha,
                "preprocess": self.opts.preprocess, "prefix": self.opts.prefix, "masks": self.masks,
                "folder": str(self.folder) if self.masks else None}

    def start_line(self) -> str:
        where = f", mask overlays in {self.folder}" if self.masks else ""
        return (f"anatomy: {self.wset.name} ({len(self.labels)} structures) on {self.provider}, "
                f"{self.opts.preprocess} preprocessing at {self.size}, batch {self.batch_size}{where}")

    @property
    def mode(self) -> str:
        """Which part of the image the model sees: ``xrv`` (centre square) or ``medomics`` (all of it)."""
        if self.own_model:
            return "xrv" if self.cfg["crop"] == "center" else "medomics"
        return self.opts.preprocess

    def load(self, ref: ImageRef) -> _Item:
        pixels, maxval = read_gray(ref.path, dicom_voi_lut=self.opts.dicom_voi_lut)
        mask_h, mask_w = self.cfg["mask_size"] if self.own_model else (self.size, self.size)
        view = am.View.of(pixels.shape[0], pixels.shape[1], (mask_h, mask_w), self.mode)
        image = None
        if self.masks:
            import cv2
            from radfeat.extractors.saliency import display_image

            region = display_image(pixels, maxval, self.mode)
            image = cv2.resize(region, (mask_w, mask_h), interpolation=cv2.INTER_AREA)
        if not self.own_model:
            return _Item(self.pre(pixels, maxval), view, image)
        from radfeat.extractors.onnx_model import load_image

        cfg = self.cfg
        x = load_image(ref.path, cfg["channels"], self.size, cfg["crop"], self.opts.dicom_voi_lut)
        x = (x / np.float32(cfg["scale"]) - np.asarray(cfg["mean"], np.float32)) / np.asarray(cfg["std"], np.float32)
        return _Item(x if cfg["layout"] == "NHWC" else x.transpose(2, 0, 1), view, image)

    def segment(self, x: np.ndarray) -> np.ndarray:
        """Boolean masks ``N × C × H × W`` of a preprocessed batch."""
        if self.own_model:
            from radfeat.weights.segmentation import masks_from_output

            cfg = self.cfg
            (out,) = self.session.run(np.ascontiguousarray(x, np.float32), cfg["outputs"])
            return masks_from_output(out, cfg["layout"], cfg["activation"])
        (logits,) = self.session.run(np.ascontiguousarray(x[:, None], np.float32), ["logits"])
        return logits > 0

    def run(self, items: Sequence[_Item], refs: Sequence[ImageRef]) -> BatchResult:
        masks = self.segment(np.stack([it.x for it in items]))
        rows = np.stack([am.measures(m, self.labels, it.view) for m, it in zip(masks, items, strict=True)])
        if not self.masks:
            return BatchResult(list(refs), blocks=[rows])
        from radfeat.extractors.saliency import safe_name, write_png

        result = BatchResult(values=[[] for _ in range(rows.shape[1] + 1)])
        for n, (item, ref) in enumerate(zip(items, refs, strict=True)):
            path = self.folder.joinpath(*ref.levels, f"{safe_name(ref.filename)}_masks.png")
            try:
                write_png(path, am.overlay(item.image, masks[n]))
            except (OSError, ValueError) as exc:
                result.failed.append((ref, f"cannot write mask overlay: {exc}"))
                continue
            result.refs.append(ref)
            for col, value in zip(result.values, [*rows[n].tolist(), str(path)], strict=True):
                col.append(value)
            self.written += 1
        return result

    def finish(self, summary: Any) -> None:
        if self.masks:
            self.log(f"Anatomy: {self.written} mask overlay(s) written under {self.folder}")

    def provenance(self) -> dict[str, Any]:
        info = self.info
        export = None if info is None else {"onnx": info.path.name, "input_size": info.input_size,
                                            "min_iou": info.min_iou, "max_logit_diff": info.max_logit_diff}
        rule = "logit > 0 (sigmoid > 0.5)" if info is not None else {
            "sigmoid": "output > 0 (sigmoid > 0.5)", "softmax": "argmax over classes",
            "none": "output > 0.5"}[self.cfg["activation"]]
        return {
            "weights": {"name": self.wset.name, "sha256": self.sha, "source": self.wset.source,
                        "architecture": self.wset.architecture, "labels": self.labels},
            "export": export,
            "anatomy": {"mask": rule, "masks_written": self.written, "view": self.mode,
                        "folder": str(self.folder) if self.masks else None,
                        "ctr": "maximal horizontal heart width / maximal horizontal width of the two lungs"},
        }
