"""Image sizes from file headers (no pixel decoding), with EXIF orientation applied.

Ultralytics reads images with EXIF orientation applied (``exif_size`` / cv2.imread), so the size a
model sees for a photo taken in portrait is the rotated one. That is the size YOLO labels are
normalised by.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Tuple

from PIL import Image, UnidentifiedImageError

from yolo_tl.errors import ImageError

# EXIF orientations 5..8 swap width and height (transpose / rotate 90 / transverse / rotate 270).
_SWAPS = {5, 6, 7, 8}
_ORIENTATION_TAG = 0x0112


def read_image_size(path: Path) -> Tuple[int, int, bool]:
    """(width, height, rotated) as displayed after EXIF orientation; rotated when it swapped w/h."""
    # PIL warns about odd tags and huge sizes: we only read headers, and the CLI output stays clean.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _read_size(path)


def _read_size(path: Path) -> Tuple[int, int, bool]:
    try:
        with Image.open(path) as im:
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
    if orientation in _SWAPS:
        return height, width, True
    return width, height, False
