"""Property tests (hypothesis) for the coordinate maths and the label lines prepare writes.

- normalised coordinates are always in [0, 1], whatever box comes in (outside, inverted, huge);
- widths and heights of every written box are positive;
- VOC (1-based pixels) -> YOLO line -> pixels gives the original box back within 1 px;
- clipping keeps every box inside the image, changes nothing inside it, and is idempotent.
"""

from __future__ import annotations

import math
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yolo_tl.dataset.annotations import Box, ImageAnnotation
from yolo_tl.dataset.boxes import (
    clip_xyxy,
    coco_to_xyxy,
    format_yolo_line,
    has_area,
    voc_to_xyxy,
    xyxy_to_yolo,
    yolo_to_fiftyone,
)
from yolo_tl.dataset.prepare import _yolo_lines
from yolo_tl.dataset.report import PrepareReport


def yolo_to_xyxy(cx, cy, w, h, width, height):
    """The inverse of a YOLO line, written here from the format's definition (not our code)."""
    return ((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height)


def xyxy_to_fiftyone(box, width, height):
    """FiftyOne's relative [x, y, w, h] from the top-left, from its documented definition."""
    x1, y1, x2, y2 = box
    return (x1 / width, y1 / height, (x2 - x1) / width, (y2 - y1) / height)


SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
sizes = st.integers(min_value=1, max_value=20000)
coords = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
unit = st.floats(min_value=-0.5, max_value=1.5, allow_nan=False)
fraction = st.floats(0, 1, allow_nan=False)


@st.composite
def image_and_box(draw):
    """An image size and a box around it: often inside, often across an edge, sometimes inverted,
    outside or far away (any float)."""
    w, h = draw(sizes), draw(sizes)
    near = st.tuples(unit, unit, unit, unit).map(lambda b: (b[0] * w, b[1] * h, b[2] * w, b[3] * h))
    across = st.tuples(unit, unit, fraction, fraction).map(
        lambda b: (b[0] * w, b[1] * h, (b[0] + b[2]) * w, (b[1] + b[3]) * h))
    return w, h, draw(st.one_of(across, across, across, near, st.tuples(coords, coords, coords, coords)))


def parse_line(line: str) -> tuple:
    cls, *vals = line.split()
    assert len(vals) == 4
    return (int(cls), *map(float, vals))


@SETTINGS
@given(case=image_and_box())
def test_clipping_keeps_boxes_inside_and_is_idempotent(case):
    w, h, box = case
    clipped, changed = clip_xyxy(box, w, h)
    x1, y1, x2, y2 = clipped
    assert 0 <= x1 <= w and 0 <= x2 <= w and 0 <= y1 <= h and 0 <= y2 <= h
    assert clip_xyxy(clipped, w, h) == (clipped, False)
    inside = 0 <= box[0] <= w and 0 <= box[2] <= w and 0 <= box[1] <= h and 0 <= box[3] <= h
    assert changed is not inside
    if inside:
        assert clipped == box


@SETTINGS
@given(case=image_and_box())
def test_normalised_coordinates_always_in_unit_range(case):
    w, h, box = case
    clipped, _ = clip_xyxy(box, w, h)
    if not has_area(clipped):  # dropped by prepare; nothing to check (no assume: it would filter a lot)
        return
    cx, cy, bw, bh = xyxy_to_yolo(clipped, w, h)
    assert all(0.0 <= v <= 1.0 for v in (cx, cy, bw, bh))
    if clipped[2] - clipped[0] >= 1e-6 and clipped[3] - clipped[1] >= 1e-6:  # not a denormal sliver
        assert bw > 0 and bh > 0
    # the corners too, not only the centre
    assert -1e-12 <= cx - bw / 2 and cx + bw / 2 <= 1 + 1e-12
    assert -1e-12 <= cy - bh / 2 and cy + bh / 2 <= 1 + 1e-12
    _, *vals = parse_line(format_yolo_line(0, (cx, cy, bw, bh)))
    assert all(0.0 <= v <= 1.0 for v in vals)


@st.composite
def image_with_boxes(draw):
    w, h = draw(sizes), draw(sizes)
    any_box = st.one_of(st.tuples(coords, coords, coords, coords),
                        st.tuples(unit, unit, unit, unit).map(lambda b: (b[0] * w, b[1] * h, b[2] * w, b[3] * h)))
    tiny = st.tuples(st.floats(0, w, allow_nan=False), st.floats(0, h, allow_nan=False),
                     st.floats(0, 1e-3), st.floats(0, 1e-3)).map(lambda t: (t[0], t[1], t[0] + t[2], t[1] + t[3]))
    boxes = draw(st.lists(st.one_of(any_box, tiny), min_size=1, max_size=8))
    return w, h, boxes


@SETTINGS
@given(case=image_with_boxes())
def test_written_label_lines_are_valid_for_any_box(case):
    """What prepare writes: values in [0, 1], widths and heights > 0, each box kept or counted."""
    w, h, boxes = case
    img = ImageAnnotation(Path("x.jpg"), tuple(Box("a", *b) for b in boxes), w, h, None, Path("x.xml"))
    report = PrepareReport(classes=["a"])
    lines, labels = _yolo_lines(img, {"a": 0}, False, report)
    assert len(lines) == len(labels)
    assert len(lines) + sum(report.boxes_dropped.values()) == len(boxes)
    for line in lines:
        cls, cx, cy, bw, bh = parse_line(line)
        assert cls == 0
        assert all(0.0 <= v <= 1.0 for v in (cx, cy, bw, bh)), line
        assert bw > 0 and bh > 0, line


@st.composite
def voc_boxes(draw):
    """Image size and a VOC box in 1-based pixel indices (xmax may be width + 1, as often seen)."""
    w, h = draw(sizes), draw(sizes)
    xmin = draw(st.integers(1, w))
    ymin = draw(st.integers(1, h))
    xmax = draw(st.integers(xmin + 1, w + 1))
    ymax = draw(st.integers(ymin + 1, h + 1))
    return w, h, (xmin, ymin, xmax, ymax)


@SETTINGS
@given(case=voc_boxes())
def test_voc_to_yolo_to_pixels_round_trip_within_one_pixel(case):
    w, h, voc = case
    clipped, _ = clip_xyxy(voc_to_xyxy(*voc), w, h)
    _, cx, cy, bw, bh = parse_line(format_yolo_line(3, xyxy_to_yolo(clipped, w, h)))
    # back to VOC's 1-based pixels by hand: corners from centre and size, then + 1
    back = ((cx - bw / 2) * w + 1, (cy - bh / 2) * h + 1, (cx + bw / 2) * w + 1, (cy + bh / 2) * h + 1)
    assert all(abs(a - b) <= 1.0 for a, b in zip(back, voc)), (voc, back)
    assert bw > 0 and bh > 0


@SETTINGS
@given(w=sizes, h=sizes, f=st.tuples(fraction, fraction, fraction, fraction))
def test_coco_to_yolo_to_pixels_round_trip_within_one_pixel(w, h, f):
    x, y = f[0] * w, f[1] * h
    bw, bh = max((w - x) * f[2], 1e-3), max((h - y) * f[3], 1e-3)
    clipped, _ = clip_xyxy(coco_to_xyxy(x, y, bw, bh), w, h)
    _, *yolo = parse_line(format_yolo_line(0, xyxy_to_yolo(clipped, w, h)))
    back = yolo_to_xyxy(*yolo, w, h)
    assert all(abs(a - b) <= 1.0 for a, b in zip(back, (x, y, x + bw, y + bh)))


@SETTINGS
@given(case=image_and_box())
def test_fiftyone_boxes_agree_from_pixels_and_from_yolo(case):
    w, h, box = case
    clipped, _ = clip_xyxy(box, w, h)
    if not has_area(clipped):  # dropped by prepare; nothing to check (no assume: it would filter a lot)
        return
    direct = xyxy_to_fiftyone(clipped, w, h)
    via_yolo = yolo_to_fiftyone(*xyxy_to_yolo(clipped, w, h))
    assert all(math.isclose(a, b, abs_tol=1e-9) for a, b in zip(direct, via_yolo))
    x, y, bw, bh = direct
    assert 0 <= x <= 1 and 0 <= y <= 1 and bw >= 0 and bh >= 0
    assert x + bw <= 1 + 1e-12 and y + bh <= 1 + 1e-12


@SETTINGS
@given(case=image_with_boxes(), packed=st.booleans())
def test_label_lines_match_an_independent_clip_and_normalise(case, packed):
    """Each kept box's line equals numpy's clip-then-normalise of it, whichever path prepare takes
    (boxes inside the image take a short path, the others a step-by-step one)."""
    import numpy as np

    from yolo_tl.dataset.annotations import PackedBoxes

    w, h, boxes = case
    box_objs = tuple(Box("a", *b) for b in boxes)
    img = ImageAnnotation(Path("x.jpg"), PackedBoxes.pack(box_objs) if packed else box_objs, w, h, None,
                          Path("x.xml"))
    lines, _ = _yolo_lines(img, {"a": 0}, False, PrepareReport(classes=["a"]))
    expected = []
    for b in boxes:
        x1, y1, x2, y2 = np.clip(np.array(b, dtype=np.float64), 0, [w, h, w, h])
        if not (b[2] > b[0] and b[3] > b[1]) or not (x2 > x1 and y2 > y1):
            continue  # zero-area, inverted or outside: dropped and counted (the test above)
        yolo = np.array([(x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h])
        if yolo[2] <= 5e-7 or yolo[3] <= 5e-7:
            continue
        expected.append([0.0, *np.clip(yolo, 0, 1)])
    got = np.array([[float(v) for v in line.split()] for line in lines]).reshape(-1, 5)
    assert got.shape == (len(expected), 5)
    np.testing.assert_allclose(got, np.array(expected).reshape(-1, 5), atol=5.1e-7, rtol=0)
