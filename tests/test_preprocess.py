"""The fast preprocessing equals TorchXRayVision's (skimage) and MEDomics' (cv2) pipelines."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from radfeat.pipeline.images import ImageError, read_gray
from radfeat.pipeline.preprocess import make
from reference import xrv_input


@pytest.mark.parametrize("shape", [(640, 512), (224, 224), (150, 333), (97, 101), (40, 30), (1, 500)])
@pytest.mark.parametrize("mode", ["xrv", "medomics"])
def test_matches_reference(tmp_path, shape, mode):
    rng = np.random.default_rng(sum(shape))
    pixels = rng.integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / "x.png"
    Image.fromarray(pixels).save(path)
    ref = xrv_input(path, mode)[0]
    got = make(mode)(*read_gray(path))
    assert got.shape == (224, 224) and got.dtype == np.float32
    # float32 rounding (a few ulp) of values up to 1024 in magnitude
    assert np.max(np.abs(got - ref)) <= 5e-4


def test_sixteen_bit_and_colour(tmp_path):
    deep = (np.arange(200 * 180).reshape(200, 180) * 1.7).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "d.png")
    px, maxval = read_gray(tmp_path / "d.png")
    assert maxval == 65535 and px.dtype == np.uint16
    assert np.max(np.abs(make("xrv")(px, maxval) - xrv_input(tmp_path / "d.png")[0])) <= 5e-4
    rgb = np.zeros((50, 60, 3), np.uint8)
    rgb[..., 0], rgb[..., 1] = 200, 10
    Image.fromarray(rgb).save(tmp_path / "c.png")
    px, maxval = read_gray(tmp_path / "c.png")
    assert maxval == 255 and (px == 200).all()


def test_unreadable(tmp_path):
    (tmp_path / "z.jpg").write_bytes(b"")
    with pytest.raises(ImageError, match="empty file"):
        read_gray(tmp_path / "z.jpg")
    Image.new("1", (10, 10)).save(tmp_path / "b.png")
    with pytest.raises(ImageError, match="unsupported image mode"):
        read_gray(tmp_path / "b.png")
    with pytest.raises(ImageError, match="cannot read file"):
        read_gray(tmp_path / "missing.jpg")


@pytest.mark.parametrize("shape", [(700, 650), (120, 90), (2, 2)])
@pytest.mark.parametrize("band", [(200, 256), (0, 40)])
def test_one_sided_range_is_clipped_like_skimage(tmp_path, shape, band):
    """All-bright or all-dark images: skimage clips the zero-padded borders back into the input range."""
    rng = np.random.default_rng(7)
    pixels = rng.integers(*band, shape, dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "x.png")
    got = make("xrv")(*read_gray(tmp_path / "x.png"))
    assert np.max(np.abs(got - xrv_input(tmp_path / "x.png")[0])) <= 5e-4


@pytest.mark.parametrize(("dtype", "maxval"), [(np.uint8, 255), (np.uint16, 65535)])
def test_fast_normalise_is_bitwise_equal(dtype, maxval):
    from radfeat.pipeline.preprocess import normalize, normalize_pixels

    pixels = np.random.default_rng(3).integers(0, maxval + 1, (310, 290), dtype=dtype)[4:, 9:]  # a strided view
    assert np.array_equal(normalize_pixels(pixels, maxval), normalize(pixels, maxval))
