"""The one in-memory form every reader produces and every writer consumes.

Boxes are in absolute pixels of the image as Ultralytics sees it, with continuous 0-based
coordinates: (0, 0) is the top-left corner of the top-left pixel, (width, height) the bottom-right
corner of the bottom-right pixel. Labels stay strings until the YOLO writer maps them to indices.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Optional, Tuple


class Box(NamedTuple):
    """One box (a tuple: small, immutable; 300k of them from a large COCO file stay cheap)."""

    label: str
    x1: float
    y1: float
    x2: float
    y2: float
    difficult: bool = False  # VOC <difficult>1</difficult>
    crowd: bool = False  # COCO iscrowd=1

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1


@dataclass(frozen=True)
class ImageAnnotation:
    """One image and its boxes, as read from an annotation file.

    ``image_path`` is resolved inside the images root; ``width``/``height`` are what the annotation
    says (None when it says nothing). ``split`` is the split the source assigns, if any.
    ``source`` is the annotation file, for error messages and the report.
    """

    image_path: Path
    boxes: Tuple[Box, ...]
    width: Optional[int] = None
    height: Optional[int] = None
    split: Optional[str] = None
    source: Optional[Path] = None
    truncated_jpeg: bool = False  # read with the size, so linking needs no second open
