"""Declaration of ``anatomy`` (implementation: :mod:`radfeat.extractors.anatomy`)."""

from __future__ import annotations

from radfeat.extractors import registry

OWN_MODEL_ARCHITECTURE = "segmentation-onnx"  # a model registered with 'radfeat models add-onnx --task segmentation'

ANATOMY = registry.register(registry.ExtractionType(
    name="anatomy",
    label="Anatomy",
    description="Segments 14 anatomical structures (TorchXRayVision's ChestX-Det PSPNet, or your own ONNX "
                "segmentation model) and measures them: area, bounding box, centroid; cardiothoracic ratio and "
                "left/right lung area ratio.",
    extractor="radfeat.extractors.anatomy:AnatomyExtractor",
    columns="<prefix>_anatomy_<structure>_area, _bbox_x0…_bbox_y1, _centroid_x, _centroid_y for each structure; "
            "<prefix>_anatomy_ctr, <prefix>_anatomy_lung_area_ratio; mask_path with mask overlays",
    order=60,
    default_stem="image_anatomy_features",
    weights_kinds=("anatomy",),
    architectures=("pspnet", OWN_MODEL_ARCHITECTURE),
    weights_word="an anatomical segmentation model",
    default_weights="chestx-det-pspnet",
    preprocess=True,
    options=(registry.Option(
        "anatomy_masks", "Mask overlays", "bool", False,
        help="also write an overlay PNG of the masks of each image (listed in the table)"),),
))
