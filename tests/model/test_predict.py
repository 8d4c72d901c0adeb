"""predict: image / folder / glob sources; txt with confidences, annotated images, predictions.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from yolo_tl.cli import app
from yolo_tl.errors import ImageError
from yolo_tl.model.predict import predict

CONF = 0.002  # a one-epoch model is unsure of everything; keep its few top boxes


def test_predict_folder_matches_ultralytics(tiny_yolo_data, tiny_base_weights, tmp_path):
    from ultralytics import YOLO

    folder = tiny_yolo_data.parent / "images" / "val"
    report = predict(tiny_base_weights, folder, out=tmp_path / "out", conf=CONF, imgsz=64)
    images = sorted(folder.glob("*.jpg"))
    assert report.images == len(images)
    assert sorted(p.name for p in (tmp_path / "out" / "images").iterdir()) == [p.name for p in images]
    data = json.loads(report.predictions_json.read_text())
    theirs = YOLO(str(tiny_base_weights)).predict([str(p) for p in images], conf=CONF, imgsz=64, verbose=False)
    total = 0
    for record, result in zip(data["images"], theirs):
        assert Path(record["image"]).name == Path(result.path).name
        assert [d["confidence"] for d in record["detections"]] == [round(float(c), 6) for c in result.boxes.conf]
        assert [d["class_id"] for d in record["detections"]] == [int(c) for c in result.boxes.cls]
        lines = Path(record["labels"]).read_text().splitlines()
        assert len(lines) == len(result.boxes)
        for line, conf in zip(lines, result.boxes.conf.tolist()):
            fields = line.split()
            assert len(fields) == 6 and float(fields[5]) == pytest.approx(conf, abs=1e-6)
            assert float(fields[5]) >= CONF
        total += len(result.boxes)
    assert total > 0, "the test needs some detections"
    assert report.boxes == total == sum(data["counts"].values())
    assert data["counts"] == report.counts


def test_predict_image_and_glob_via_cli(tiny_yolo_data, tiny_base_weights, tmp_path):
    one = tiny_yolo_data.parent / "images" / "train" / "train_0.jpg"
    result = CliRunner().invoke(app, ["predict", str(tiny_base_weights), str(one), "--out", str(tmp_path / "a"),
                                      "--conf", str(CONF), "--imgsz", "64"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a" / "labels" / "train_0.txt").is_file()
    assert (tmp_path / "a" / "images" / "train_0.jpg").is_file()
    pattern = str(tiny_yolo_data.parent / "images" / "*" / "*_1.jpg")
    result = CliRunner().invoke(app, ["predict", str(tiny_base_weights), pattern, "--out", str(tmp_path / "b"),
                                      "--conf", str(CONF), "--imgsz", "64", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["images"] == 2  # train_1.jpg and val_1.jpg


@pytest.mark.parametrize("source", ["missing.jpg", "nothing/*.png"])
def test_predict_bad_source(source, tiny_base_weights, tmp_path):
    with pytest.raises(ImageError):
        predict(tiny_base_weights, tmp_path / source, out=tmp_path / "out")
    result = CliRunner().invoke(app, ["predict", str(tiny_base_weights), str(tmp_path / source)])
    assert result.exit_code == 1 and "Traceback" not in result.output
