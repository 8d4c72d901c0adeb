"""EXIF-turned photos annotated on the stored frame: --exif rotate / auto / keep and the labels they give.

The independent fact: a box drawn as a filled white rectangle on the stored pixels, saved with an EXIF
orientation, then turned by Pillow's ``ImageOps.exif_transpose`` (and by cv2, which Ultralytics reads
with): the white rectangle found in the turned pixels is where the label must be.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

import yolo_tl
from tests.helpers.builders import coco_doc, voc_xml, write_json

W, H = 200, 100  # stored frame
BOX = (120, 10, 180, 40)  # 0-based x1, y1, x2, y2 on the stored pixels (pixels 120..179, 10..39)


def _photo(path: Path, orientation: int, size=(W, H), box=BOX) -> Path:
    """A PNG (lossless: the rectangle's edges stay exact) or a JPEG (as phones write them, quality 95)
    with the box filled white on black."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", size, (0, 0, 0))
    ImageDraw.Draw(im).rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=(255, 255, 255))
    exif = Image.Exif()
    exif[0x0112] = orientation
    if path.suffix == ".jpg":
        im.save(path, "JPEG", exif=exif.tobytes(), quality=95)
    else:
        im.save(path, "PNG", exif=exif.tobytes())
    return path


def _white_box(pixels: np.ndarray) -> tuple[float, float, float, float]:
    """(x1, y1, x2, y2) of the white pixels, as continuous 0-based edges."""
    ys, xs = np.nonzero(pixels.max(axis=2) > 127)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def _label_box(out: Path, stem: str) -> tuple[float, float, float, float, tuple[int, int]]:
    img = next((out / "images").rglob(f"{stem}.*"))
    shown = cv2.imread(str(img)).shape[1::-1]  # what Ultralytics trains on: cv2 applies the tag
    line = next((out / "labels").rglob(f"{stem}.txt")).read_text().split()
    cx, cy, w, h = (float(v) for v in line[1:])
    sw, sh = shown
    return ((cx - w / 2) * sw, (cy - h / 2) * sh, (cx + w / 2) * sw, (cy + h / 2) * sh, shown)


def _voc_source(root: Path, orientation: int, annotated: tuple[int, int] | None, name: str = "p.png") -> Path:
    _photo(root / name, orientation)
    # VOC corners are 1-based: xmin = x1 + 1
    obj = ("thing", BOX[0] + 1, BOX[1] + 1, BOX[2] + 1, BOX[3] + 1)
    (root / "p.xml").write_text(voc_xml(name, [obj], size=annotated))
    return root


def _coco_source(root: Path, orientation: int, annotated: tuple[int, int], name: str = "p.png") -> Path:
    _photo(root / name, orientation)
    x1, y1, x2, y2 = BOX
    doc = coco_doc([(1, name, *annotated)], [{"image_id": 1, "category_id": 1, "bbox": [x1, y1, x2 - x1, y2 - y1],
                                                  "area": (x2 - x1) * (y2 - y1)}],
                   [{"id": 1, "name": "thing"}])
    return write_json(root / "ann.json", doc)


def _truth(path: Path) -> tuple[float, float, float, float]:
    with Image.open(path) as im:
        turned = ImageOps.exif_transpose(im)
        return _white_box(np.asarray(turned.convert("RGB")))


@pytest.mark.parametrize("fmt", ["voc", "coco"])
@pytest.mark.parametrize("orientation", [2, 3, 4, 5, 6, 7, 8])
def test_rotate_turns_boxes_with_the_pixels(tmp_path, fmt, orientation):
    """--exif rotate: every orientation, mirrored ones too, lands on the rectangle Pillow turned."""
    build = _voc_source if fmt == "voc" else _coco_source
    src = build(tmp_path / "src", orientation, (W, H))
    rep = yolo_tl.prepare(src, tmp_path / "out", split="0.5,0.5", exif="rotate")
    *got, shown = _label_box(tmp_path / "out", "p")
    truth = _truth(tmp_path / "src" / "p.png")
    cv2_truth = _white_box(cv2.imread(str(tmp_path / "src" / "p.png")))
    assert truth == cv2_truth  # Pillow and cv2 agree on the shown frame
    assert shown == ((H, W) if orientation >= 5 else (W, H))
    assert got == pytest.approx(truth, abs=1.5)
    assert rep.exif == {"turned": 1}


@pytest.mark.parametrize("fmt", ["voc", "coco"])
@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
@pytest.mark.parametrize("name", ["p.png", "p.jpg"])
def test_auto_turns_boxes_drawn_on_the_stored_frame(tmp_path, fmt, orientation, name):
    """--exif auto (default): the annotation's size is the stored 200x100 -> the boxes are turned.
    JPEG too: its size and orientation are read by yolo-tl's own header parser, not Pillow's."""
    build = _voc_source if fmt == "voc" else _coco_source
    src = build(tmp_path / "src", orientation, (W, H), name)
    rep = yolo_tl.prepare(src, tmp_path / "out", split="0.5,0.5")
    *got, _ = _label_box(tmp_path / "out", "p")
    assert got == pytest.approx(_truth(tmp_path / "src" / name), abs=1.5)
    assert rep.exif == {"turned": 1} and rep.size_mismatches == []
    saved = json.loads((tmp_path / "out" / "prepare_report.json").read_text())
    assert saved["exif"] == {"turned": 1}


def test_orientation_6_box_lands_where_the_photo_shows_it(tmp_path):
    """A box drawn on the stored 200x100 pixels of an orientation-6 photo is 0.75 0.25 0.30 0.30 on
    the shown 100x200 image."""
    # shown frame 100x200: box cx 75, cy 50, w 30, h 60 -> on the stored 200x100 pixels (turned back
    # 90 degrees counter-clockwise) it is x 20..80, y 10..40
    stored_box = (20, 10, 80, 40)
    _photo(tmp_path / "src" / "p.png", 6, box=stored_box)
    obj = ("thing", stored_box[0] + 1, stored_box[1] + 1, stored_box[2] + 1, stored_box[3] + 1)
    (tmp_path / "src" / "p.xml").write_text(voc_xml("p.png", [obj], size=(W, H)))
    assert _truth(tmp_path / "src" / "p.png") == (60.0, 20.0, 90.0, 80.0)  # Pillow's turn
    yolo_tl.prepare(tmp_path / "src", tmp_path / "out", split="0.5,0.5")
    line = [float(v) for v in next((tmp_path / "out" / "labels").rglob("p.txt")).read_text().split()[1:]]
    assert line == pytest.approx([0.75, 0.25, 0.30, 0.30], abs=1e-6)


@pytest.mark.parametrize("fmt", ["voc", "coco"])
def test_auto_keeps_boxes_drawn_on_the_shown_frame(tmp_path, fmt):
    """Annotation size 100x200 (the shown frame): the annotator saw the turned photo and drew the
    box where the rectangle shows; the box is kept as written."""
    photo = _photo(tmp_path / "src" / "p.png", 6)
    x1, y1, x2, y2 = (int(v) for v in _truth(photo))  # where the rectangle is seen
    if fmt == "voc":
        (tmp_path / "src" / "p.xml").write_text(voc_xml("p.png", [("thing", x1 + 1, y1 + 1, x2 + 1, y2 + 1)],
                                                         size=(H, W)))
        src = tmp_path / "src"
    else:
        src = write_json(tmp_path / "src" / "ann.json", coco_doc(
            [(1, "p.png", H, W)], [{"image_id": 1, "category_id": 1, "bbox": [x1, y1, x2 - x1, y2 - y1],
                                    "area": (x2 - x1) * (y2 - y1)}], [{"id": 1, "name": "thing"}]))
    rep = yolo_tl.prepare(src, tmp_path / "out", split="0.5,0.5")
    *got, shown = _label_box(tmp_path / "out", "p")
    assert shown == (H, W)
    assert got == pytest.approx((x1, y1, x2, y2), abs=1.5)
    assert rep.exif == {"shown": 1} and rep.size_mismatches == []


@pytest.mark.parametrize("orientation", [2, 3, 4])
def test_auto_cannot_tell_for_same_size_frames(tmp_path, orientation):
    """Mirror / 180 degrees: stored and shown frames are both 200x100, so the size is no evidence.
    The box is kept as written and counted as 'unknown' (--exif rotate turns it, tested above)."""
    src = _voc_source(tmp_path / "src", orientation, (W, H))
    rep = yolo_tl.prepare(src, tmp_path / "out", split="0.5,0.5")
    *got, _ = _label_box(tmp_path / "out", "p")
    assert got == pytest.approx(BOX, abs=1.5)
    assert rep.exif == {"unknown": 1}
    assert "orientation" in rep.examples["exif_unknown"][0]


def test_auto_cannot_tell_for_a_square_or_unsized_annotation(tmp_path):
    _photo(tmp_path / "sq" / "p.png", 6, size=(100, 100), box=(10, 20, 40, 30))
    (tmp_path / "sq" / "p.xml").write_text(voc_xml("p.png", [("thing", 11, 21, 41, 31)], size=(100, 100)))
    rep = yolo_tl.prepare(tmp_path / "sq", tmp_path / "o1", split="0.5,0.5")
    assert rep.exif == {"unknown": 1}
    *got, _ = _label_box(tmp_path / "o1", "p")
    assert got == pytest.approx((10, 20, 40, 30), abs=1.5)
    src = _voc_source(tmp_path / "nosize", 6, None)
    rep = yolo_tl.prepare(src, tmp_path / "o2", split="0.5,0.5")
    assert rep.exif == {"unknown": 1}


def test_keep_never_turns(tmp_path):
    src = _voc_source(tmp_path / "src", 6, (W, H))
    rep = yolo_tl.prepare(src, tmp_path / "out", split="0.5,0.5", exif="keep")
    assert rep.exif == {"kept": 1}
    assert len(rep.size_mismatches) == 1  # 200x100 written, 100x200 shown: said, as before


def test_cli_exif_option(tmp_path):
    from typer.testing import CliRunner

    from yolo_tl.cli import app

    src = _voc_source(tmp_path / "src", 6, (W, H))
    res = CliRunner().invoke(app, ["prepare", str(src), "--out", str(tmp_path / "out"), "--split", "0.5,0.5"],
                             env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    assert "turned" in res.output and "EXIF" in res.output
    bad = CliRunner().invoke(app, ["prepare", str(src), "--out", str(tmp_path / "o2"), "--exif", "sideways"])
    assert bad.exit_code != 0 and "--exif" in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "o2").exists()
