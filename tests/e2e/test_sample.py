"""The bundled sample: byte-identical regeneration, size, and VOC/COCO forms that agree.

Facts checked independently of our readers: the XML and JSON are parsed here with the standard
library, image sizes are read from the JPEGs with Pillow, and the VOC form is read by Ultralytics'
own VOC converter formula (x = (xmin + xmax) / 2 - 1, w = xmax - xmin).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from yolo_tl.demo.sample import (
    REPO_SAMPLE_DIR,
    SOURCE_CLASSES,
    TARGET_CLASSES,
    file_hashes,
    generate,
    generate_sample,
    generate_source_task,
)

SAMPLE = REPO_SAMPLE_DIR
VOC = SAMPLE / "voc"
COCO_JSON = SAMPLE / "coco" / "annotations.json"


def _voc_boxes(xml: Path):
    root = ET.parse(xml).getroot()
    size = (int(root.findtext("size/width")), int(root.findtext("size/height")))
    boxes = []
    for obj in root.iter("object"):
        b = obj.find("bndbox")
        xmin, ymin, xmax, ymax = (float(b.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        boxes.append((obj.findtext("name"), xmin - 1, ymin - 1, xmax - 1, ymax - 1))
    return root.findtext("filename"), size, sorted(boxes)


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    generate_sample(out)
    return out


def test_committed_sample_is_there_and_small():
    assert VOC.is_dir() and COCO_JSON.is_file(), "datasets/sample is missing: python -m yolo_tl.demo.sample"
    total = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert total < 3.5 * 1024 * 1024, f"sample is {total / 2**20:.1f} MiB"


def test_regeneration_is_byte_identical(regenerated: Path):
    for sub in ("voc", "coco"):
        committed, fresh = file_hashes(SAMPLE / sub), file_hashes(regenerated / sub)
        assert sorted(committed) == sorted(fresh), f"{sub}: different file lists"
        differing = [k for k in committed if committed[k] != fresh[k]]
        assert not differing, f"{sub}: {len(differing)} files differ, e.g. {differing[:3]}"


def test_voc_form_matches_images_with_enough_boxes_backgrounds_and_disjoint_splits():
    xmls = sorted((VOC / "Annotations").glob("*.xml"))
    jpgs = sorted((VOC / "JPEGImages").glob("*.jpg"))
    assert len(xmls) == len(jpgs) >= 150
    assert [p.stem for p in xmls] == [p.stem for p in jpgs]
    per_class, empty = Counter(), 0
    for xml in xmls:
        filename, size, boxes = _voc_boxes(xml)
        with Image.open(VOC / "JPEGImages" / filename) as im:
            assert im.format == "JPEG" and im.size == size, xml.name
            assert 256 <= min(im.size) and max(im.size) <= 320
        empty += not boxes
        for label, x1, y1, x2, y2 in boxes:
            per_class[label] += 1
            # inside the image and not degenerate (Ultralytics drops labels outside [0, 1])
            assert 0 <= x1 < x2 <= size[0] and 0 <= y1 < y2 <= size[1], (xml.name, label)
            assert min(x2 - x1, y2 - y1) >= 8
    assert set(per_class) == set(TARGET_CLASSES)
    assert min(per_class.values()) >= 60, per_class
    assert 5 <= empty <= len(xmls) // 5
    splits = {s: (VOC / "ImageSets/Main" / f"{s}.txt").read_text().split() for s in ("train", "val")}
    assert not set(splits["train"]) & set(splits["val"])
    assert sorted(splits["train"] + splits["val"]) == [p.stem for p in xmls]


def test_coco_form_gives_the_same_boxes_as_voc():
    doc = json.loads(COCO_JSON.read_text())
    cats = {c["id"]: c["name"] for c in doc["categories"]}
    assert sorted(cats) == list(range(1, len(TARGET_CLASSES) + 1))  # 1-based, as COCO does
    by_image = {im["id"]: [] for im in doc["images"]}
    for a in doc["annotations"]:
        x, y, w, h = a["bbox"]
        assert a["iscrowd"] == 0 and a["area"] == w * h
        by_image[a["image_id"]].append((cats[a["category_id"]], x, y, x + w, y + h))
    assert len(doc["images"]) == len(list((VOC / "Annotations").glob("*.xml")))
    for im in doc["images"]:
        filename, size, voc_boxes = _voc_boxes(VOC / "Annotations" / (Path(im["file_name"]).stem + ".xml"))
        assert filename == im["file_name"] and size == (im["width"], im["height"])
        assert sorted(by_image[im["id"]]) == voc_boxes, im["file_name"]


def test_source_task_has_other_classes_and_is_deterministic(tmp_path: Path):
    assert not set(SOURCE_CLASSES) & set(TARGET_CLASSES)
    a = generate_source_task(tmp_path / "a", n_images=12)
    generate_source_task(tmp_path / "b", n_images=12)
    assert a.coco_json is None and set(a.per_class) == set(SOURCE_CLASSES)
    assert file_hashes(tmp_path / "a") == file_hashes(tmp_path / "b")
    names = {o.findtext("name") for x in (tmp_path / "a/voc/Annotations").glob("*.xml")
             for o in ET.parse(x).getroot().iter("object")}
    assert names and names <= set(SOURCE_CLASSES)


def test_generate_refuses_to_overwrite_and_unknown_classes(tmp_path: Path):
    from yolo_tl.errors import OutputError

    generate(tmp_path, n_images=2)
    with pytest.raises(OutputError, match="already exists"):
        generate(tmp_path, n_images=2)
    with pytest.raises(OutputError, match="no drawing for class 'dog'"):
        generate(tmp_path / "x", classes=("dog",), n_images=1)


def test_cli_sample_writes_where_asked(tmp_path: Path):
    from typer.testing import CliRunner

    from yolo_tl.cli import app

    res = CliRunner().invoke(app, ["sample", "--source-task", "--images", "6", "--out", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["images"] == len(list((tmp_path / "voc/JPEGImages").glob("*.jpg"))) == 6
