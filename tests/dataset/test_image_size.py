"""The fast JPEG header reader agrees with Pillow (the reference) on every kind of JPEG we can make."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from yolo_tl.dataset.images import jpeg_header_size, read_image_info


def read_image_size(path):
    info = read_image_info(path)
    return info.width, info.height, info.rotated


def _pil_size(data: bytes):
    with Image.open(io.BytesIO(data)) as im:
        orientation = im.getexif().get(0x0112, 1)
        return im.size[0], im.size[1], orientation


def _jpeg(mode="RGB", size=(123, 45), orientation=None, **save):
    im = Image.new(mode, size, 128 if mode == "L" else (10, 20, 30) if mode == "RGB" else (1, 2, 3, 4))
    kwargs = dict(save)
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        exif[0x010F] = "camera maker"
        kwargs["exif"] = exif.tobytes()
    buf = io.BytesIO()
    im.save(buf, "JPEG", **kwargs)
    return buf.getvalue()


CASES = [
    _jpeg(),
    _jpeg(size=(1, 1)),
    _jpeg(size=(4000, 3)),
    _jpeg("L"),
    _jpeg("CMYK"),
    _jpeg(progressive=True),
    _jpeg(optimize=True, quality=20),
    _jpeg(icc_profile=b"\0" * 70000),  # a 70 kB ICC block pushes the frame header past 64 kB
    *[_jpeg(orientation=o) for o in range(1, 9)],
]


@pytest.mark.parametrize("data", CASES)
def test_fast_path_agrees_with_pillow(data, tmp_path):
    fast = jpeg_header_size(data[:65536])
    ref = _pil_size(data)
    if fast is not None:
        assert fast == ref
    path = tmp_path / "x.jpg"
    path.write_bytes(data)
    w, h, rotated = read_image_size(path)
    assert rotated == (ref[2] in (5, 6, 7, 8))
    assert (w, h) == ((ref[1], ref[0]) if rotated else (ref[0], ref[1]))


def test_big_endian_exif_orientation():
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + b"\x00\x01" + b"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00"
    app1 = b"Exif\x00\x00" + tiff
    data = _jpeg()
    data = data[:2] + b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1 + data[2:]
    assert jpeg_header_size(data) == (123, 45, 6)
    assert _pil_size(data) == (123, 45, 6)


def test_not_a_jpeg_returns_none():
    assert jpeg_header_size(b"\x89PNG\r\n\x1a\n") is None
    assert jpeg_header_size(b"") is None
    assert jpeg_header_size(b"\xff\xd8\xff") is None


def test_corrupt_image_after_ultralytics_import_is_a_clean_error(tmp_path):
    """Ultralytics patches PIL.Image.open to pip-install pi-heif on unidentified files; we bypass it."""
    import ultralytics.utils.patches  # noqa: F401  (applies the patch)
    from PIL import Image

    from yolo_tl.errors import ImageError

    assert Image.open.__module__.startswith("ultralytics")
    for name, data in (("empty.jpg", b""), ("junk.png", b"not an image"), ("junk.heic", b"\0" * 100)):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ImageError):
            read_image_size(tmp_path / name)
