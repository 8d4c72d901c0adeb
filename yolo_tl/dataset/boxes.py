"""All coordinate maths, no file access.

Conventions (see annotations.py): boxes are ``x1, y1, x2, y2`` in continuous 0-based pixels.
"""

from __future__ import annotations

XYXY = tuple[float, float, float, float]


def voc_to_xyxy(xmin: float, ymin: float, xmax: float, ymax: float) -> XYXY:
    """Pascal VOC pixel indices are 1-based: pixel (1, 1) is the top-left one.

    We shift both corners by one pixel, as Ultralytics' own VOC converter (VOC.yaml) and FiftyOne's
    VOC importer do, so a box keeps its VOC width ``xmax - xmin`` and a VOC box that touches the
    right edge (xmax = width, or the common width + 1) lands on the image edge after clipping.
    A degenerate VOC box (xmin == xmax) stays zero-area and is dropped, never silently widened.
    """
    return (xmin - 1.0, ymin - 1.0, xmax - 1.0, ymax - 1.0)


def coco_to_xyxy(x: float, y: float, w: float, h: float) -> XYXY:
    """COCO ``bbox`` is ``[x, y, width, height]`` from the top-left, 0-based, in pixels."""
    return (x, y, x + w, y + h)


def clip_xyxy(box: XYXY, width: float, height: float) -> tuple[XYXY, bool]:
    """Clip a box to the image; return the clipped box and whether anything changed."""
    x1, y1, x2, y2 = box
    c = (
        min(max(x1, 0.0), width),
        min(max(y1, 0.0), height),
        min(max(x2, 0.0), width),
        min(max(y2, 0.0), height),
    )
    return c, c != (x1, y1, x2, y2)


def is_inverted(box: XYXY) -> bool:
    """True when a corner is on the wrong side of the other (x2 < x1 or y2 < y1)."""
    x1, y1, x2, y2 = box
    return x2 < x1 or y2 < y1


def has_area(box: XYXY) -> bool:
    x1, y1, x2, y2 = box
    return x2 > x1 and y2 > y1


def xyxy_to_yolo(box: XYXY, width: float, height: float) -> XYXY:
    """Pixels -> YOLO ``cx cy w h`` normalised to [0, 1]. The box must already be clipped."""
    x1, y1, x2, y2 = box
    return (
        (x1 + x2) / 2.0 / width,
        (y1 + y2) / 2.0 / height,
        (x2 - x1) / width,
        (y2 - y1) / height,
    )


def format_yolo_line(class_index: int, yolo: XYXY) -> str:
    """One label line, six decimals (sub-pixel for images up to 10^5 px), clamped to [0, 1].

    Clamping guards against float rounding pushing a clipped edge box to 1.0000001, which would
    make Ultralytics drop the whole image.
    """
    cx, cy, w, h = yolo  # clamped with conditionals: 4x faster than min(max(...)) per value
    return "%d %.6f %.6f %.6f %.6f" % (  # noqa: UP031  (%-format: the fastest here, one call per box)
        class_index,
        0.0 if cx < 0.0 else 1.0 if cx > 1.0 else cx,
        0.0 if cy < 0.0 else 1.0 if cy > 1.0 else cy,
        0.0 if w < 0.0 else 1.0 if w > 1.0 else w,
        0.0 if h < 0.0 else 1.0 if h > 1.0 else h,
    )


def yolo_to_fiftyone(cx: float, cy: float, w: float, h: float) -> XYXY:
    """YOLO normalised centre box -> FiftyOne relative top-left box."""
    return (cx - w / 2.0, cy - h / 2.0, w, h)


def exif_turn_xyxy(box: XYXY, orientation: int, width: float, height: float) -> XYXY:
    """A box drawn on the stored pixels (``width`` x ``height``) -> the same box on the shown image.

    EXIF orientation (TIFF tag 0x0112) says how the stored pixels are turned for display, and cv2
    (so Ultralytics) applies it: 2 mirror left-right, 3 rotate 180, 4 mirror top-bottom, 5 transpose,
    6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise; 1 (or anything else) keeps
    the box. Orientations 5-8 swap the image's width and height.
    """
    x1, y1, x2, y2 = box
    w, h = width, height
    if orientation == 2:
        return (w - x2, y1, w - x1, y2)
    if orientation == 3:
        return (w - x2, h - y2, w - x1, h - y1)
    if orientation == 4:
        return (x1, h - y2, x2, h - y1)
    if orientation == 5:
        return (y1, x1, y2, x2)
    if orientation == 6:
        return (h - y2, x1, h - y1, x2)
    if orientation == 7:
        return (h - y2, w - x2, h - y1, w - x1)
    if orientation == 8:
        return (y1, w - x2, y2, w - x1)
    return box
