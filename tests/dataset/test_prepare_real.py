"""prepare on the real datasets in ../shared, checked against SOURCE.md's counts, FiftyOne's own
importers and Ultralytics' own dataset checks (independent readers, not our own output)."""

from __future__ import annotations

from pathlib import Path

import pytest

import yolo_tl


@pytest.fixture(scope="module")
def bccd(bccd_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("bccd") / "yolo"
    return yolo_tl.prepare(bccd_root, out), out


@pytest.fixture(scope="module")
def fruits(fruits_json, tmp_path_factory):
    out = tmp_path_factory.mktemp("fruits") / "yolo"
    return yolo_tl.prepare(fruits_json, out), out


def test_bccd_counts_match_source_md(bccd):
    rep, _ = bccd
    # SOURCE.md: ImageSets/Main 205/87/72; 4888 boxes, 2 zero-area (00338, 00343); RBC 4155, WBC 372, Platelets 361
    assert {k: v["images"] for k, v in rep.splits.items()} == {"train": 205, "val": 87, "test": 72}
    assert rep.boxes == 4888 - 2
    assert dict(rep.boxes_dropped) == {"zero_area": 2}
    assert sorted(e.split(":")[0] for e in rep.examples["zero_area"]) == ["BloodImage_00338.xml",
                                                                          "BloodImage_00343.xml"]
    assert rep.boxes_per_class() == {"RBC": 4155 - 2, "WBC": 372, "Platelets": 361}
    assert rep.boxes_clipped == 0 and rep.size_mismatches == []


def test_fruits_counts_match_source_md(fruits):
    rep, out = fruits
    # SOURCE.md: 165 boxes, category ids 1=date, 2=fig, 3=hazelnut; date 71, hazelnut 53, fig 41; no split given
    assert rep.classes == ["date", "fig", "hazelnut"]
    assert rep.boxes == 165 and rep.images == 18
    assert rep.boxes_per_class() == {"date": 71, "fig": 41, "hazelnut": 53}
    assert set(rep.splits) == {"train", "val"} and rep.split_origin.startswith("random")


def test_ultralytics_accepts_data_yaml(bccd, fruits):
    from ultralytics.data.utils import check_det_dataset

    for rep, out in (bccd, fruits):
        info = check_det_dataset(str(out / "data.yaml"))
        assert info["nc"] == len(rep.classes)
        assert [info["names"][i] for i in range(info["nc"])] == rep.classes
        assert Path(info["val"]).is_dir()


def _fo_boxes(dataset, field):
    """{file name: sorted [(label, x1, y1, x2, y2) in pixels]} from a FiftyOne dataset."""
    dataset.compute_metadata()
    result = {}
    for sample in dataset:
        w, h = sample.metadata.width, sample.metadata.height
        dets = sample[field].detections if sample[field] is not None else []
        boxes = []
        for d in dets:
            x, y, bw, bh = d.bounding_box
            boxes.append((d.label, x * w, y * h, (x + bw) * w, (y + bh) * h))
        result[Path(sample.filepath).name] = sorted(boxes)
    return result


def _assert_same_boxes(expected, actual, tol):
    """Same images, same number of boxes, and the boxes agree one to one within ``tol`` pixels."""
    assert set(actual) == set(expected)
    for name, boxes in expected.items():
        def key(b):
            return (b[0], *(round(v) for v in b[1:]))

        got = sorted(actual[name], key=key)
        assert len(got) == len(boxes), name
        for a, b in zip(got, sorted(boxes, key=key)):
            assert a[0] == b[0], name
            assert max(abs(u - v) for u, v in zip(a[1:], b[1:])) <= tol, (name, a, b)


@pytest.mark.slow
def test_fiftyone_importers_agree_with_our_output(bccd, fruits, bccd_root, fruits_json):
    import fiftyone as fo

    made = []
    try:
        src = fo.Dataset.from_dir(dataset_type=fo.types.VOCDetectionDataset,
                                  data_path=str(bccd_root / "JPEGImages"),
                                  labels_path=str(bccd_root / "Annotations"))
        made.append(src)
        ours = fo.Dataset()
        made.append(ours)
        for split in ("train", "val", "test"):
            ours.add_dir(dataset_dir=str(bccd[1]), dataset_type=fo.types.YOLOv5Dataset, split=split,
                        yaml_path=str(bccd[1] / "data.yaml"))
        expected = _fo_boxes(src, "ground_truth")
        # FiftyOne's VOC importer ignores VOC's 1-based pixels (x = xmin / width), we shift by one
        # pixel (see boxes.voc_to_xyxy), and it keeps the two zero-area boxes we drop.
        # So its boxes sit exactly one pixel right and down of ours: within 1 px.
        expected = {k: [(b[0], *(v - 1.0 for v in b[1:])) for b in v if b[3] > b[1]]
                    for k, v in expected.items()}
        _assert_same_boxes(expected, _fo_boxes(ours, "ground_truth"), tol=0.01)

        coco = fo.Dataset.from_dir(dataset_type=fo.types.COCODetectionDataset,
                                   data_path=str(fruits_json.parent / "images"),
                                   labels_path=str(fruits_json), label_types=["detections"])
        made.append(coco)
        ours_c = fo.Dataset()
        made.append(ours_c)
        for split in ("train", "val"):
            ours_c.add_dir(dataset_dir=str(fruits[1]), dataset_type=fo.types.YOLOv5Dataset, split=split,
                          yaml_path=str(fruits[1] / "data.yaml"))
        _assert_same_boxes(_fo_boxes(coco, "ground_truth"), _fo_boxes(ours_c, "ground_truth"), tol=0.01)
    finally:
        for ds in made:
            ds.delete()


@pytest.mark.slow
def test_one_epoch_training_finds_every_label(bccd, tmp_path):
    from ultralytics import YOLO

    rep, out = bccd
    seen = {}

    def grab(trainer):
        labels = trainer.train_loader.dataset.labels
        seen["images"] = len(labels)
        seen["boxes"] = sum(len(lb["cls"]) for lb in labels)

    model = YOLO("yolov8n.yaml")
    model.add_callback("on_train_start", grab)
    model.train(data=str(out / "data.yaml"), epochs=1, imgsz=64, batch=32, workers=0, device="cpu",
                project=str(tmp_path), name="r", plots=False, val=False, verbose=False, amp=False)
    assert seen == {"images": 205, "boxes": rep.splits["train"]["boxes"]}
