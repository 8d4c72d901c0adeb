"""prepare on small generated datasets: layouts, classes, splits, boxes, sizes, linking, output."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import yaml

import yolo_tl
from tests.helpers.builders import (
    coco_doc,
    make_image,
    make_voc_devkit,
    read_labels,
    voc_xml,
    write_json,
)
from yolo_tl.errors import ImageError, LayoutError, OutputError


def _tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def _voc_items(n=10):
    return [(f"img{i:02d}", [("cat", 1, 1, 20, 20), ("dog", 30, 10, 60, 40)]) for i in range(n)]


# -- layouts ------------------------------------------------------------------------------------

def test_voc_devkit_with_imagesets(tmp_path):
    src = make_voc_devkit(tmp_path / "voc", _voc_items(6),
                          splits={"train": ["img00", "img01", "img02"], "val": ["img03", "img04"],
                                  "test": ["img05"]})
    rep = yolo_tl.prepare(src, tmp_path / "out")
    assert rep.format == "voc" and "ImageSets" in rep.layout
    assert {k: v["images"] for k, v in rep.splits.items()} == {"train": 3, "val": 2, "test": 1}
    assert sorted(p.name for p in (tmp_path / "out/images/val").iterdir()) == ["img03.jpg", "img04.jpg"]


def test_voc_annotations_images_any_case(tmp_path):
    src = tmp_path / "src"
    for i in range(4):
        make_image(src / "Images" / f"a{i}.png", 64, 48)
        (src / "ANNOTATIONS").mkdir(parents=True, exist_ok=True)
        (src / "ANNOTATIONS" / f"a{i}.xml").write_text(voc_xml(f"a{i}.png", [("x", 1, 1, 10, 10)], size=(64, 48)))
    rep = yolo_tl.prepare(src, tmp_path / "out")
    assert rep.images == 4 and rep.boxes == 4


def test_voc_xml_folder_with_images_option(tmp_path):
    for i in range(3):
        make_image(tmp_path / "pics" / f"p{i}.jpg")
        (tmp_path / "xml").mkdir(exist_ok=True)
        (tmp_path / "xml" / f"p{i}.xml").write_text(voc_xml(f"p{i}.jpg", [("x", 1, 1, 10, 10)], size=(64, 48)))
    rep = yolo_tl.prepare(tmp_path / "xml", tmp_path / "out", images=tmp_path / "pics")
    assert rep.images == 3


def test_voc_xml_beside_images_in_subfolders(tmp_path):
    for sub in ("a", "b"):
        make_image(tmp_path / "src" / sub / "same.jpg")
        (tmp_path / "src" / sub / "same.xml").write_text(voc_xml("same.jpg", [("x", 1, 1, 10, 10)], size=(64, 48)))
    rep = yolo_tl.prepare(tmp_path / "src", tmp_path / "out", split="0.5,0.5")
    # the two same-named images both survive, under distinct names
    names = sorted(p.name for p in (tmp_path / "out/images").rglob("*.jpg"))
    assert len(names) == 2 and len(set(Path(n).stem for n in names)) == 2
    assert len(rep.renamed) == 1


def test_coco_json_with_images_beside_or_in_images_folder(tmp_path):
    cats = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    imgs = [(i, f"{i}.jpg", 64, 48) for i in range(5)]
    anns = [{"image_id": i, "category_id": 1 + i % 2, "bbox": [2, 2, 10, 10]} for i in range(5)]
    for i in range(5):
        make_image(tmp_path / "ds" / "images" / f"{i}.jpg")
    js = write_json(tmp_path / "ds" / "ann.json", coco_doc(imgs, anns, cats))
    rep = yolo_tl.prepare(js, tmp_path / "out")
    assert rep.images == 5 and rep.classes == ["a", "b"]


def test_coco_instances_folder_and_given_splits(tmp_path):
    cats = [{"id": 5, "name": "z"}, {"id": 2, "name": "y"}]
    for split, ids in (("train2017", range(4)), ("val2017", range(4, 6))):
        imgs = [(i, f"{i}.jpg", 64, 48) for i in ids]
        anns = [{"image_id": i, "category_id": 5, "bbox": [1, 1, 5, 5]} for i in ids]
        write_json(tmp_path / "coco" / "annotations" / f"instances_{split}.json", coco_doc(imgs, anns, cats))
        for i in ids:
            make_image(tmp_path / "coco" / split / f"{i}.jpg")
    rep = yolo_tl.prepare(tmp_path / "coco", tmp_path / "out")
    assert {k: v["images"] for k, v in rep.splits.items()} == {"train": 4, "val": 2}
    # names in order of category id: y (2) before z (5); label class index of z is 1
    assert rep.classes == ["y", "z"]
    assert read_labels(tmp_path / "out/labels/train/0.txt")[0][0] == 1


def test_roboflow_export_layout(tmp_path):
    cats = [{"id": 0, "name": "fruit", "supercategory": "none"},
            {"id": 1, "name": "apple", "supercategory": "fruit"},
            {"id": 2, "name": "pear", "supercategory": "fruit"}]
    for folder, ids in (("train", range(3)), ("valid", range(3, 5)), ("test", range(5, 6))):
        imgs = [(i, f"r{i}.jpg", 64, 48) for i in ids]
        anns = [{"image_id": i, "category_id": 2, "bbox": [1, 1, 5, 5]} for i in ids]
        write_json(tmp_path / "rf" / folder / "_annotations.coco.json", coco_doc(imgs, anns, cats))
        for i in ids:
            make_image(tmp_path / "rf" / folder / f"r{i}.jpg")
    rep = yolo_tl.prepare(tmp_path / "rf", tmp_path / "out")
    assert rep.classes == ["apple", "pear"]  # root category 'fruit' dropped
    assert {k: v["images"] for k, v in rep.splits.items()} == {"train": 3, "val": 2, "test": 1}
    data = yaml.safe_load((tmp_path / "out/data.yaml").read_text())
    assert data["names"] == {0: "apple", 1: "pear"} and data["val"] == "images/val"


def test_format_override_and_unknown_layout(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LayoutError, match="no VOC XML or COCO JSON"):
        yolo_tl.prepare(tmp_path / "empty", tmp_path / "out")


# -- classes ------------------------------------------------------------------------------------

def test_classes_option_picks_orders_and_counts_drops(tmp_path):
    src = make_voc_devkit(tmp_path / "voc", _voc_items(5))
    rep = yolo_tl.prepare(src, tmp_path / "out", classes=["dog"])
    assert rep.classes == ["dog"] and rep.boxes == 5
    assert rep.boxes_dropped["class_not_selected"] == 5
    rep2 = yolo_tl.prepare(src, tmp_path / "out2", classes=["dog", "cat"])
    lines = read_labels(next((tmp_path / "out2/labels").rglob("img00.txt")))
    assert sorted(line[0] for line in lines) == [0, 1]
    assert rep2.boxes_per_class() == {"dog": 5, "cat": 5}


# -- splits -------------------------------------------------------------------------------------

def _label_bytes(out: Path) -> dict:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.txt"))}


def test_random_split_seeded_and_byte_identical(tmp_path):
    src = make_voc_devkit(tmp_path / "voc", _voc_items(20))
    a = yolo_tl.prepare(src, tmp_path / "a", split="0.7,0.2,0.1", seed=3)
    b = yolo_tl.prepare(src, tmp_path / "b", split="0.7,0.2,0.1", seed=3)
    yolo_tl.prepare(src, tmp_path / "c", split="0.7,0.2,0.1", seed=4)
    assert {k: v["images"] for k, v in a.splits.items()} == {"train": 14, "val": 4, "test": 2}
    assert _label_bytes(tmp_path / "a") == _label_bytes(tmp_path / "b")
    da = (tmp_path / "a/data.yaml").read_text().replace(str(tmp_path / "a"), "X")
    db = (tmp_path / "b/data.yaml").read_text().replace(str(tmp_path / "b"), "X")
    assert da == db
    assert _label_bytes(tmp_path / "a") != _label_bytes(tmp_path / "c")
    assert a.to_dict()["splits"] == b.to_dict()["splits"]


def test_valid_and_validation_become_val(tmp_path):
    src = make_voc_devkit(tmp_path / "voc", _voc_items(4),
                          splits={"train": ["img00", "img01"], "validation": ["img02", "img03"]})
    rep = yolo_tl.prepare(src, tmp_path / "out")
    assert set(rep.splits) == {"train", "val"}


def test_missing_val_is_carved_from_train(tmp_path):
    src = make_voc_devkit(tmp_path / "voc", _voc_items(10), splits={"train": [f"img{i:02d}" for i in range(10)]})
    rep = yolo_tl.prepare(src, tmp_path / "out")
    assert rep.splits["val"]["images"] == 2 and rep.splits["train"]["images"] == 8


@pytest.mark.parametrize("spec", ["0.5,0.4", "1,0", "a,b", "0.5,0.3,0.1,0.1"])
def test_bad_split_spec(tmp_path, spec):
    src = make_voc_devkit(tmp_path / "voc", _voc_items(2))
    with pytest.raises(LayoutError, match="--split"):
        yolo_tl.prepare(src, tmp_path / "out", split=spec)


# -- boxes --------------------------------------------------------------------------------------

def test_clip_zero_area_difficult_counted(tmp_path):
    objs = [("a", 1, 1, 10, 10), ("a", 50, 40, 70, 60), ("a", 5, 5, 5, 5), ("a", 1, 1, 9, 9, 1),
            ("a", 100, 100, 120, 120), ("a", 20, 20, 10, 10), ("a", 1, 1, 65, 49)]
    src = make_voc_devkit(tmp_path / "voc", [("one", objs)], splits={"train": ["one"]})
    rep = yolo_tl.prepare(src, tmp_path / "out")
    assert rep.boxes == 3
    assert dict(rep.boxes_dropped) == {"zero_area": 1, "difficult": 1, "outside_image": 1, "inverted": 1}
    assert rep.boxes_clipped == 1  # (50,40,70,60); VOC's common xmax = width + 1 lands on the edge
    assert (0, 0.5, 0.5, 1.0, 1.0) in read_labels(tmp_path / "out/labels/train/one.txt")
    for _cls, cx, cy, w, h in read_labels(tmp_path / "out/labels/train/one.txt"):
        # six-decimal rounding may move an edge by 5e-7, never more
        assert -1e-6 <= cx - w / 2 and cx + w / 2 <= 1 + 1e-6 and -1e-6 <= cy - h / 2 and cy + h / 2 <= 1 + 1e-6
    rep2 = yolo_tl.prepare(src, tmp_path / "out2", include_difficult=True)
    assert rep2.boxes == 4


def test_crowd_skipped(tmp_path):
    make_image(tmp_path / "c" / "0.jpg")
    anns = [{"image_id": 0, "category_id": 1, "bbox": [1, 1, 5, 5], "iscrowd": 1},
            {"image_id": 0, "category_id": 1, "bbox": [1, 1, 5, 5]}]
    js = write_json(tmp_path / "c" / "a.json", coco_doc([(0, "0.jpg", 64, 48)], anns, [{"id": 1, "name": "k"}]))
    rep = yolo_tl.prepare(js, tmp_path / "out", split="0.5,0.5")
    assert rep.boxes == 1 and rep.boxes_dropped["crowd"] == 1


def test_background_images_get_empty_label_files(tmp_path):
    src = make_voc_devkit(tmp_path / "voc", [("bg", []), ("fg", [("a", 1, 1, 9, 9)])],
                          splits={"train": ["bg"], "val": ["fg"]})
    rep = yolo_tl.prepare(src, tmp_path / "out")
    assert (tmp_path / "out/labels/train/bg.txt").read_text() == ""
    assert rep.splits["train"]["backgrounds"] == 1


# -- sizes --------------------------------------------------------------------------------------

def test_size_from_header_when_missing(tmp_path):
    make_image(tmp_path / "s" / "a.jpg", 200, 100)
    (tmp_path / "s" / "a.xml").write_text(voc_xml("a.jpg", [("x", 1, 1, 101, 51)], size=None))
    rep = yolo_tl.prepare(tmp_path / "s", tmp_path / "out", split="0.5,0.5")
    line = read_labels(next((tmp_path / "out/labels").rglob("a.txt")))[0]
    assert line[1:] == pytest.approx((0.25, 0.25, 0.5, 0.5))
    assert rep.size_mismatches == []


def test_exif_rotated_image_real_size_wins(tmp_path):
    # stored 200x100, EXIF orientation 6 (rotate 90): Ultralytics sees 100x200. With --exif keep the
    # box stays as written and is normalised by the shown size (tests/dataset/test_exif.py: the other modes)
    make_image(tmp_path / "s" / "r.jpg", 200, 100, orientation=6)
    (tmp_path / "s" / "r.xml").write_text(voc_xml("r.jpg", [("x", 1, 1, 51, 101)], size=(200, 100)))
    rep = yolo_tl.prepare(tmp_path / "s", tmp_path / "out", split="0.5,0.5", exif="keep")
    (m,) = rep.size_mismatches
    assert m["actual"] == [100, 200] and m["annotated"] == [200, 100] and m["exif_rotated"]
    line = read_labels(next((tmp_path / "out/labels").rglob("r.txt")))[0]
    assert line[1:] == pytest.approx((0.25, 0.25, 0.5, 0.5))


# -- linking and output -------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["hardlink", "copy", "symlink"])
def test_link_modes(tmp_path, mode):
    src = make_voc_devkit(tmp_path / "voc", _voc_items(2), splits={"train": ["img00"], "val": ["img01"]})
    yolo_tl.prepare(src, tmp_path / "out", link=mode)
    out_img = tmp_path / "out/images/train/img00.jpg"
    src_img = src / "JPEGImages/img00.jpg"
    assert out_img.read_bytes() == src_img.read_bytes()
    assert out_img.is_symlink() == (mode == "symlink")
    if mode == "hardlink":
        assert os.stat(out_img).st_ino == os.stat(src_img).st_ino
    if mode == "copy":
        assert os.stat(out_img).st_ino != os.stat(src_img).st_ino
    assert not (tmp_path / "out/images").is_symlink()


def test_nothing_written_into_source_and_out_inside_source_refused(tmp_path):
    src = make_voc_devkit(tmp_path / "voc", _voc_items(3), splits={"train": ["img00", "img01"], "val": ["img02"]})
    before = _tree_hash(src)
    yolo_tl.prepare(src, tmp_path / "out")
    with pytest.raises(OutputError, match="inside the source"):
        yolo_tl.prepare(src, src / "yolo")
    with pytest.raises(OutputError, match="contains the source"):
        yolo_tl.prepare(src, tmp_path, overwrite=True)
    assert _tree_hash(src) == before


def test_overwrite_rules_and_stale_cache_removed(tmp_path):
    src = make_voc_devkit(tmp_path / "voc", _voc_items(3), splits={"train": ["img00", "img01"], "val": ["img02"]})
    out = tmp_path / "out"
    yolo_tl.prepare(src, out)
    (out / "labels" / "train.cache").write_bytes(b"stale")
    with pytest.raises(OutputError, match="--overwrite"):
        yolo_tl.prepare(src, out)
    yolo_tl.prepare(src, out, overwrite=True, classes=["dog"])
    assert not (out / "labels" / "train.cache").exists()
    assert read_labels(out / "labels/train/img00.txt")[0][0] == 0  # re-run wrote, never appended
    assert len(read_labels(out / "labels/train/img00.txt")) == 1
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("x")
    with pytest.raises(OutputError, match="not made by yolo-tl"):
        yolo_tl.prepare(src, foreign, overwrite=True)
    assert (foreign / "precious.txt").read_text() == "x"
    assert not [p for p in tmp_path.iterdir() if ".yolo-tl-" in p.name]


def test_error_leaves_no_output(tmp_path):
    src = make_voc_devkit(tmp_path / "voc", _voc_items(3))
    (src / "JPEGImages/img01.jpg").unlink()
    with pytest.raises(ImageError, match="img01"):
        yolo_tl.prepare(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if ".yolo-tl-" in p.name]
    rep = yolo_tl.prepare(src, tmp_path / "out", on_error="skip")
    assert rep.images == 2 and len(rep.skipped) == 1 and "img01" in rep.skipped[0]["reason"]
    saved = json.loads((tmp_path / "out/prepare_report.json").read_text())
    assert saved["skipped"] == rep.skipped


def test_filename_escaping_root_is_an_error(tmp_path):
    make_image(tmp_path / "secret.jpg")
    (tmp_path / "src").mkdir()
    make_image(tmp_path / "src" / "ok.jpg")
    (tmp_path / "src" / "ok.xml").write_text(voc_xml("../secret.jpg", [("x", 1, 1, 5, 5)], size=(64, 48)))
    with pytest.raises(ImageError, match="escapes"):
        yolo_tl.prepare(tmp_path / "src", tmp_path / "out", split="0.5,0.5")


def test_single_image_still_gives_a_trainable_data_yaml(tmp_path):
    from ultralytics.data.utils import check_det_dataset

    src = make_voc_devkit(tmp_path / "voc", _voc_items(1))
    rep = yolo_tl.prepare(src, tmp_path / "out")
    assert set(rep.splits) == {"train"} and any("val split" in n for n in rep.notes)
    info = check_det_dataset(str(tmp_path / "out/data.yaml"))
    assert Path(info["val"]) == tmp_path / "out/images/train"
