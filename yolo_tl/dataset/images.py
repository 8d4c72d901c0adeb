"""Image sizes from file headers (no pixel decoding), with EXIF orientation applied.

Ultralytics reads images with EXIF orientation applied (``exif_size`` / cv2.imread), so the size a
model sees for a photo taken in portrait is the rotated one. That is the size YOLO labels are
normalised by.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from yolo_tl._upstream.ultralytics import pillow_open
from yolo_tl.errors import ImageError

# EXIF orientations 5..8 swap width and height (transpose / rotate 90 / transverse / rotate 270).
_SWAPS = {5, 6, 7, 8}
_ORIENTATION_TAG = 0x0112


JPEG_END = b"\xff\xd9"  # EOI: the marker every complete JPEG ends with
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # C4 DHT, C8 JPG, CC DAC


def _exif_orientation(tiff: bytes) -> int:
    """Orientation (tag 0x0112) from IFD0 of an EXIF TIFF block; 1 when absent or unreadable."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1
    order = "little" if tiff[:2] == b"II" else "big"
    ifd = int.from_bytes(tiff[4:8], order)
    if ifd + 2 > len(tiff):
        return 1
    count = int.from_bytes(tiff[ifd:ifd + 2], order)
    for k in range(count):
        entry = ifd + 2 + 12 * k
        if entry + 12 > len(tiff):
            return 1
        if int.from_bytes(tiff[entry:entry + 2], order) == _ORIENTATION_TAG:
            value = int.from_bytes(tiff[entry + 8:entry + 10], order)
            return value if 1 <= value <= 8 else 1
    return 1


def jpeg_header_size(head: bytes) -> tuple[int, int, int] | None:
    """(width, height, EXIF orientation) from the first bytes of a JPEG, or None to let PIL decide.

    A fast path for the common case (the size lives in the SOF segment near the start): about 20x
    faster than opening the file with PIL. Anything unusual returns None and PIL reads the file.
    """
    if head[:2] != b"\xff\xd8":
        return None
    i, n, orientation, size = 2, len(head), 1, None
    while i + 4 <= n:
        if head[i] != 0xFF:
            return None
        marker = head[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if 0xD0 <= marker <= 0xD8 or marker == 0x01:  # markers without a length
            i += 2
            continue
        length = int.from_bytes(head[i + 2:i + 4], "big")
        if length < 2:
            return None
        if marker == 0xE1 and head[i + 4:i + 10] == b"Exif\x00\x00":
            orientation = _exif_orientation(head[i + 10:i + 2 + length])
        elif marker in _SOF_MARKERS:
            if i + 9 > n or size is not None:
                return None
            height = int.from_bytes(head[i + 5:i + 7], "big")
            width = int.from_bytes(head[i + 7:i + 9], "big")
            if not (width and height):
                return None
            size = (width, height)
        elif marker == 0xDA:
            # Start of scan: accept the header only once it is complete up to here. A file cut off
            # between the frame header and the scan has no pixels (cv2 cannot decode it and
            # Ultralytics drops it); see read_image_info. An SOS before any frame header is not a
            # JPEG we understand.
            if size is None or i + 2 + length > n:
                return None
            return size[0], size[1], orientation
        i += 2 + length
    return None


@dataclass(frozen=True)
class ImageInfo:
    width: int  # as displayed, after EXIF orientation
    height: int
    rotated: bool  # EXIF orientation swapped width and height
    truncated_jpeg: bool = False  # a JPEG without its end marker (Ultralytics rewrites those in place)
    orientation: int = 1  # EXIF orientation 1..8 (1: none); 2..8 turn or mirror the stored pixels

    @property
    def stored_size(self) -> tuple[int, int]:
        """(width, height) of the pixels as stored in the file, before EXIF orientation."""
        return (self.height, self.width) if self.rotated else (self.width, self.height)


def read_image_info(path: Path) -> ImageInfo:
    """Size, EXIF rotation and JPEG truncation from one open of the file (no pixel decoding)."""
    name = str(path).lower()
    if name.endswith((".jpg", ".jpeg")):
        try:
            with open(path, "rb") as fh:
                head = fh.read(65536)
                fast = jpeg_header_size(head)
                if len(head) == 65536:
                    fh.seek(-2, os.SEEK_END)
                    tail = fh.read(2)
                else:
                    tail = head[-2:]
        except FileNotFoundError:
            raise ImageError("image not found", path=path) from None
        except OSError as err:
            raise ImageError(f"unreadable image ({err.strerror})", path=path) from None
        truncated = tail != JPEG_END
        if fast is not None and fast[0] * fast[1] <= Image.MAX_IMAGE_PIXELS * 2:
            width, height, orientation = fast
            if orientation in _SWAPS:
                return ImageInfo(height, width, True, truncated, orientation)
            return ImageInfo(width, height, False, truncated, orientation)
        if head[:2] == b"\xff\xd8" and len(head) < 65536 and b"\xff\xda" not in head:
            # the whole file is here and has no scan: PIL reads its size, but it has no pixels, and
            # Ultralytics drops it at training time without a word
            raise ImageError("JPEG without image data (truncated or corrupt)", path=path)
        # PIL warns about odd tags and huge sizes: we only read headers, and the CLI output stays clean.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _info(*_read_size(path), truncated_jpeg=truncated)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _info(*_read_size(path))


def _info(width: int, height: int, orientation: int, *, truncated_jpeg: bool = False) -> ImageInfo:
    """ImageInfo from the stored size and the EXIF orientation."""
    if orientation in _SWAPS:
        return ImageInfo(height, width, True, truncated_jpeg, orientation)
    return ImageInfo(width, height, False, truncated_jpeg, orientation)


def _read_size(path: Path) -> tuple[int, int, int]:
    """(stored width, stored height, EXIF orientation) through Pillow (headers only)."""
    try:
        with pillow_open(path) as im:  # Pillow's own, past Ultralytics' wrapper
            width, height = im.size
            orientation = 1
            if im.format in ("JPEG", "MPO", "TIFF", "WEBP", "PNG"):
                try:
                    orientation = int(im.getexif().get(_ORIENTATION_TAG, 1) or 1)
                except Exception:  # a broken EXIF block is ignored, as Ultralytics does
                    orientation = 1
    except FileNotFoundError:
        raise ImageError("image not found", path=path) from None
    except Image.DecompressionBombError as err:
        size = str(err).split(",")[0]
        raise ImageError(f"image too large to be used ({size})", path=path) from None
    except UnidentifiedImageError:
        raise ImageError("not a readable image (corrupt, empty or unknown format)", path=path) from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"unreadable image ({err})", path=path) from None
    if width <= 0 or height <= 0:
        raise ImageError(f"image has no pixels ({width}x{height})", path=path)
    return width, height, orientation if 1 <= orientation <= 8 else 1


def pil_problem(data: bytes) -> str | None:
    """Why Pillow cannot decode these image bytes (Ultralytics checks and restores images with it), or None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pillow_open(io.BytesIO(data)) as im:
                im.load()
    except (OSError, SyntaxError, ValueError) as err:
        return str(err) or type(err).__name__
    return None


def restored_jpeg(path: Path) -> bytes:
    """The bytes of a JPEG that lacks its end marker, with the marker put back (the pixels are unchanged).

    Ultralytics "restores" such a file by decoding it with Pillow and saving it again over the file;
    Pillow refuses most of them ("image file is truncated"), and Ultralytics then drops the image.
    Putting back the two missing bytes is lossless. The result must decode with Pillow (Ultralytics'
    check) and with cv2 (its loader) without libjpeg's "premature end of data segment": a file cut
    inside its pixel data would decode with the missing part filled in grey, and is an ImageError.
    """
    try:
        fixed = Path(path).read_bytes() + JPEG_END
    except OSError as err:
        raise ImageError(f"unreadable image ({err.strerror or err})", path=path) from None
    from yolo_tl.dataset.verify import decoder_warnings

    decodes, said = decoder_warnings(fixed)
    problem = pil_problem(fixed) or ("premature end of data segment" if not decodes or "premature end" in said
                                     else None)
    if problem:
        raise ImageError(f"JPEG cut short inside its pixel data ({problem}): even with its end marker put "
                         "back it does not decode, and Ultralytics would drop it", path=path)
    return fixed
