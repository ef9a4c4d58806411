"""DICOM reading: pixels equal to TorchXRayVision's read_xray_dcm, refusals with reasons, discovery, headers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from dicom_support import JPEG_LOSSLESS_SV1, encoder_available, make_dicom, radiograph, set_transfer_syntax
from radfeat.pipeline.dicom import header_datetime, read_tags, tag_problem
from radfeat.pipeline.discovery import discover, is_image_file
from radfeat.pipeline.images import ImageError, read_gray
from radfeat.pipeline.preprocess import normalize_pixels

pytest.importorskip("pydicom")


def read_xray_dcm(path, voi_lut=False):
    from radfeat.xrv_compat import import_xrv

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return import_xrv().utils.read_xray_dcm(path, voi_lut=voi_lut)


VARIANTS = [  # (bits, photometric, compression)
    (12, "MONOCHROME2", None), (12, "MONOCHROME1", None), (16, "MONOCHROME2", None), (16, "MONOCHROME1", None),
    (8, "MONOCHROME2", None), (10, "MONOCHROME1", None),
    (12, "MONOCHROME2", "rle"), (16, "MONOCHROME1", "rle"),
    (12, "MONOCHROME1", "jpegls"), (16, "MONOCHROME2", "jpegls"),
    (12, "MONOCHROME2", "j2k"), (16, "MONOCHROME1", "j2k"),
]


@pytest.mark.parametrize(("bits", "photometric", "compress"), VARIANTS)
def test_pixels_equal_read_xray_dcm(tmp_path, bits, photometric, compress):
    if compress and not encoder_available(compress):
        pytest.skip(f"no {compress} encoder installed")
    path = make_dicom(tmp_path / "x.dcm", bits=bits, photometric=photometric, compress=compress, seed=bits)
    pixels, maxval = read_gray(path)
    assert maxval == 2 ** bits - 1
    ref = read_xray_dcm(path)
    got = normalize_pixels(pixels, maxval)
    assert got.dtype == ref.dtype == np.float32
    assert np.array_equal(got, ref)  # bit for bit, not within a tolerance


def test_jpeg_lossless_decodes_like_read_xray_dcm(tmp_path):
    """JPEG Lossless SV1 (the most common compressed PACS syntax): encoded with imagecodecs where installed."""
    imagecodecs = pytest.importorskip("imagecodecs")
    import pydicom
    from pydicom.encaps import encapsulate

    arr = radiograph(90, 70, 12, seed=3)
    try:
        frame = imagecodecs.jpeg8_encode(arr, lossless=True, bitspersample=12)
    except Exception as exc:  # an imagecodecs build without lossless JPEG
        pytest.skip(f"imagecodecs cannot encode lossless JPEG here: {exc}")
    path = make_dicom(tmp_path / "ljpeg.dcm", pixels=arr, bits=12)
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = JPEG_LOSSLESS_SV1
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.save_as(path, enforce_file_format=True)
    assert np.array_equal(normalize_pixels(*read_gray(path)), read_xray_dcm(path))


def test_voi_lut_equals_read_xray_dcm_voi_lut(tmp_path):
    path = make_dicom(tmp_path / "w.dcm", bits=12, photometric="MONOCHROME1", window=(1800.0, 2400.0))
    pixels, maxval = read_gray(path, dicom_voi_lut=True)
    assert np.array_equal(normalize_pixels(pixels, maxval), read_xray_dcm(path, voi_lut=True))
    assert not np.array_equal(normalize_pixels(*read_gray(path)), read_xray_dcm(path, voi_lut=True))


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"frames": 3}, "multi-frame DICOM (3 frames)"),
    ({"rgb": True, "bits": 8}, "colour DICOM (PhotometricInterpretation RGB)"),
    ({"no_pixels": True}, "DICOM without pixel data"),
])
def test_refused_kinds_have_reasons(tmp_path, kwargs, reason):
    path = make_dicom(tmp_path / "bad.dcm", **kwargs)
    with pytest.raises(ImageError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        read_gray(path)


def test_unsupported_transfer_syntax_and_garbage(tmp_path):
    path = make_dicom(tmp_path / "jxl.dcm")
    set_transfer_syntax(path, "1.2.840.10008.1.2.4.100")  # MPEG2 video: no decoder in pydicom
    with pytest.raises(ImageError, match="unsupported DICOM transfer syntax"):
        read_gray(path)
    (tmp_path / "junk.dcm").write_bytes(b"\x00" * 10)
    with pytest.raises(ImageError):
        read_gray(tmp_path / "junk.dcm")


def test_huge_declared_size_is_refused_before_decoding(tmp_path):
    import pydicom

    path = make_dicom(tmp_path / "bomb.dcm", shape=(4, 4))
    ds = pydicom.dcmread(path)
    ds.Rows = ds.Columns = 65535  # 4.3e9 pixels declared, 32 bytes of data
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(ImageError, match=r"image too large: 65535 × 65535 = "):
        read_gray(path)


def test_bits_above_bits_stored_are_masked_as_read_xray_dcm_sees_them(tmp_path):
    import pydicom

    path = make_dicom(tmp_path / "lie.dcm", bits=16)
    ds = pydicom.dcmread(path)
    ds.BitsStored, ds.HighBit = 12, 11  # 16-bit values under a 12-bit claim: pydicom masks the high bits
    ds.save_as(path, enforce_file_format=True)
    pixels, maxval = read_gray(path)
    assert maxval == 4095 and pixels.max() <= 4095
    assert np.array_equal(normalize_pixels(pixels, maxval), read_xray_dcm(path))


def test_discovery_finds_dicoms_with_and_without_extension(tmp_path):
    p = tmp_path / "p1"
    make_dicom(p / "a.dcm")
    make_dicom(p / "B.DICOM")
    make_dicom(p / "IM0001")  # extension-less, preamble
    make_dicom(p / "1.2.840.113619.2.55.3.7")  # SOP-instance-UID-named
    (p / "README").write_text("not an image, no preamble")
    (p / "notes.txt").write_bytes(b"x" * 128 + b"DICM")  # a text file is never sniffed
    (p / ".hidden.dcm").write_bytes(b"")
    names = [r.filename for r in discover(tmp_path, 1).images]
    assert names == ["1.2.840.113619.2.55.3.7", "B.DICOM", "IM0001", "a.dcm"]
    assert is_image_file(p / "IM0001") and not is_image_file(p / "README") and not is_image_file(p / ".hidden.dcm")


def test_headers_are_read_without_pixels_and_dates_are_iso(tmp_path):
    path = make_dicom(tmp_path / "h.dcm", patient="ID\n42", acquisition_datetime="20230405061530.250000+0100")
    tags = read_tags(path, ["PatientID", "ViewPosition", "AcquisitionDateTime", "StudyDate", "StudyTime"])
    assert tags["PatientID"] == "ID 42"  # control characters never reach a cell
    assert tags["ViewPosition"] == "PA"
    assert header_datetime(tags) == "2023-04-05 06:15:30.25"
    assert header_datetime({"StudyDate": "20240131", "StudyTime": "1015"}) == "2024-01-31 10:15:00"
    assert header_datetime({"StudyDate": "20240131"}) == "2024-01-31"
    assert header_datetime({"StudyDate": "2024"}) == ""
    assert tag_problem("PatientID") is None
    assert "Unknown DICOM tag keyword 'patientid'" in tag_problem("patientid")
    assert "sequence or binary" in tag_problem("PixelData")


def test_every_reader_takes_dicoms(tmp_path):
    """Fractal features and 3-channel ONNX models read DICOMs too: grey scaled to 8 bits by the full scale."""
    from radfeat.extractors.onnx_model import load_image
    from radfeat.pipeline.images import read_rgb as load_rgb

    path = make_dicom(tmp_path / "IM0001", bits=12, photometric="MONOCHROME1", compress="rle")
    pixels, maxval = read_gray(path)
    grey = np.rint(pixels.astype(np.float64) * (255.0 / maxval)).astype(np.uint8)
    rgb = load_rgb(path)
    assert rgb.shape == (*pixels.shape, 3) and np.array_equal(rgb[:, :, 1], grey)
    one = load_image(path, 1, 32, "none")
    assert one.shape[:2] == (32, 32)
