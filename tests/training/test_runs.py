"""yolo-tl runs: a table of the runs in a project folder, --json, --per-class and the mAP curve plot.

The per-epoch curves are checked against the validation metrics Ultralytics' trainer held at the end
of each epoch (taken with its own on_fit_epoch_end callback), the plot by reading its pixels back.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.helpers.train_helpers import FAST
from yolo_tl.cli import app
from yolo_tl.training.finetune import finetune


@pytest.fixture(scope="module")
def project(tiny_yolo_data, tiny_base_weights, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs_project")
    seen: dict = {}
    for name, freeze in (("frozen", "backbone"), ("full", "none")):
        def grab(trainer, name=name):  # the final validation of best.pt calls it again, at epoch `epochs`
            if trainer.epoch < trainer.epochs:
                seen.setdefault(name, {}).setdefault(trainer.epoch, (trainer.metrics["metrics/mAP50(B)"],
                                                                     trainer.metrics["metrics/mAP50-95(B)"]))

        finetune(tiny_yolo_data, weights=tiny_base_weights, freeze=freeze, epochs=2, imgsz=64, batch=4, workers=0,
                 project=root, name=name, lr_factors="head=2" if freeze == "none" else None, extra=FAST,
                 callbacks={"on_fit_epoch_end": grab})
    (root / "notes").mkdir()  # a folder without run.json is not a run
    return root, seen


def test_runs_json_lists_each_run_with_ultralytics_curves(project):
    root, seen = project
    result = CliRunner().invoke(app, ["runs", str(root), "--json", "--per-class"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    runs = {r["name"]: r for r in payload["runs"]}
    assert sorted(runs) == ["frozen", "full"]
    assert runs["frozen"]["freeze"] == "backbone" and runs["full"]["freeze"] == "none"
    assert runs["full"]["lr_factors"] == "head=2" and runs["frozen"]["lr_factors"] is None
    for name, by_epoch in seen.items():
        per_epoch = [by_epoch[e] for e in sorted(by_epoch)]
        assert runs[name]["epochs_completed"] == 2
        assert runs[name]["curves"]["map50"] == pytest.approx([m for m, _ in per_epoch], abs=1e-5)
        assert runs[name]["curves"]["map50_95"] == pytest.approx([m for _, m in per_epoch], abs=1e-5)
        record = json.loads((root / name / "run.json").read_text())
        assert runs[name]["map50_95"] == record["metrics"]["map50_95"]
        assert [c["name"] for c in runs[name]["per_class"]] == [c["name"] for c in record["metrics"]["per_class"]]


def test_runs_table_and_plot(project, tmp_path):
    from PIL import Image

    root, _ = project
    png = tmp_path / "curves.png"
    result = CliRunner().invoke(app, ["runs", str(root), "--plot", str(png)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "frozen" in result.output and "full" in result.output and "head=2" in result.output
    image = Image.open(png).convert("RGB")
    assert image.size[0] > 800
    colours = {c for _, c in image.getcolors(1 << 20) if c[0] != c[1] or c[1] != c[2]}
    assert len(colours) > 10, "no coloured curves in the plot"


def test_runs_errors_one_line(tmp_path):
    result = CliRunner().invoke(app, ["runs", str(tmp_path)])
    assert result.exit_code == 1 and "no runs here" in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1
