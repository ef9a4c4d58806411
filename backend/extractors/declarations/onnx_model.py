"""Declaration of ``onnx``, any registered ONNX image model (implementation: :mod:`radfeat.extractors.onnx_model`).

Also the choices of ``radfeat models add-onnx --crop/--pool``, which the CLI's parser offers without
loading ONNX Runtime (:mod:`radfeat.extractors.onnx_inspect` applies them).
"""

from __future__ import annotations

from radfeat.extractors import registry

CROPS = ("none", "center")
POOLS = ("none", "avg", "max")

ONNX = registry.register(registry.ExtractionType(
    name="onnx",
    label="Your ONNX model",
    description="Runs an image model you registered with “radfeat models add-onnx”; the columns are the "
                "outputs chosen when it was registered.",
    extractor="radfeat.extractors.onnx_model:OnnxExtractor",
    columns="<prefix>_<output>_0…n for each output chosen at registration",
    order=30,
    weights_kinds=("onnx",),
    architectures=("onnx",),
    weights_word="an ONNX model",
    missing_weights="Choose the ONNX model to run (register one with 'radfeat models add-onnx')",
))
