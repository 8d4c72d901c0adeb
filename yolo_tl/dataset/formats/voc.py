"""Pascal VOC XML: a pure parser (bytes -> VocRecord) and a thin reader that finds the image.

Quirks handled here, each with a test: 1-based pixels (see boxes.voc_to_xyxy), missing
``<difficult>``/``<truncated>``/``<size>``, a foreign absolute ``<path>`` (ignored: we use
``<filename>``), float coordinates, a single ``<object>``. DOCTYPE and entity declarations are refused
before parsing, so no external entity is fetched and no entity bomb is expanded.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from xml.parsers import expat

from yolo_tl.dataset.annotations import Box
from yolo_tl.dataset.boxes import voc_to_xyxy
from yolo_tl.errors import AnnotationError

_FORBIDDEN = (b"<!DOCTYPE", b"<!ENTITY", b"<!doctype", b"<!entity")


@dataclass(frozen=True)
class VocRecord:
    filename: str | None
    width: int | None
    height: int | None
    boxes: tuple[Box, ...]


def _text(elem: ET.Element | None) -> str | None:
    if elem is None or elem.text is None:
        return None
    text = elem.text.strip()
    return text or None


def _child_text(elem: ET.Element, tag: str) -> str | None:
    """``_text(elem.find(tag))`` with the C-level findtext (no Element handed to Python)."""
    text = elem.findtext(tag)
    return (text.strip() or None) if text is not None else None


def _number(elem: ET.Element, tag: str, *, source: Path, where: str) -> float:
    raw = _child_text(elem, tag)
    if raw is None:
        raise AnnotationError("missing value", path=source, field=f"{where}/{tag}")
    try:
        value = float(raw)
    except ValueError:
        raise AnnotationError(f"not a number: {raw!r}", path=source, field=f"{where}/{tag}") from None
    if not math.isfinite(value):
        raise AnnotationError(f"not a finite number: {raw!r}", path=source, field=f"{where}/{tag}")
    return value


_COORDS = ("xmin", "ymin", "xmax", "ymax")


def _plain_coords(bnd: ET.Element) -> tuple[float, float, float, float] | None:
    """The four corners when all are plain finite numbers (the usual case), else None.

    float() strips surrounding whitespace as _text does; anything unusual (a missing or empty
    element, text that is no number, inf/nan) returns None and _number reports it.
    """
    try:  # findtext: None for a missing element (TypeError), "" for an empty one (ValueError)
        x1 = float(bnd.findtext("xmin"))  # type: ignore[arg-type]
        y1 = float(bnd.findtext("ymin"))  # type: ignore[arg-type]
        x2 = float(bnd.findtext("xmax"))  # type: ignore[arg-type]
        y2 = float(bnd.findtext("ymax"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if math.isfinite(x1) and math.isfinite(y1) and math.isfinite(x2) and math.isfinite(y2):
        return x1, y1, x2, y2
    return None


def _size(root: ET.Element, tag: str, *, source: Path) -> int | None:
    """``<size><width>`` as an int; None when missing, empty or zero (the size is then read from the image)."""
    size = root.find("size")
    raw = _child_text(size, tag) if size is not None else None
    if raw is None:  # a second <size> may hold it: the full path search, as before
        raw = _text(root.find(f"size/{tag}"))
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise AnnotationError(f"not a number: {raw!r}", path=source, field=f"size/{tag}") from None
    if not math.isfinite(value) or value < 0:
        raise AnnotationError(f"invalid image size {raw!r}", path=source, field=f"size/{tag}")
    return int(round(value)) or None


def _flag(elem: ET.Element, tag: str) -> bool:
    raw = _child_text(elem, tag)
    return raw is not None and raw.lower() in ("1", "true", "yes")


class _Found(Exception):
    pass


class _RootReached(Exception):
    pass


def _has_doctype(data: bytes) -> bool:
    """Whether the prolog holds a DOCTYPE, in any encoding expat reads (UTF-16 too, where the
    byte check above sees nothing). Expat stops at the DOCTYPE or at the root element's start,
    so nothing is expanded and the cost is the prolog's only.
    """
    parser = expat.ParserCreate()

    def found(*_args: object) -> None:
        raise _Found()

    def root_reached(*_args: object) -> None:
        raise _RootReached()

    parser.StartDoctypeDeclHandler = found
    parser.StartElementHandler = root_reached
    try:
        parser.Parse(data, True)
    except _Found:
        return True
    except (_RootReached, expat.ExpatError):
        return False  # malformed XML is reported by the real parse below
    return False


def parse_voc(data: bytes, *, source: Path) -> VocRecord:
    """Parse one VOC annotation. Raises AnnotationError naming the file and the field."""
    head = data[:4096]
    # in an ASCII-compatible encoding (what expat reads, bar UTF-16) a DOCTYPE is these very bytes;
    # UTF-16 (NUL bytes, a BOM) needs expat's own look at the prolog
    ascii_compatible = b"\x00" not in head and not head.startswith((b"\xff\xfe", b"\xfe\xff"))
    if (any(token in head for token in _FORBIDDEN) or b"<!ENTITY" in data
            or (b"<!DOCTYPE" in data if ascii_compatible else _has_doctype(data))):
        raise AnnotationError("DOCTYPE/ENTITY declarations are not allowed in annotation XML",
                              path=source)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as err:
        raise AnnotationError(f"malformed XML ({err})", path=source) from None
    if root.tag != "annotation":
        raise AnnotationError(f"root element is <{root.tag}>, expected <annotation>", path=source)
    boxes: list[Box] = []
    for i, obj in enumerate(root.findall("object")):
        name = _child_text(obj, "name")
        if name is None:
            raise AnnotationError("object has no <name>", path=source, field=f"object[{i}]/name")
        bnd = obj.find("bndbox")
        if bnd is None:
            raise AnnotationError("object has no <bndbox>", path=source, field=f"object[{i}]/bndbox")
        coords = _plain_coords(bnd)
        if coords is None:  # something is off: read again, value by value, to say what
            coords = tuple(_number(bnd, t, source=source, where=f"object[{i}]/bndbox") for t in _COORDS)
        x1, y1, x2, y2 = voc_to_xyxy(*coords)
        boxes.append(Box(name, x1, y1, x2, y2, difficult=_flag(obj, "difficult")))
    return VocRecord(
        filename=_child_text(root, "filename"),
        width=_size(root, "width", source=source),
        height=_size(root, "height", source=source),
        boxes=tuple(boxes),
    )


def read_voc(xml_path: Path) -> VocRecord:
    """Read and parse one VOC XML file."""
    try:
        with open(xml_path, "rb") as fh:
            data = fh.read()
    except OSError as err:
        raise AnnotationError(f"cannot read file ({err.strerror})", path=xml_path) from None
    if not data.strip():
        raise AnnotationError("empty file", path=xml_path)
    return parse_voc(data, source=xml_path)
