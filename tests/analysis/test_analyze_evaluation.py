"""analyze on BCCD val: our evaluation equals FiftyOne's own on a copy, the views show what a person
can read, the App's colours, the figures, the measured mAP steps, and "val is the training split"."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from yolo_tl.analysis.analyze import train_overlap
from yolo_tl.analysis.collect import read_split
from yolo_tl.cli import app

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
runner = CliRunner()


@pytest.fixture(scope="module")
def reference(bccd_analysis):
    """A clone of the analysed dataset (same label ids), re-evaluated by FiftyOne's evaluate_detections."""
    import fiftyone as fo

    ds = fo.load_dataset(bccd_analysis.name)
    ref = ds.clone()
    ref.delete_evaluation("eval")
    assert "eval_tp" not in ref.get_field_schema()  # nothing of ours left on the copy
    res = ref.evaluate_detections("predictions", gt_field="ground_truth", eval_key="eval",
                                  iou=bccd_analysis.options.iou, compute_mAP=True,
                                  classes=[c.name for c in bccd_analysis.classes], progress=False)
    yield ds, ref, res
    ref.delete()


def _fields(ds, field):
    return {d["_id"]: (d["eval"], d["eval_id"], d.get("eval_iou"))
            for s in ds._sample_collection.find({}, {field: 1}) for d in s[field]["detections"]}


def _count_by(ds):
    from fiftyone import ViewField as F

    def count(field, label, outcome):
        return ds.filter_labels(field, (F("eval") == outcome) & (F("label") == label)).count(f"{field}.detections")

    return count


def test_bccd_every_box_and_the_map_equal_evaluate_detections(bccd_analysis, reference):
    ds, ref, res = reference
    assert bccd_analysis.evaluation == "yolo-tl"  # our path was taken, not the fallback
    for f in ("eval_tp", "eval_fp", "eval_fn"):
        assert ds.values(f) == ref.values(f), f
    for field in ("predictions", "ground_truth"):
        assert _fields(ds, field) == _fields(ref, field), field
    assert bccd_analysis.maps.fiftyone_map50_95 == pytest.approx(res.mAP(), abs=1e-6)
    ours = ds.load_evaluation_results("eval")
    assert np.allclose(ours.precision, res.precision, atol=1e-9)
    for c in bccd_analysis.classes:
        assert c.ap == pytest.approx(res.mAP([c.name]), abs=1e-6)
        count = _count_by(ref)
        assert (c.tp, c.fp, c.fn) == (count("predictions", c.name, "tp"), count("predictions", c.name, "fp"),
                                      count("ground_truth", c.name, "fn"))
    assert ds.list_evaluations() == ["eval"] and len(ds.to_evaluation_patches("eval")) > 0


def test_views_show_predictions_above_show_conf_and_colour_by_outcome(bccd_yolo, bccd_detector, monkeypatch):
    """Predictions given (no inference): per image, the GT boxes shifted (conf 0.9, some hits) and four
    far-off boxes at 0.1, 0.2, 0.3, 0.6; the views keep exactly those >= show_conf, the dataset all."""
    import fiftyone as fo

    from yolo_tl.analysis import collect as fio
    from yolo_tl.analysis.analyze import analyze

    split = read_split(bccd_yolo, "val")
    label_of = dict(zip(split.images, split.labels))

    def fake_predict(model, images, **kw):
        for p in images:
            gt = fio.read_yolo_boxes(label_of[p], split.names)
            boxes = [(lab, (x + 0.02 * (i % 3), y, w, h), 0.9) for i, (lab, (x, y, w, h), _) in enumerate(gt)]
            boxes += [("WBC", (0.001 * k, 0.0, 0.01, 0.01), c) for k, c in enumerate((0.1, 0.2, 0.3, 0.6))]
            yield p, boxes, (480, 640)

    monkeypatch.setattr(fio, "predict_boxes", fake_predict)
    rep = analyze(bccd_yolo, weights=bccd_detector, name="test-bccd-showconf", show_conf=0.25)
    ds = fo.load_dataset(rep.name)
    try:
        assert ds.info["yolo_tl"]["show_conf"] == rep.options.show_conf == 0.25
        full = {s.filepath: [d.confidence for d in s.predictions.detections] for s in ds}
        assert ds.count("predictions.detections") == rep.totals.predictions == sum(map(len, full.values()))
        for name in ("worst_samples", "false_negatives", "shown_predictions"):
            view = ds.load_saved_view(name)
            shown = view.values("predictions.detections.confidence")
            assert len(view) > 0 and all(c >= 0.25 for per in shown for c in per), name
            assert [len(per) for per in shown] == [sum(1 for c in full[p] if c >= 0.25)
                                                   for p in view.values("filepath")], name
        assert rep.views.counts["fp_high_conf"] == 87  # the far-off 0.6 box of every image
        scheme = ds.app_config.color_scheme
        assert scheme.color_by == "value"
        by_path = {f["path"]: {v["value"]: v["color"] for v in f["valueColors"]} for f in scheme.fields}
        assert by_path["predictions"].keys() == {"tp", "fp"} and by_path["ground_truth"].keys() == {"tp", "fn"}
        assert len({by_path["predictions"]["fp"], by_path["ground_truth"]["fn"], by_path["predictions"]["tp"]}) == 3
        colour_by = {f["path"]: f["colorByAttribute"] for f in scheme.fields}
        assert colour_by["predictions"] == colour_by["ground_truth"] == "eval"
        # the suggested label fixes, when any, are coloured by their kind, apart from both
        assert set(colour_by) <= {"predictions", "ground_truth", "label_issues"}
        assert colour_by.get("label_issues", "kind") == "kind"
    finally:
        ds.delete()


def test_figures_json_and_size_aps(bccd_analysis):
    from PIL import Image

    rep = bccd_analysis
    for key in ("pr_curves", "confusion_matrix"):
        with Image.open(rep.plots[key]) as im:
            assert im.format == "PNG" and im.size[0] > 300
    m = np.array(rep.confusion["matrix"])
    n = len(rep.classes)
    assert m.shape == (n + 1, n + 1) and m[n, n] == 0
    # every GT box is either matched to some prediction >= show_conf or missed: rows sum to the GT counts
    assert m[:n].sum(axis=1).tolist() == [c.gt for c in rep.classes]
    assert set(rep.maps.by_size) == {"all", "small", "medium", "large"}
    assert rep.maps.by_size["all"] == pytest.approx(rep.maps.fiftyone_map50_95, abs=1e-9)
    steps = rep.maps.steps
    assert len(steps) == 4 and steps[0]["map50_95"] == pytest.approx(rep.maps.fiftyone_map50_95, abs=1e-6)
    assert all(0.0 <= s["map50_95"] <= 1.0 for s in steps)
    assert rep.maps.ultralytics_val_run and rep.maps.ultralytics_map50_95 is not None
    json.dumps(rep.to_dict())


def test_val_that_is_the_train_split_is_said(bccd_yolo, tmp_path):
    data = yaml.safe_load(bccd_yolo.read_text())
    split = read_split(bccd_yolo, "val")
    assert train_overlap(bccd_yolo, "val", split.images) == 0.0  # BCCD's ImageSets: disjoint splits
    data["train"] = data["val"]
    data["path"] = str(bccd_yolo.parent)
    same = tmp_path / "data.yaml"
    same.write_text(yaml.safe_dump(data))
    assert train_overlap(same, "val", split.images) == 1.0


def test_cli_json_seconds_and_no_ultralytics_val(bccd_yolo, bccd_detector, tmp_path):
    data = yaml.safe_load(bccd_yolo.read_text())
    data["train"], data["path"] = data["val"], str(bccd_yolo.parent)
    same = tmp_path / "data.yaml"
    same.write_text(yaml.safe_dump(data))
    r = runner.invoke(app, ["analyze", str(same), "--weights", str(bccd_detector), "--imgsz", "128",
                            "--name", "test-bccd-trainval", "--out", str(tmp_path / "figs"), "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert {"predict", "ingest_evaluate", "views", "total"} <= set(d["seconds"])
    assert d["seconds"]["total"] >= d["seconds"]["predict"] > 0
    assert d["maps"]["ultralytics_val_run"] is False and d["maps"]["ultralytics_map50_95"] is None
    assert "not run" in d["maps"]["why_differ"]
    assert d["split"]["is_train"] is True and d["split"]["train_overlap"] == 1.0
    assert (tmp_path / "figs" / "test-bccd-trainval" / "pr_curves.png").is_file()
    r = runner.invoke(app, ["analyze", str(same), "--weights", str(bccd_detector), "--imgsz", "128",
                            "--name", "test-bccd-trainval", "--out", str(tmp_path / "figs")],
                      env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    assert "'val' is the training split" in r.stdout and "was not run" in r.stdout
    long = [line for line in r.stdout.splitlines() if len(line) > 80]
    assert all(str(tmp_path) in line for line in long), long  # only file paths are left unbroken
