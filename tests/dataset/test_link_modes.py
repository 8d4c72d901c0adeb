"""`prepare --link MODE`, then `analyze`: every ground-truth box reaches FiftyOne.

With ``--link symlink`` the output's images are links into the source folder; labels must be found
beside the link (the path as given), the way Ultralytics finds them, never beside the link's target.
The independent fact: the boxes in the source annotations, counted by the small VOC XML / COCO JSON
readers below (not yolo-tl's), minus the boxes the prepare report says it dropped.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

import yolo_tl
from yolo_tl.analysis.analyze import analyze
from yolo_tl.dataset.formats.yolo import label_path_for

MODES = ["hardlink", "copy", "symlink"]


def _renamed(tmp_path_factory, weights: Path, names: list[str], tag: str) -> Path:
    """The tiny 3-class checkpoint with other class names: analyze needs the data's names, and this
    test checks the ground truth, not the predictions."""
    import torch

    ckpt = torch.load(weights, map_location="cpu", weights_only=False)
    ckpt["model"].names = dict(enumerate(names))
    out = tmp_path_factory.mktemp(f"weights_{tag}") / "best.pt"
    torch.save(ckpt, out)
    return out


@pytest.fixture(scope="module")
def bccd_weights(tiny_base_weights, tmp_path_factory) -> Path:
    return _renamed(tmp_path_factory, tiny_base_weights, ["Platelets", "RBC", "WBC"], "bccd")


@pytest.fixture(scope="module")
def fruits_weights(tiny_base_weights, tmp_path_factory) -> Path:
    return _renamed(tmp_path_factory, tiny_base_weights, ["date", "fig", "hazelnut"], "fruits")


def _voc_counts(root: Path, stems: list[str]) -> dict[str, Counter]:
    """image stem -> Counter of object names, read straight from the XML."""
    out = {}
    for stem in stems:
        tree = ET.parse(root / "Annotations" / f"{stem}.xml")
        out[stem] = Counter(obj.findtext("name").strip() for obj in tree.getroot().iter("object"))
    return out


def _coco_counts(json_path: Path) -> dict[str, Counter]:
    doc = json.loads(json_path.read_text())
    cats = {c["id"]: c["name"] for c in doc["categories"]}
    files = {im["id"]: Path(im["file_name"]).stem for im in doc["images"]}
    out: dict[str, Counter] = {stem: Counter() for stem in files.values()}
    for ann in doc["annotations"]:
        out[files[ann["image_id"]]][cats[ann["category_id"]]] += 1
    return out


def _dropped(report) -> dict[str, Counter]:
    """Boxes the report says it dropped, by image stem (every example is listed: fewer than 20)."""
    out: dict[str, Counter] = {}
    total = sum(report.boxes_dropped.values())
    listed = 0
    for reason in report.boxes_dropped:
        for example in report.examples[reason]:
            where, rest = example.split(": ", 1)
            out.setdefault(Path(where).stem, Counter())[rest.split(" x1,y1")[0]] += 1
            listed += 1
    assert listed == total, "every dropped box must be listed for this count"
    return out


def _fiftyone_counts(name: str) -> dict[str, Counter]:
    import fiftyone as fo

    ds = fo.load_dataset(name)
    paths, labels = ds.values("filepath"), ds.values("ground_truth.detections.label")
    counts = {Path(p).stem: Counter(ls or []) for p, ls in zip(paths, labels)}
    ds.delete()
    return counts


@pytest.mark.parametrize("mode", MODES)
def test_voc_ground_truth_reaches_fiftyone(bccd_root, bccd_weights, tmp_path, mode):
    out = tmp_path / "yolo"
    report = yolo_tl.prepare(bccd_root, out, link=mode)
    image = next((out / "images" / "val").iterdir())
    assert image.is_symlink() == (mode == "symlink")
    val = (bccd_root / "ImageSets" / "Main" / "val.txt").read_text().split()
    expected = _voc_counts(bccd_root, val)
    for stem, lost in _dropped(report).items():
        if stem in expected:
            expected[stem] -= lost
    rep = analyze(out / "data.yaml", weights=bccd_weights, split="val", name=f"test-link-voc-{mode}",
                  imgsz=64, batch=16, compare_ultralytics=False)
    got = _fiftyone_counts(rep.name)
    assert got == expected
    assert rep.totals.gt_boxes == sum(sum(c.values()) for c in expected.values()) > 1000


@pytest.mark.parametrize("mode", MODES)
def test_coco_ground_truth_reaches_fiftyone(fruits_json, fruits_weights, tmp_path, mode):
    out = tmp_path / "yolo"
    report = yolo_tl.prepare(fruits_json, out, link=mode, split="0.5,0.5")
    expected = _coco_counts(fruits_json)
    assert sum(sum(c.values()) for c in expected.values()) == 165  # SOURCE.md
    assert report.boxes_dropped == {}
    val = {p.stem for p in (out / "images" / "val").iterdir()}
    rep = analyze(out / "data.yaml", weights=fruits_weights, split="val", name=f"test-link-coco-{mode}",
                  imgsz=64, batch=16, compare_ultralytics=False)
    assert _fiftyone_counts(rep.name) == {stem: expected[stem] for stem in val}


def test_label_path_is_ultralytics_rule_on_the_path_as_given(tmp_path):
    from ultralytics.data.utils import img2label_paths

    cases = ["/d/images/val/a.jpg", "/d/images/x/images/b.png", "/d/imgs/c.jpg", "/d/images/v/a.b.jpeg",
             str(tmp_path / "images" / "val" / "link.jpg")]
    for case in cases:
        assert str(label_path_for(case)) == img2label_paths([case])[0]
    # a symlinked image: the label is beside the link, not beside its target
    target = tmp_path / "src" / "images" / "t.jpg"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"x")
    link = tmp_path / "out" / "images" / "val" / "t.jpg"
    link.parent.mkdir(parents=True)
    link.symlink_to(target)
    assert label_path_for(link) == tmp_path / "out" / "labels" / "val" / "t.txt"
