"""yolo-tl sweep: recipes parsed into finetune options, run as real fine-tunes (locally and as Ray Tune
trials on a local Ray with 2 CPUs), ranked from their run.json; an interrupted sweep keeps its finished runs
and a second sweep into the same folder skips them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers.train_helpers import FAST
from yolo_tl.cli import app
from yolo_tl.errors import TrainingError
from yolo_tl.training.sweep import parse_recipe, sweep

COMMON = {"imgsz": 64, "batch": 4, "workers": 0, "extra": FAST}


def test_recipe_options_parse_into_finetune_keywords():
    r = parse_recipe("freeze=backbone,unfreeze-at=5,10,unfreeze-lr-factor=0.2")
    assert r.options == {"freeze": "backbone", "unfreeze_at": "5,10", "unfreeze_lr_factor": 0.2}
    assert r.name == "freeze-backbone_unfreeze_at-5-10_unfreeze_lr_factor-0.2"
    r = parse_recipe("lr-factors=backbone=0.1,neck=0.5,lr0=0.002,optimizer=AdamW")
    assert r.options == {"lr_factors": "backbone=0.1,neck=0.5"}
    assert r.extra == {"lr0": 0.002, "optimizer": "AdamW"}
    assert r.kwargs() == {"lr_factors": "backbone=0.1,neck=0.5", "extra": {"lr0": 0.002, "optimizer": "AdamW"}}
    assert parse_recipe("weights=yolov5nu.yaml,freeze=none").options == {"weights": "yolov5nu.yaml", "freeze": "none"}


@pytest.mark.parametrize(("text", "needle"), [
    ("frezee=backbone", "unknown option 'frezee'"),
    ("epochs=3", "same for every recipe"),
    ("backbone", "expected option=value"),
    ("", "empty recipe"),
])
def test_bad_recipe_is_one_line(text, needle, tiny_yolo_data, tmp_path):
    with pytest.raises(TrainingError, match=needle):
        parse_recipe(text)
    result = CliRunner().invoke(app, ["sweep", str(tiny_yolo_data), "--try", "freeze=none", "--try", text,
                                      "--project", str(tmp_path / "p")])
    assert result.exit_code == 1 and needle in result.output and "Traceback" not in result.output
    assert not (tmp_path / "p").exists() or not list((tmp_path / "p").glob("*/run.json"))


def _record(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


@pytest.mark.slow
def test_local_sweep_interrupt_keeps_finished_and_rerun_skips_them(tiny_yolo_data, tiny_base_weights, tmp_path):
    project = tmp_path / "sweep"
    tries = ["freeze=backbone", "freeze=none"]

    def stop_in_second(trainer) -> None:
        if Path(trainer.save_dir).name == "freeze-none":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep(tiny_yolo_data, tries, weights=tiny_base_weights, epochs=1, project=project, device="cpu",
              callbacks={"on_train_epoch_start": stop_in_second}, **COMMON)
    first = _record(project / "freeze-backbone")
    assert first["status"] == "finished" and first["frozen_layers"] == list(range(10))
    assert _record(project / "freeze-none")["status"] == "interrupted"
    finished_at = (project / "freeze-backbone" / "run.json").stat().st_mtime_ns

    result = sweep(tiny_yolo_data, [*tries, "freeze=backbone,lr0=0.02"], weights=tiny_base_weights, epochs=1,
                   project=project, device="cpu", **COMMON)
    assert result.skipped == ["freeze-backbone"]
    assert result.ran == ["freeze-none", "freeze-backbone_lr0-0.02"]
    assert (project / "freeze-backbone" / "run.json").stat().st_mtime_ns == finished_at
    records = {r.name: _record(Path(r.run_dir)) for r in result.rows}
    assert set(records) == {"freeze-backbone", "freeze-none", "freeze-backbone_lr0-0.02"}
    assert all(rec["status"] == "finished" for rec in records.values())
    assert records["freeze-none"]["frozen_layers"] == []
    assert records["freeze-backbone_lr0-0.02"]["options"]["extra"]["lr0"] == 0.02
    assert {rec["options"]["seed"] for rec in records.values()} == {0}
    scores = [records[r.name]["metrics"]["map50_95"] for r in result.rows]
    assert scores == sorted(scores, reverse=True) and result.best.name == result.rows[0].name
    assert not list(project.glob("freeze-none2"))  # the interrupted run was redone in place

    # the CLI on the same folder: everything already done, nothing trains; the table and the best are printed
    cli = CliRunner().invoke(app, ["sweep", str(tiny_yolo_data), "--weights", str(tiny_base_weights), "--epochs", "1",
                                   "--imgsz", "64", "--batch", "4", "--workers", "0", "--device", "cpu",
                                   "--project", str(project), "--json",
                                   *[a for t in [*tries, "freeze=backbone,lr0=0.02"] for a in ("--try", t)]])
    assert cli.exit_code == 0, cli.output
    out = json.loads(cli.stdout)
    assert out["ran"] == [] and len(out["skipped"]) == 3 and out["best"] == result.best.name
    assert [r["name"] for r in out["runs"]] == [r.name for r in result.rows]


@pytest.mark.slow
def test_ray_sweep_runs_trials_into_the_project(tiny_yolo_data, tiny_base_weights, tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is the sweep extra: pip install 'yolo-tl[sweep]'")
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        project = tmp_path / "ray_sweep"
        result = sweep(tiny_yolo_data, ["freeze=backbone", "freeze=none"], weights=str(tiny_base_weights),
                       epochs=1, project=project, device="cpu",
                       ray_address=ray.get_runtime_context().gcs_address, **COMMON)
    finally:
        ray.shutdown()
    assert result.runner == "ray" and not result.failed
    assert sorted(result.ran) == ["freeze-backbone", "freeze-none"]
    for name, frozen in (("freeze-backbone", list(range(10))), ("freeze-none", [])):
        rec = _record(project / name)
        assert rec["status"] == "finished" and rec["frozen_layers"] == frozen
        assert (project / name / "weights" / "best.pt").is_file()
    assert (project / "ray" / "sweep").is_dir()  # Ray Tune's own trial records, beside the runs
