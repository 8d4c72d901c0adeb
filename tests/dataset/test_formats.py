"""Pure parsers: VOC XML and COCO JSON quirks, each with a test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.builders import voc_xml
from yolo_tl.dataset.formats.coco import parse_coco
from yolo_tl.dataset.formats.voc import parse_voc
from yolo_tl.errors import AnnotationError

SRC = Path("a.xml")


def test_voc_pixels_are_one_based():
    rec = parse_voc(voc_xml("a.jpg", [("cat", 1, 1, 10, 20)]).encode(), source=SRC)
    box = rec.boxes[0]
    # VOC pixel 1 is the first pixel: the box starts at the image's left/top edge, keeps width 9
    assert (box.x1, box.y1, box.x2, box.y2) == (0.0, 0.0, 9.0, 19.0)


def test_voc_float_coordinates_and_single_object():
    rec = parse_voc(voc_xml("a.jpg", [("cat", 10.5, 2.25, 30.75, 40.0)]).encode(), source=SRC)
    assert len(rec.boxes) == 1
    assert rec.boxes[0].x1 == pytest.approx(9.5) and rec.boxes[0].x2 == pytest.approx(29.75)


def test_voc_missing_difficult_truncated_and_size():
    rec = parse_voc(voc_xml("a.jpg", [("cat", 1, 1, 5, 5)], size=None).encode(), source=SRC)
    assert rec.width is None and rec.height is None
    assert rec.boxes[0].difficult is False


def test_voc_difficult_flag():
    rec = parse_voc(voc_xml("a.jpg", [("cat", 1, 1, 5, 5, 1), ("dog", 1, 1, 5, 5, 0)]).encode(), source=SRC)
    assert [b.difficult for b in rec.boxes] == [True, False]


def test_voc_foreign_absolute_path_is_ignored():
    rec = parse_voc(voc_xml("a.jpg", [], path="/home/pi/detection/JPEGImages/a.jpg").encode(), source=SRC)
    assert rec.filename == "a.jpg"


@pytest.mark.parametrize("bad, field", [
    ("<xmin>abc</xmin>", "object[0]/bndbox/xmin"),
    ("<xmin>nan</xmin>", "object[0]/bndbox/xmin"),
    ("<xmin></xmin>", "object[0]/bndbox/xmin"),
])
def test_voc_bad_numbers_name_the_field(bad, field):
    xml = voc_xml("a.jpg", [("cat", 1, 1, 5, 5)]).replace("<xmin>1</xmin>", bad)
    with pytest.raises(AnnotationError) as exc:
        parse_voc(xml.encode(), source=SRC)
    assert exc.value.field == field and "a.xml" in str(exc.value)


def test_voc_entities_refused():
    xml = '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><annotation>&x;</annotation>'
    with pytest.raises(AnnotationError, match="DOCTYPE"):
        parse_voc(xml.encode(), source=SRC)


CATS = [{"id": 1, "name": "date", "supercategory": "date"}, {"id": 3, "name": "fig", "supercategory": "fig"}]


def _doc(categories, anns, images=((7, "x.jpg", 100, 80),)):
    return {"images": [{"id": i, "file_name": f, "width": w, "height": h} for i, f, w, h in images],
            "annotations": anns, "categories": categories}


def test_coco_ids_map_to_names_not_indices():
    doc = _doc(CATS, [{"image_id": 7, "category_id": 3, "bbox": [10, 20, 30, 40]}])
    data = parse_coco(doc, source=Path("c.json"))
    assert data.categories == {1: "date", 3: "fig"}
    box = data.images[0].boxes[0]
    # bbox is x, y, w, h from the top-left
    assert (box.label, box.x1, box.y1, box.x2, box.y2) == ("fig", 10, 20, 40, 60)


def test_coco_roboflow_root_category_dropped():
    cats = [{"id": 0, "name": "fruits", "supercategory": "none"},
            {"id": 1, "name": "date", "supercategory": "fruits"},
            {"id": 2, "name": "fig", "supercategory": "fruits"}]
    data = parse_coco(_doc(cats, [{"image_id": 7, "category_id": 1, "bbox": [1, 1, 5, 5]}]),
                      source=Path("c.json"))
    assert data.categories == {1: "date", 2: "fig"}
    assert data.dropped_root_category == "fruits"


def test_coco_id_zero_kept_when_used():
    cats = [{"id": 0, "name": "fruits", "supercategory": "none"},
            {"id": 1, "name": "date", "supercategory": "fruits"}]
    data = parse_coco(_doc(cats, [{"image_id": 7, "category_id": 0, "bbox": [1, 1, 5, 5]}]),
                      source=Path("c.json"))
    assert data.categories == {0: "fruits", 1: "date"}


def test_coco_crowd_flag_and_polygons_ignored():
    ann = {"image_id": 7, "category_id": 1, "bbox": [1.5, 2.5, 3, 4], "iscrowd": 1,
           "segmentation": [[0, 0, 50, 0, 50, 50]]}
    data = parse_coco(_doc(CATS, [ann]), source=Path("c.json"))
    box = data.images[0].boxes[0]
    assert box.crowd and (box.x1, box.y1, box.x2, box.y2) == (1.5, 2.5, 4.5, 6.5)


@pytest.mark.parametrize("ann, field", [
    ({"image_id": 99, "category_id": 1, "bbox": [1, 1, 2, 2]}, "annotations[0].image_id"),
    ({"image_id": 7, "category_id": 42, "bbox": [1, 1, 2, 2]}, "annotations[0].category_id"),
    ({"image_id": 7, "category_id": 1, "bbox": [1, 1, 2]}, "annotations[0].bbox"),
    ({"image_id": 7, "category_id": 1, "bbox": [1, "x", 2, 2]}, "annotations[0].bbox"),
    ({"image_id": 7, "category_id": 1}, "annotations[0].bbox"),
])
def test_coco_bad_annotations_name_the_field(ann, field):
    with pytest.raises(AnnotationError) as exc:
        parse_coco(_doc(CATS, [ann]), source=Path("c.json"))
    assert exc.value.field == field


def test_coco_skip_policy_collects_errors():
    seen = []
    anns = [{"image_id": 99, "category_id": 1, "bbox": [1, 1, 2, 2]},
            {"image_id": 7, "category_id": 1, "bbox": [1, 1, 2, 2]}]
    data = parse_coco(_doc(CATS, anns), source=Path("c.json"), on_error=seen.append)
    assert len(seen) == 1 and len(data.images[0].boxes) == 1


def test_coco_duplicate_image_ids_refused():
    with pytest.raises(AnnotationError, match="duplicate image id"):
        parse_coco(_doc(CATS, [], images=((1, "a.jpg", 5, 5), (1, "b.jpg", 5, 5))), source=Path("c.json"))


# --- read_coco packs annotations while parsing (formats/coco.py _AnnStore): it must read every file
# --- exactly as json.load + parse_coco does without the hook, errors and their order included.

def _plain_and_packed(tmp_path, doc_text):
    import json

    from yolo_tl.dataset.formats.coco import read_coco

    path = tmp_path / "c.json"
    path.write_text(doc_text)
    plain_errors, packed_errors = [], []
    plain = parse_coco(json.loads(doc_text), source=path, on_error=plain_errors.append)
    packed = read_coco(path, on_error=packed_errors.append)
    return plain, packed, plain_errors, packed_errors


def _as_tuples(data):
    return [(im.id, im.file_name, im.width, im.height, tuple(im.boxes)) for im in data.images]


def test_read_coco_packed_path_equals_plain_parse(tmp_path):
    import json

    anns = [
        {"id": 1, "image_id": 7, "category_id": 3, "bbox": [10, 20, 30, 40], "area": 1200,
         "segmentation": [[0, 0, 5, 0, 5, 5]], "iscrowd": 0},
        {"image_id": 7, "category_id": 1, "bbox": [1.25, 2.5, 3, 4], "iscrowd": 1},
        {"image_id": 8, "category_id": 1, "bbox": [0, 0, 1e-3, 2]},
        {"image_id": 99, "category_id": 1, "bbox": [1, 1, 2, 2]},           # unknown image
        {"image_id": 7, "category_id": 42, "bbox": [1, 1, 2, 2]},           # unknown category
        {"image_id": 7, "category_id": 1, "bbox": [1, "x", 2, 2]},          # not a number
        {"image_id": 7, "category_id": 1, "bbox": [1, 1, 2]},               # three numbers
        {"image_id": 7, "category_id": 1, "bbox": [1, True, 2, 2]},         # a bool is no number
        {"image_id": 7, "category_id": 1},                                  # no bbox
        {"image_id": "7", "category_id": 1, "bbox": [1, 1, 2, 2]},          # "7" is not 7
        {"image_id": 99, "category_id": 1, "bbox": [1, "x", 2, 2]},         # two faults: image first
        "not an object",
        {"image_id": 8, "category_id": 3, "bbox": [5, 5, 10, 10], "iscrowd": 0},
    ]
    doc = {"info": {"description": "x"}, "licenses": [{"id": 1, "name": "cc"}],
           "images": [{"id": 7, "file_name": "x.jpg", "width": 100, "height": 80, "license": 1,
                       "coco_url": "http://example.com/x.jpg"},
                      {"id": 8, "file_name": "y.jpg"},
                      {"id": 9, "file_name": "z.jpg", "width": 10, "height": 10}],
           "annotations": anns, "categories": CATS}
    text = json.dumps(doc)
    # huge numbers only JSON text can hold: an integer over float range and an overflowing exponent
    text = text.replace('"bbox": [0, 0, 0.001, 2]', '"bbox": [0, 0, 1e999, 2]', 1)
    text = text.replace('"annotations": [', '"annotations": [{"image_id": 7, "category_id": 1, "bbox": [1, '
                        + "9" * 400 + ', 2, 2]}, ', 1)
    plain, packed, plain_errors, packed_errors = _plain_and_packed(tmp_path, text)
    assert _as_tuples(packed) == _as_tuples(plain)
    assert packed.categories == plain.categories
    assert [(e.field, str(e)) for e in packed_errors] == [(e.field, str(e)) for e in plain_errors]
    assert len(plain_errors) == 11  # every bad annotation above is reported, none is lost
    assert [len(im.boxes) for im in packed.images] == [2, 1, 0]
    crowd = [b.crowd for im in packed.images for b in im.boxes]
    assert crowd == [False, True, False]


def test_read_coco_annotation_outside_annotations_list(tmp_path):
    import json

    from yolo_tl.dataset.formats.coco import read_coco

    doc = _doc(CATS, [{"image_id": 7, "category_id": 1, "bbox": [1, 1, 2, 2]}])
    doc["info"] = {"example": {"image_id": 7, "category_id": 1, "bbox": [1, 1, 2, 2]}}
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(AnnotationError, match="outside the 'annotations' list") as exc:
        read_coco(path)
    assert exc.value.path == str(path)


def test_packed_boxes_behave_like_a_tuple_of_boxes():
    from yolo_tl.dataset.annotations import Box, PackedBoxes

    boxes = (Box("a", 0.5, 1, 2, 3), Box("b", 4, 5, 6, 7, difficult=True), Box("c", 1, 1, 2, 2, crowd=True))
    packed = PackedBoxes.pack(boxes)
    assert packed == boxes and packed == list(boxes) and tuple(packed) == boxes
    assert len(packed) == 3 and packed[-1] == boxes[-1] and packed[1:] == boxes[1:]
    assert [b.difficult for b in packed] == [False, True, False] and packed[2].crowd
    assert hash(packed) == hash(boxes)
    assert packed != boxes[:2] and PackedBoxes.pack(()) == ()
    with pytest.raises(IndexError):
        packed[3]


@pytest.mark.parametrize("root, bound", [
    ("/data/voc/JPEGImages", "/data/voc"), ("/data/voc", "/data/voc"), ("/data/other/imgs", "/data/voc"),
    ("voc/JPEGImages", "voc"), ("voc/./JPEGImages/", "voc"), ("/data/voc/a/b", "/data/voc/"),
])
@pytest.mark.parametrize("name", ["a.jpg", "sub/./b.jpg", "sub//c.jpg", "d.jpg/", ".", "x y/é.JPG", "a\\b.jpg"])
def test_relative_image_path_equals_os_relpath(root, bound, name):
    """find_image computes relpath(root / name, bound) with the folder's part cached per folder."""
    import os

    from yolo_tl.dataset.formats.safe_paths import _relative_to, clear_path_caches

    clear_path_caches()
    assert _relative_to(Path(bound), Path(root), name) == os.path.relpath(Path(root) / name, Path(bound))
