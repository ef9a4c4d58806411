"""How many pixels one image may declare (``--max-pixels``); no imports, so options and readers share it.

50 megapixels by default: the largest flat-panel chest detectors are about 43 × 43 cm at 100–140 µm
(≈ 9–18.5 MP; MIMIC-CXR's JPGs are ≈ 7.5 MP), fine-pitch ones at 70 µm ≈ 37 MP.  50 MP keeps every real
radiograph while bounding one decode to ≈ 50 MB (8-bit) – 100 MB (16-bit) of pixels.
"""

DEFAULT_MAX_PIXELS = 50_000_000
MAX_MAX_PIXELS = 1_000_000_000  # the most --max-pixels may be raised to
