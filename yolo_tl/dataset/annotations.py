"""The one in-memory form every reader produces and every writer consumes.

Boxes are in absolute pixels of the image as Ultralytics sees it, with continuous 0-based
coordinates: (0, 0) is the top-left corner of the top-left pixel, (width, height) the bottom-right
corner of the bottom-right pixel. Labels stay strings until the YOLO writer maps them to indices.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, overload


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


class PackedBoxes(Sequence[Box]):
    """An image's boxes, packed: coordinates in one float array, flags in bytes, labels shared.

    A ``Box`` tuple costs ~220 bytes (the tuple and four float objects); packed, a box costs
    ~41. A 50,000-image COCO file has ~325,000 boxes: 70 MB as tuples, 13 MB packed. Reading
    an item builds the ``Box`` on the fly, so code that iterates boxes does not change.
    """

    __slots__ = ("_labels", "_xyxy", "_flags")
    DIFFICULT, CROWD = 1, 2  # bits of a box's flag byte

    def __init__(self, labels: tuple[str, ...], xyxy: array, flags: bytes):
        if len(xyxy) != 4 * len(labels) or len(flags) != len(labels):
            raise ValueError("PackedBoxes: labels, coordinates and flags disagree in length")
        self._labels, self._xyxy, self._flags = labels, xyxy, flags

    @classmethod
    def pack(cls, boxes: Iterable[Box]) -> PackedBoxes:
        packer = BoxPacker()
        for b in boxes:
            packer.add(b.label, b.x1, b.y1, b.x2, b.y2, difficult=b.difficult, crowd=b.crowd)
        return packer.packed()

    def __len__(self) -> int:
        return len(self._labels)

    def _box(self, i: int) -> Box:
        c, f = self._xyxy, self._flags[i]
        return Box(self._labels[i], c[4 * i], c[4 * i + 1], c[4 * i + 2], c[4 * i + 3],
                   bool(f & self.DIFFICULT), bool(f & self.CROWD))

    @overload
    def __getitem__(self, index: int) -> Box: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Box, ...]: ...

    def __getitem__(self, index: int | slice) -> Box | tuple[Box, ...]:
        if isinstance(index, slice):
            return tuple(self._box(i) for i in range(*index.indices(len(self))))
        n = len(self)
        if not -n <= index < n:
            raise IndexError("box index out of range")
        return self._box(index % n if index < 0 else index)

    def __iter__(self) -> Iterator[Box]:
        c, flags, difficult, crowd = self._xyxy, self._flags, self.DIFFICULT, self.CROWD
        for i, label in enumerate(self._labels):
            j, f = 4 * i, flags[i]
            yield Box(label, c[j], c[j + 1], c[j + 2], c[j + 3], bool(f & difficult), bool(f & crowd))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (PackedBoxes, tuple, list)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"PackedBoxes({list(self)!r})"


class BoxPacker:
    """Builds one image's PackedBoxes box by box, without a Box object per box (COCO parsing)."""

    __slots__ = ("labels", "xyxy", "flags")

    def __init__(self) -> None:
        self.labels: list = []
        self.xyxy = array("d")
        self.flags = bytearray()

    def add(self, label: str, x1: float, y1: float, x2: float, y2: float, *, difficult: bool = False,
            crowd: bool = False) -> None:
        self.labels.append(label)
        self.xyxy.extend((x1, y1, x2, y2))
        self.flags.append((PackedBoxes.DIFFICULT if difficult else 0) | (PackedBoxes.CROWD if crowd else 0))

    def packed(self) -> PackedBoxes:
        return PackedBoxes(tuple(self.labels), self.xyxy, bytes(self.flags))


Boxes = tuple[Box, ...] | PackedBoxes


@dataclass(frozen=True)
class ImageAnnotation:
    """One image and its boxes, as read from an annotation file.

    ``image_path`` is resolved inside the images root; ``width``/``height`` are what the annotation
    says (None when it says nothing). ``split`` is the split the source assigns, if any.
    ``source`` is the annotation file, for error messages and the report.
    """

    image_path: Path
    boxes: Boxes  # a tuple, or PackedBoxes for large COCO files: both are Sequence[Box]
    width: int | None = None
    height: int | None = None
    split: str | None = None
    source: Path | None = None
    truncated_jpeg: bool = False  # read with the size, so linking needs no second open
