"""analyze --folds K: the folds partition the split, no fold model trained on the images it predicts, the
stored predictions are Ultralytics' own predictions of that fold model, and a re-run trains nothing.

The fast tests check the fold assignment and the one-line errors through the CLI (no training, no
database); the slow one trains two fold runs of a tiny yolov8n.yaml at imgsz 64.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.helpers.train_helpers import write_tiny_dataset
from yolo_tl.analysis.folds import assign_folds, read_recipe
from yolo_tl.cli import app
from yolo_tl.errors import YoloTLError


def _lines(output: str) -> list[str]:
    """The error lines (Ultralytics greets its first import in a session with a settings note on stdout)."""
    assert "Traceback" not in output
    return [line for line in output.splitlines() if line.startswith("error")]


def test_folds_are_deterministic_balanced_and_partition_the_images():
    images = [Path(f"/d/images/train/{i:03d}.jpg") for i in range(10)]
    folds = assign_folds(images, 3, seed=0)
    assert sorted(len(f) for f in folds) == [3, 3, 4]
    assert sorted(p for f in folds for p in f) == images  # each image in exactly one fold
    assert assign_folds(list(reversed(images)), 3, seed=0) == folds  # the order given does not matter
    assert assign_folds(images, 3, seed=0) == folds
    assert {tuple(f) for f in assign_folds(images, 3, seed=1)} != {tuple(f) for f in folds}
    assert [len(f) for f in assign_folds(images, 10, seed=0)] == [1] * 10


@pytest.fixture
def tiny_recipe(tmp_path):
    """A tiny dataset (8 train images) and a weights file with a yolo-tl run.json beside it (no training)."""
    data = write_tiny_dataset(tmp_path / "data", n_train=8, n_val=2)
    run = tmp_path / "runs" / "base"
    (run / "weights").mkdir(parents=True)
    (run / "weights" / "best.pt").write_bytes(b"")
    record = {"status": "finished", "options": {"data": str(data), "weights": "yolov8n.yaml", "freeze": "none",
                                                "epochs": 3, "imgsz": 64, "seed": 0, "project": str(tmp_path),
                                                "name": "base", "device": "cpu"},
              "weights": {"spec": "yolov8n.yaml", "source": "scratch"}}
    (run / "run.json").write_text(json.dumps(record))
    return data, run / "weights" / "best.pt"


def test_recipe_is_the_run_options_without_where_it_went(tiny_recipe):
    _, weights = tiny_recipe
    assert read_recipe(weights) == {"weights": "yolov8n.yaml", "freeze": "none", "epochs": 3, "imgsz": 64,
                                    "seed": 0}


def _analyze(data: Path, weights: Path, *extra: str):
    return CliRunner().invoke(app, ["analyze", str(data), "--weights", str(weights), "--split", "train", *extra])


@pytest.mark.parametrize(("flags", "expect"), [
    (["--folds", "1"], "error: --folds: must be >= 2, got 1"),
    (["--folds", "9"], "error: --folds: must be between 2 and the 8 images of split 'train', got 9"),
    (["--fold-epochs", "1"], "error: --fold-epochs: only used with folds"),
    (["--folds", "2", "--ultralytics-val"], "error: --ultralytics-val: Ultralytics' validator evaluates the "
                                            "analysed weights, not the out-of-fold predictions; run it without folds"),
])
def test_bad_folds_options_are_one_line(flags, expect, tiny_recipe, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data, weights = tiny_recipe
    r = _analyze(data, weights, *flags)
    assert r.exit_code == 1 and _lines(r.output) == [expect], r.output
    assert not (tmp_path / "runs" / "folds").exists()


def test_weights_without_run_json_are_one_line(tiny_recipe, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data, weights = tiny_recipe
    (weights.parent.parent / "run.json").unlink()
    r = _analyze(data, weights, "--folds", "2")
    assert r.exit_code == 1 and _lines(r.output) == [
        f"error: {weights}: --folds needs the recipe: weights trained by yolo-tl finetune (run.json beside "
        "weights/)"], r.output
    loose = tmp_path / "loose.pt"  # not in a run's weights/ folder at all
    loose.write_bytes(b"")
    with pytest.raises(YoloTLError, match="--folds needs the recipe"):
        read_recipe(loose)


def test_folds_project_inside_the_dataset_is_refused(tiny_recipe, tmp_path):
    data, weights = tiny_recipe
    r = _analyze(data, weights, "--folds", "2", "--folds-dir", str(data.parent / "folds"))
    assert r.exit_code == 1 and len(_lines(r.output)) == 1 and "inside the dataset folder" in r.output, r.output
    assert not (data.parent / "folds").exists()


@pytest.mark.slow
def test_out_of_fold_predictions_are_each_fold_models_own(tiny_yolo_data, tiny_base_weights, tmp_path):
    import fiftyone as fo
    from ultralytics import YOLO

    from yolo_tl.analysis.analyze import analyze
    from yolo_tl.analysis.collect import read_split

    project = tmp_path / "folds"
    kwargs = {"split": "train", "folds": 2, "fold_epochs": 1, "folds_dir": project, "imgsz": 64, "batch": 4,
              "name": "test-folds-tiny"}
    rep = analyze(tiny_yolo_data, weights=tiny_base_weights, **kwargs)
    train = read_split(tiny_yolo_data, "train").images
    plan = json.loads((project / "folds.json").read_text())
    held = [[Path(p) for p in fold] for fold in plan["folds"]]
    assert sorted(p for fold in held for p in fold) == sorted(train)  # the folds partition the train split
    assert rep.folds["k"] == 2 and rep.folds["ran"] == ["fold1", "fold2"] and rep.folds["skipped"] == []
    assert "note" not in rep.label_issues  # out-of-fold: no "needs --folds" note on a train split

    ds = fo.load_dataset(rep.name)
    stored = {s.filepath: s.predictions.detections for s in ds}
    assert len(stored) == len(train)
    assert sum(len(d) for d in stored.values()) == rep.totals.predictions > 0
    for i, run in enumerate(rep.folds["runs"]):
        data = Path(run["data_yaml"])
        listed = (data.parent / "train_images.txt").read_text().split()
        assert not set(listed) & {str(p) for p in held[i]}  # never trained on the images it predicts
        assert sorted(listed) == sorted(str(p) for p in train if p not in held[i])
        record = json.loads((project / run["name"] / "run.json").read_text())
        assert record["status"] == "finished" and Path(record["options"]["data"]) == data
        model = YOLO(run["weights"])
        for image in held[i]:
            r = model.predict(str(image), conf=0.001, iou=0.7, imgsz=64, max_det=300, verbose=False)[0]
            theirs = sorted((model.names[int(c)], x1, y1, x2 - x1, y2 - y1, float(s))
                            for (x1, y1, x2, y2), s, c in zip(r.boxes.xyxyn.tolist(), r.boxes.conf, r.boxes.cls))
            ours = sorted((d.label, *d.bounding_box, d.confidence) for d in stored[str(image)])
            assert [o[0] for o in ours] == [t[0] for t in theirs], image
            assert np.allclose([o[1:] for o in ours], [t[1:] for t in theirs], atol=1e-5), image

    def run_files() -> dict:
        return {p: p.stat().st_mtime_ns for run in ("fold1", "fold2") for p in (project / run).rglob("*")
                if p.is_file()}

    before = run_files()
    again = analyze(tiny_yolo_data, weights=tiny_base_weights, **kwargs)
    assert again.folds["ran"] == [] and again.folds["skipped"] == ["fold1", "fold2"]
    assert run_files() == before  # no new training: the fold runs' files are untouched
    assert again.totals.predictions == rep.totals.predictions
    fo.delete_dataset(rep.name)
