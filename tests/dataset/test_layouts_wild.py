"""Layouts seen in public datasets, and the prepare summary at 80 columns.

Independent facts: the XML / JSON files the test writes, counted by the small readers below (not
yolo-tl's); the summary is checked against those counts in the text a user sees.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

import yolo_tl
from tests.helpers.builders import coco_doc, make_image, voc_xml, write_json
from yolo_tl.cli import app
from yolo_tl.errors import LayoutError

runner = CliRunner()


def _voc_folder(root: Path, ann: str, img: str, n: int = 4, classes=("cat", "dog")) -> Path:
    for i in range(n):
        make_image(root / img / f"im{i}.jpg")
        objects = [(classes[(i + j) % len(classes)], 2 + j, 2 + j, 20 + j, 20 + j) for j in range(1 + i % 3)]
        (root / ann).mkdir(parents=True, exist_ok=True)
        (root / ann / f"im{i}.xml").write_text(voc_xml(f"im{i}.jpg", objects, size=(64, 48)))
    return root


def _xml_boxes(folder: Path) -> Counter:
    return Counter(o.findtext("name") for x in folder.glob("*.xml") for o in ET.parse(x).iter("object"))


@pytest.mark.parametrize("ann", ["annots", "annotations", "Annotations", "xml", "labels"])
@pytest.mark.parametrize("img", ["images", "JPEGImages", "imgs"])
def test_common_voc_folder_names(tmp_path, ann, img):
    src = _voc_folder(tmp_path / "ds", ann, img)
    rep = yolo_tl.prepare(src, tmp_path / "out")
    assert rep.images == 4
    assert rep.boxes_per_class() == dict(_xml_boxes(src / ann))


def test_unknown_images_folder_names_what_it_saw(tmp_path):
    src = _voc_folder(tmp_path / "ds", "annots", "pics")
    with pytest.raises(LayoutError) as info:
        yolo_tl.prepare(src, tmp_path / "out")
    message = str(info.value)
    assert "annots/" in message and "pics/" in message and f"--images {src / 'pics'}" in message
    res = runner.invoke(app, ["prepare", str(src), "--out", str(tmp_path / "out")])
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code != 0 and "Traceback" not in res.output and len(lines) <= 3
    assert not (tmp_path / "out").exists()
    rep = yolo_tl.prepare(src, tmp_path / "out", images=src / "pics")  # what the message says
    assert rep.boxes_per_class() == dict(_xml_boxes(src / "annots"))


def test_nothing_found_names_the_folders(tmp_path):
    (tmp_path / "ds" / "photos_2019").mkdir(parents=True)
    (tmp_path / "ds" / "notes").mkdir()
    with pytest.raises(LayoutError, match=r"notes/, photos_2019/"):
        yolo_tl.prepare(tmp_path / "ds", tmp_path / "out")


ROBO_CATS = [{"id": 0, "name": "fruits", "supercategory": "none"},
             {"id": 1, "name": "apple", "supercategory": "fruits"},
             {"id": 2, "name": "pear", "supercategory": "fruits"}]


def _roboflow(root: Path, moved: bool) -> Path:
    """train/ valid/ test/ with _annotations.coco.json; images beside it or moved into images/."""
    for split, n in (("train", 4), ("valid", 2), ("test", 2)):
        folder = root / split
        images, anns = [], []
        for i in range(n):
            name = f"{split}_{i}.jpg"
            make_image((folder / "images" if moved else folder) / name)
            images.append((i + 1, name, 64, 48))
            for j in range(1 + i % 2):
                anns.append({"image_id": i + 1, "category_id": 1 + (i + j) % 2, "bbox": [2 + j, 3, 20, 15],
                             "area": 300})
        write_json(folder / "_annotations.coco.json", coco_doc(images, anns, ROBO_CATS))
    return root


def _json_boxes(root: Path) -> dict[str, Counter]:
    out = {}
    for js in sorted(root.glob("*/_annotations.coco.json")):
        doc = json.loads(js.read_text())
        names = {c["id"]: c["name"] for c in doc["categories"]}
        out[js.parent.name] = Counter(names[a["category_id"]] for a in doc["annotations"])
    return out


@pytest.mark.parametrize("moved", [False, True])
def test_roboflow_coco_images_beside_or_in_images(tmp_path, moved):
    src = _roboflow(tmp_path / "robo", moved)
    rep = yolo_tl.prepare(src, tmp_path / "out")
    expected = _json_boxes(src)
    assert rep.classes == ["apple", "pear"]
    for split, folder in (("train", "train"), ("val", "valid"), ("test", "test")):
        assert rep.splits[split]["per_class"] == dict(expected[folder])
    # the root category is dropped once per file, and said once
    assert [n for n in rep.notes if "root category" in n] == [
        "dropped Roboflow root category 'fruits' (3 files: test/_annotations.coco.json, "
        "train/_annotations.coco.json, valid/_annotations.coco.json)"]
    res = runner.invoke(app, ["prepare", str(src), "--out", str(tmp_path / "o2")], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    assert " ".join(res.output.split()).count("root category") == 1


def test_summary_never_cuts_a_number_at_80_columns(tmp_path):
    classes = [f"class_{c}" for c in "abcdefghij"]  # 10 classes: too many columns for 80
    root = tmp_path / "many"
    for i in range(60):
        make_image(root / "images" / f"im{i:02d}.jpg")
        objects = [(classes[(i + j) % 10], 1 + j, 1 + j, 20 + j, 20 + j) for j in range(i % 7 + 30)]
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"im{i:02d}.xml").write_text(voc_xml(f"im{i:02d}.jpg", objects, size=(64, 48)))
    res = runner.invoke(app, ["prepare", str(root), "--out", str(tmp_path / "out")], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    assert "…" not in res.output
    assert max(len(line) for line in res.output.splitlines()) <= 80
    report = json.loads((tmp_path / "out" / "prepare_report.json").read_text())
    expected = _xml_boxes(root / "annotations")
    assert report["totals"]["boxes_per_class"] == dict(expected)
    rows = {}
    for line in res.output.splitlines():  # the per-class rows: class, then a count per split and all
        cells = [c.strip() for c in re.split(r"[│┃]", line) if c.strip()]
        if cells and cells[0] in classes:
            rows[cells[0]] = [int(c) for c in cells[1:]]
    assert set(rows) == set(classes)
    splits = [s for s in ("train", "val", "test") if s in report["splits"]]
    for c in classes:
        assert rows[c] == [report["splits"][s]["per_class"][c] for s in splits] + [expected[c]]
    total = sum(expected.values())
    assert re.search(rf"│ all\s+│\s+60 │\s+{total} │", res.output), res.output
