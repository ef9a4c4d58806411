"""Declaration of ``densenet`` (implementation: :mod:`radfeat.extractors.densenet`)."""

from __future__ import annotations

from radfeat.extractors import registry

DENSENET = registry.register(registry.ExtractionType(
    name="densenet",
    label="DenseNet features",
    description="Runs a TorchXRayVision DenseNet-121 weight set: 1024 dense features and its pathology "
                "predictions per image.",
    extractor="radfeat.extractors.densenet:DenseNetExtractor",
    columns="<prefix>_densefeatures_0…1023, <prefix>_predictions_0…17",
    column_count=1024 + 18,
    order=10,
    is_default=True,
    weights_kinds=("densenet",),
    architectures=("densenet",),
    weights_word="a TorchXRayVision DenseNet",
    catalog_default=True,
    features=True,
    int8=True,
    preprocess=True,
))
