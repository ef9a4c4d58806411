"""Declaration of ``encoder`` (implementation: :mod:`radfeat.extractors.encoder`)."""

from __future__ import annotations

from radfeat.extractors import registry

ENCODER = registry.register(registry.ExtractionType(
    name="encoder",
    label="Other encoders",
    description="Runs another TorchXRayVision encoder: the ResNet-50 at 512 × 512 (2048 features and "
                "predictions) or the ResNet autoencoder (its latent code).",
    extractor="radfeat.extractors.encoder:EncoderExtractor",
    columns="<prefix>_resnetfeatures_0…2047, <prefix>_predictions_0…17 (ResNet-50); "
            "<prefix>_latent_0…4607 (autoencoder)",
    order=20,
    weights_kinds=("encoder",),
    architectures=("resnet",),
    weights_word="a TorchXRayVision encoder",
    default_weights="resnet50-res512-all",
    features=True,
    int8=True,
    preprocess=True,
))
