"""`yolo-tl analyze` on ../shared BCCD prepared by yolo_tl.prepare, with a tiny detector trained here.

Checks against independent facts: image files on disk, label lines, SOURCE.md counts, the VOC XML
(for ground-truth geometry), Ultralytics' own predictor and validator, and FiftyOne's database.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from yolo_tl.analysis import collect as fio
from yolo_tl.analysis.analyze import analyze
from yolo_tl.analysis.store.our_datasets import TAG, delete_dataset, list_datasets
from yolo_tl.cli import app
from yolo_tl.errors import DatabaseError, LayoutError, OutputError, WeightsError

runner = CliRunner()


def _split_dir(data_yaml: Path, kind: str) -> Path:
    return data_yaml.parent / kind / "val"


def _db_doc_counts(name: str) -> dict:
    """Documents that belong to dataset ``name`` (other processes may share the database)."""
    import fiftyone.core.odm.database as fod

    db = fod.get_db_conn()
    docs = list(db.datasets.find({"name": name}))
    ids = [d["_id"] for d in docs]
    counts = {"datasets": len(docs)}
    for d in docs:
        counts["samples"] = counts.get("samples", 0) + db[d["sample_collection_name"]].count_documents({})
    names = db.list_collection_names()
    for coll in ("views", "runs", "workspaces"):
        if coll in names:
            counts[coll] = db[coll].count_documents({"_dataset_id": {"$in": ids}})
    referenced = {d.get("sample_collection_name") for d in db.datasets.find({}, {"sample_collection_name": 1})}
    counts["orphan_sample_collections"] = len([c for c in names if c.startswith("samples.") and c not in referenced])
    return counts


def test_samples_boxes_and_predictions_add_up(bccd_analysis, bccd_yolo, bccd_detector):
    import fiftyone as fo
    from ultralytics import YOLO

    rep = bccd_analysis
    ds = fo.load_dataset(rep.name)
    images = sorted(_split_dir(bccd_yolo, "images").iterdir())
    assert len(ds) == len(images) == rep.totals.samples == 87  # SOURCE.md: ImageSets/Main/val.txt has 87 ids
    # ground truth: tp + fn over all samples == label lines in labels/val
    gt_lines = sum(1 for p in _split_dir(bccd_yolo, "labels").glob("*.txt")
                   for line in p.read_text().splitlines() if line.strip())
    assert sum(ds.values("eval_tp")) + sum(ds.values("eval_fn")) == gt_lines == rep.totals.gt_boxes
    # predictions: tp + fp == stored predictions == what Ultralytics' own predictor returns
    stored = ds.count("predictions.detections")
    assert stored > 0, "the tiny detector predicts nothing at conf 0.001; the checks would be empty"
    assert sum(ds.values("eval_tp")) + sum(ds.values("eval_fp")) == stored == rep.totals.predictions
    ul = sum(len(r.boxes) for r in YOLO(str(bccd_detector)).predict(
        [str(p) for p in images], conf=0.001, iou=0.7, imgsz=128, batch=16, stream=True,
        verbose=False))
    assert stored == ul
    # every box carries its eval tag, with the meaning FiftyOne documents
    assert set(ds.distinct("predictions.detections.eval")) <= {"tp", "fp"}
    assert set(ds.distinct("ground_truth.detections.eval")) <= {"tp", "fn"}
    t = rep.totals
    assert t.tp + t.fn == t.gt_boxes and t.tp + t.fp == t.predictions
    # both mAPs are reported; Ultralytics' one comes from its own validator
    assert 0.0 <= rep.maps.fiftyone_map50_95 <= 1.0 and 0.0 <= rep.maps.ultralytics_map50_95 <= 1.0
    assert "100 predictions per image" in rep.maps.why_differ
    names = yaml.safe_load(bccd_yolo.read_text())["names"]
    assert [c.name for c in rep.classes] == [names[i] for i in sorted(names)]
    assert sorted(c.name for c in rep.classes) == ["Platelets", "RBC", "WBC"]  # SOURCE.md


def test_views_and_tags(bccd_analysis):
    import fiftyone as fo

    rep = bccd_analysis
    ds = fo.load_dataset(rep.name)
    assert {"fp_high_conf", "false_negatives", "worst_samples"} <= set(ds.list_saved_views())
    fns = ds.values("eval_fn")
    evals = ds.values("predictions.detections.eval")
    confs = ds.values("predictions.detections.confidence")
    fp_hi = [sum(1 for e, c in zip(ev, cf) if e == "fp" and c >= rep.options.high_conf)
             for ev, cf in zip(evals, confs)]
    n_missed = sum(1 for n in fns if n > 0)
    n_fp_hi = sum(1 for n in fp_hi if n > 0)
    n_err = sum(1 for a, b in zip(fns, fp_hi) if a + b > 0)
    assert n_missed > 0  # a 2-epoch model misses objects
    assert len(ds.load_saved_view("false_negatives")) == rep.views.counts["false_negatives"] == n_missed
    assert len(ds.load_saved_view("fp_high_conf")) == rep.views.counts["fp_high_conf"] == n_fp_hi
    assert len(ds.load_saved_view("worst_samples")) == min(50, n_err) > 0
    worst = ds.load_saved_view("worst_samples").values("errors")
    assert worst == sorted(worst, reverse=True) and worst[0] == max(a + b for a, b in zip(fns, fp_hi))
    fn_view = ds.load_saved_view("false_negatives")
    assert set(fn_view.distinct("ground_truth.detections.eval")) == {"fn"}
    tags = ds.count_sample_tags()
    assert tags.get("missed", 0) == n_missed and tags.get("fp_high_conf", 0) == n_fp_hi
    assert TAG in ds.tags and ds.info["yolo_tl"]["split"] == "val"
    assert rep.name in [r["name"] for r in list_datasets()]


def _voc_boxes(bccd_root: Path, stem: str) -> list:
    """Boxes straight from the VOC XML (FiftyOne relative xywh), zero-area ones dropped."""
    root = ET.parse(bccd_root / "Annotations" / f"{stem}.xml").getroot()
    w, h = float(root.find("size/width").text), float(root.find("size/height").text)
    out = []
    for obj in root.iter("object"):
        b = obj.find("bndbox")
        x1, y1, x2, y2 = (float(b.find(k).text) - 1 for k in ("xmin", "ymin", "xmax", "ymax"))
        if x2 > x1 and y2 > y1:
            out.append((obj.find("name").text, (x1 / w, y1 / h, (x2 - x1) / w, (y2 - y1) / h), 0.9))
    return out


def test_perfect_predictions_score_one(bccd_yolo, bccd_detector, bccd_root, monkeypatch):
    """Predictions = the VOC boxes (conf 0.9) + one far-off box per image (conf 0.1):
    every GT box is a tp, every extra box an fp, and FiftyOne's mAP is 1."""
    import fiftyone as fo

    def fake_predict(model, images, **kw):
        for p in images:
            boxes = _voc_boxes(bccd_root, p.stem) + [("WBC", (0.0, 0.0, 0.01, 0.01), 0.1)]
            yield p, boxes, (480, 640)

    monkeypatch.setattr(fio, "predict_boxes", fake_predict)
    rep = analyze(bccd_yolo, weights=bccd_detector, name="test-bccd-perfect", imgsz=128,
                  compare_ultralytics=False)
    ds = fo.load_dataset(rep.name)
    assert rep.totals.fn == 0 and rep.totals.tp == rep.totals.gt_boxes == sum(ds.values("eval_tp"))
    assert rep.totals.fp == len(ds) == 87
    assert rep.maps.fiftyone_map50_95 == pytest.approx(1.0, abs=1e-6)
    assert rep.views.counts["fp_high_conf"] == 0 and rep.views.counts["false_negatives"] == 0
    assert rep.views.counts["worst_samples"] == 0
    assert all(c.ap == pytest.approx(1.0) and c.recall == 1.0 for c in rep.classes)
    delete_dataset(rep.name)
    assert not fo.dataset_exists(rep.name)


def test_rerun_replaces_dataset_without_growth(bccd_analysis, bccd_yolo, bccd_detector):
    import fiftyone as fo

    before = _db_doc_counts(bccd_analysis.name)
    result = runner.invoke(app, ["analyze", str(bccd_yolo), "--weights", str(bccd_detector),
                                 "--name", bccd_analysis.name, "--imgsz", "128",
                                 "--no-ultralytics-val", "--json"])
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    assert d["name"] == bccd_analysis.name and d["totals"]["samples"] == 87
    assert d["totals"]["predictions"] == bccd_analysis.totals.predictions
    names = fo.list_datasets()
    assert names.count(bccd_analysis.name) == 1
    assert not [n for n in names if "-building-" in n]
    after = _db_doc_counts(bccd_analysis.name)
    assert before["samples"] == 87 and before["views"] > 0
    assert after == before


def test_default_name_is_stable(bccd_yolo, bccd_detector):
    from yolo_tl.analysis.analyze import default_name

    a = default_name(bccd_yolo, bccd_detector, "val")
    assert a == default_name(str(bccd_yolo), str(bccd_detector), "val")
    assert a != default_name(bccd_yolo, bccd_detector, "test") and a.startswith("yolo-tl-")


def test_bad_inputs_are_one_line_errors(bccd_yolo, bccd_detector, tmp_path):
    import fiftyone as fo

    with pytest.raises(WeightsError, match="not found"):
        analyze(bccd_yolo, weights=tmp_path / "nope.pt")
    with pytest.raises(LayoutError, match="no split 'nope'"):
        analyze(bccd_yolo, weights=bccd_detector, split="nope")
    other = tmp_path / "data.yaml"
    other.write_text(bccd_yolo.read_text().replace("RBC", "cat"))
    with pytest.raises(WeightsError, match="class names differ"):
        analyze(other, weights=bccd_detector)
    # a dataset yolo-tl did not make is never overwritten nor deleted
    fo.Dataset("someone-elses", persistent=True, overwrite=True)
    with pytest.raises(OutputError, match="not made by yolo-tl"):
        analyze(bccd_yolo, weights=bccd_detector, name="someone-elses")
    r = runner.invoke(app, ["datasets", "delete", "someone-elses"])
    assert r.exit_code == 1 and "not made by yolo-tl" in r.output and "Traceback" not in r.output
    assert fo.dataset_exists("someone-elses")
    fo.load_dataset("someone-elses").delete()
    r = runner.invoke(app, ["analyze", str(bccd_yolo), "--weights", str(tmp_path / "x.pt")])
    assert r.exit_code == 1 and "weights file not found" in r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1


def test_database_failure_is_one_line_with_the_fix(monkeypatch):
    import yolo_tl.analysis.store.mongod as db

    monkeypatch.delenv("FIFTYONE_DATABASE_URI", raising=False)
    monkeypatch.setattr(db, "find_mongod", lambda: None)
    with pytest.raises(DatabaseError):
        list_datasets()
    r = runner.invoke(app, ["datasets", "list"])
    assert r.exit_code == 1 and "FIFTYONE_DATABASE_URI" in r.output
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output


def test_help_has_examples():
    for cmd in (["analyze"], ["app"], ["datasets", "list"], ["datasets", "delete"]):
        r = runner.invoke(app, [*cmd, "--help"])
        assert r.exit_code == 0 and "Example: yolo-tl" in r.output


def test_app_on_all_interfaces_warns_and_prints_tunnel(monkeypatch):
    """--address 0.0.0.0: a warning and an ssh tunnel command; Ctrl-C closes the App (fake handle)."""
    import yolo_tl.analysis.app.launch as analysis

    calls = {}

    class FakeHandle:
        url = "http://0.0.0.0:5999/datasets/x"

        def wait(self):
            raise KeyboardInterrupt

        def close(self):
            calls["closed"] = True

    def fake_launch(name, *, address, port, open_browser, view=None):
        calls.update(name=name, address=address, port=port)
        return FakeHandle()

    monkeypatch.setattr(analysis, "launch_app", fake_launch)
    r = runner.invoke(app, ["app", "x", "--address", "0.0.0.0", "--port", "5999"])
    assert r.exit_code == 0, r.output
    assert calls == {"name": "x", "address": "0.0.0.0", "port": 5999, "closed": True}
    assert "warning" in r.output and "anyone" in r.output
    assert "ssh -N -L 5999:127.0.0.1:5999" in r.output and "http://0.0.0.0:5999/datasets/x" in r.output
    r = runner.invoke(app, ["app", "x", "--port", "5999"])
    assert r.exit_code == 0 and calls["address"] == "127.0.0.1" and "warning" not in r.output
