"""finetune: frozen layers bit-identical, run.json, two-stage schedule, resume, evaluate vs Ultralytics.

Comparing checkpoints: Ultralytics stores the EMA model in best.pt / last.pt / epochN.pt in half
precision. Our start checkpoints are Ultralytics checkpoints too (half), and half -> float32 ->
half is exact, so "bit-identical" is checked on the tensors exactly as stored in both files
(torch.equal on float16, and on the int64 num_batches_tracked), with no tolerance. yolo-tl keeps
the EMA copy of frozen layers equal to the live (never-updated) layers; see yolo_tl/train.py.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from tests.helpers.train_helpers import FAST, backbone_keys, checkpoint_state, label_counts, write_data_yaml
from yolo_tl.cli import app
from yolo_tl.errors import TrainingError
from yolo_tl.model.evaluate import evaluate
from yolo_tl.training.finetune import finetune

pytestmark = pytest.mark.slow

COMMON = {"imgsz": 64, "batch": 4, "workers": 0}


def _rows(run_dir: Path) -> list:
    with open(run_dir / "results.csv", newline="") as fh:
        return [{k.strip(): v for k, v in row.items()} for row in csv.DictReader(fh)]


def _same(a: dict, b: dict, keys: list) -> list:
    return [k for k in keys if not torch.equal(a[k], b[k])]


@pytest.fixture(scope="session")
def frozen_run(tiny_yolo_data, tiny_base_weights, tmp_path_factory):
    """finetune --freeze backbone for 2 epochs, through the CLI (with a --config file that flags override)."""
    tmp = tmp_path_factory.mktemp("frozen")
    config = tmp / "train.yaml"
    config.write_text("epochs: 2\nimgsz: 64\nbatch: 4\nworkers: 0\nname: from_config\n"
                      "ultralytics:\n  plots: false\n  warmup_epochs: 0.5\n")
    result = CliRunner().invoke(app, [
        "finetune", str(tiny_yolo_data), "--weights", str(tiny_base_weights), "--freeze", "backbone",
        "--config", str(config), "--name", "frozen", "--project", str(tmp / "runs"), "--json",
    ])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    return summary


def test_train_cli_flags_win_over_config(frozen_run):
    run_dir = Path(frozen_run["run_dir"])
    assert run_dir.name == "frozen"  # --name beat name: in the config file
    assert len(_rows(run_dir)) == 2  # epochs: 2 came from the config file


def test_train_steps_every_batch_and_the_users_warmup_wins(frozen_run):
    """yolo-tl's default nbs = batch reaches Ultralytics' trainer (its own args.yaml), where Ultralytics'
    default is 64; the config file's warmup_epochs wins over yolo-tl's default."""
    import yaml
    from ultralytics.cfg import DEFAULT_CFG

    run_dir = Path(frozen_run["run_dir"])
    used = yaml.safe_load((run_dir / "args.yaml").read_text())
    assert DEFAULT_CFG.nbs == 64 and DEFAULT_CFG.warmup_epochs == 3.0
    assert used["nbs"] == used["batch"] == 4
    assert used["warmup_epochs"] == 0.5
    record = json.loads((run_dir / "run.json").read_text())
    assert record["ultralytics_defaults_changed"] == {"nbs": 4}  # warmup_epochs was the user's


def test_train_frozen_backbone_bit_identical_head_changed(frozen_run, tiny_base_weights):
    start = checkpoint_state(tiny_base_weights)
    keys = backbone_keys(start)
    assert any(k.endswith("running_mean") for k in keys) and any(k.endswith("num_batches_tracked") for k in keys)
    for name in ("best.pt", "last.pt"):
        after = checkpoint_state(Path(frozen_run["run_dir"]) / "weights" / name)
        assert _same(start, after, keys) == [], f"frozen layers changed in {name}"
        head = [k for k in start if k.startswith("model.22.") and ".dfl." not in k]
        assert _same(start, after, head), f"the head did not train in {name}"


def test_train_run_json(frozen_run, tiny_base_weights, tiny_yolo_data):
    import ultralytics

    record = json.loads(Path(frozen_run["run_json"]).read_text())
    assert record["status"] == "finished"
    assert record["frozen_layers"] == list(range(10)) == frozen_run["frozen_layers"]
    assert record["weights"]["sha256"] == hashlib.sha256(tiny_base_weights.read_bytes()).hexdigest()
    assert record["weights"]["source"] == "local"
    assert record["data"]["data_yaml_sha256"] == hashlib.sha256(tiny_yolo_data.read_bytes()).hexdigest()
    assert record["data"]["label_files"] == 12
    assert record["versions"]["ultralytics"] == ultralytics.__version__
    assert record["versions"]["torch"] == torch.__version__
    assert record["device"] == "cpu" or record["device"].startswith("cuda")
    assert record["wall_time_s"] > 0
    assert record["options"]["epochs"] == 2 and record["options"]["freeze"] == "backbone"
    assert set(record["metrics"]) >= {"precision", "recall", "map50", "map50_95", "per_class"}
    # the final metrics are Ultralytics' validation of best.pt: the last row of its own results table
    # is the last epoch, so compare with the validator's summary instead of re-deriving them here
    assert record["best"].endswith("best.pt") and Path(record["best"]).is_file()


def test_cpu_training_runs_without_amp_as_ultralytics_decides(tiny_yolo_data, tiny_base_weights, tmp_path):
    """Offline (the tests' setting), yolo-tl's AMP guard must give Ultralytics' own answer on the CPU: its
    check_amp says False there, so the trainer runs in float32, not under bfloat16 autocast."""
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils.checks import check_amp

    seen = {}

    def grab(trainer):
        seen["amp"], seen["device"] = trainer.amp, trainer.device.type

    finetune(tiny_yolo_data, weights=tiny_base_weights, epochs=1, project=tmp_path, name="amp",
             callbacks={"on_train_start": grab}, extra={**FAST, "val": False}, **COMMON)
    if seen["device"] != "cpu":
        pytest.skip("trained on an accelerator; this checks the CPU path")
    assert check_amp(DetectionModel("yolov8n.yaml", nc=3, verbose=False)) is False
    assert seen["amp"] is False


def test_train_two_stage_backbone_frozen_then_trained(tiny_yolo_data, tiny_base_weights, tmp_path):
    result = finetune(tiny_yolo_data, weights=tiny_base_weights, freeze="backbone", epochs=2, unfreeze_at=1,
                      unfreeze_lr_factor=0.1, project=tmp_path, name="two",
                      extra={**FAST, "save_period": 1, "optimizer": "SGD", "lr0": 0.01, "lrf": 0.01}, **COMMON)
    start = checkpoint_state(tiny_base_weights)
    keys = backbone_keys(start)
    stage1 = checkpoint_state(result.run_dir / "weights" / "epoch0.pt")  # saved after epoch 1 (0-based name)
    assert _same(start, stage1, keys) == [], "backbone changed during stage 1"
    final = checkpoint_state(result.last)
    changed = _same(start, final, keys)
    assert any(".conv.weight" in k for k in changed), "backbone weights did not train in stage 2"
    assert any("running_mean" in k for k in changed), "backbone BatchNorm statistics did not update in stage 2"
    rows = _rows(result.run_dir)
    assert [int(float(r["epoch"])) for r in rows] == [1, 2]  # one results table across both stages
    # stage 2 lr = lr0 * factor * Ultralytics' linear schedule at epoch index 1 of 2
    linear = (1 - 1 / 2) * (1 - 0.01) + 0.01
    assert float(rows[1]["lr/pg0"]) == pytest.approx(0.01 * 0.1 * linear, rel=1e-3)
    record = json.loads(result.run_json.read_text())
    assert record["stages"][0]["epochs"] == [1, 1] and record["stages"][0]["frozen_layers"] == list(range(10))
    assert record["stages"][1] == {"epochs": [2, 2], "frozen_layers": [], "lr_factor": 0.1}


def test_train_resume_after_interrupt_across_the_stage_boundary(tiny_yolo_data, tiny_base_weights, tmp_path):
    def stop_after_first_epoch(trainer):
        if trainer.epoch == 0:
            raise KeyboardInterrupt  # like Ctrl-C once epoch 1 and its last.pt are saved

    kwargs = dict(weights=tiny_base_weights, freeze="backbone", epochs=3, unfreeze_at=1, project=tmp_path,
                  name="resumable", extra={**FAST, "save_period": 1}, **COMMON)
    with pytest.raises(KeyboardInterrupt):
        finetune(tiny_yolo_data, callbacks={"on_fit_epoch_end": stop_after_first_epoch}, **kwargs)
    run_dir = tmp_path / "resumable"
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    assert len(_rows(run_dir)) == 1

    # resuming with a data.yaml whose class count does not match the checkpoint head: one clear error
    other = write_data_yaml(tiny_yolo_data.parent, {0: "red", 1: "green"})
    two_class = other.with_name("two_class.yaml")
    other.rename(two_class)
    write_data_yaml(tiny_yolo_data.parent, {0: "red", 1: "green", 2: "blue"})  # restore the original
    with pytest.raises(TrainingError, match="has 2 classes but the checkpoint's head has 3"):
        finetune(two_class, resume=True, project=tmp_path, name="resumable", workers=0)

    result = finetune(tiny_yolo_data, resume=True, project=tmp_path, name="resumable", workers=0)
    assert result.run_dir == run_dir
    assert [int(float(r["epoch"])) for r in _rows(run_dir)] == [1, 2, 3]
    record = json.loads(result.run_json.read_text())
    assert record["status"] == "finished" and record["sessions"] == 2 and record["resumed_from_epoch"] == 1
    start = checkpoint_state(tiny_base_weights)
    keys = backbone_keys(start)
    assert _same(start, checkpoint_state(run_dir / "weights" / "epoch0.pt"), keys) == []
    assert _same(start, checkpoint_state(result.last), keys), "stage 2 did not run after resuming"
    with pytest.raises(TrainingError, match="already finished"):
        finetune(tiny_yolo_data, resume=True, project=tmp_path, name="resumable", workers=0)


@pytest.mark.parametrize("split", ["val", "test"])
def test_train_evaluate_equals_ultralytics_val(split, tiny_yolo_data, tiny_base_weights, tmp_path):
    """Our evaluate == Ultralytics' own model.val() of the same weights on the same split.

    A one-epoch checkpoint scores 0 mAP here (it has not learned to localise yet), so the split is
    also pinned by the per-class image and box counts, which are read from the label files.
    """
    from ultralytics import YOLO

    root = tiny_yolo_data.parent
    data = tmp_path / "with_test.yaml"
    data.write_text(tiny_yolo_data.read_text() + "test: images/train\n")  # 8 images, unlike val's 4
    ours = evaluate(tiny_base_weights, data, split=split, imgsz=64, batch=4, workers=0).metrics
    theirs = YOLO(str(tiny_base_weights)).val(data=str(data), split=split, imgsz=64, batch=4, workers=0,
                                              plots=False, project=str(tmp_path / "val"), name="v")
    assert (ours.precision, ours.recall, ours.map50, ours.map50_95) == (
        theirs.box.mp, theirs.box.mr, theirs.box.map50, theirs.box.map)
    theirs_per_class = {int(c): tuple(float(v) for v in theirs.box.class_result(i))
                        for i, c in enumerate(theirs.box.ap_class_index)}
    assert {r.class_id: (r.precision, r.recall, r.map50, r.map50_95) for r in ours.per_class} == theirs_per_class
    truth = label_counts(root / "labels" / ("val" if split == "val" else "train"))
    assert {r.class_id: (r.images, r.instances) for r in ours.per_class} == truth
    cli = CliRunner().invoke(app, ["evaluate", str(tiny_base_weights), str(data), "--split", split,
                                   "--imgsz", "64", "--batch", "4", "--json"])
    assert cli.exit_code == 0, cli.output
    payload = json.loads(cli.stdout[cli.stdout.index("{"):])
    assert payload["split"] == split and payload["metrics"] == ours.to_dict()


@pytest.mark.parametrize("case", ["missing_yaml", "missing_images", "cuda_device", "bad_unfreeze"])
def test_train_bad_input_one_line_exit_1(case, tiny_yolo_data, tiny_base_weights, tmp_path):
    args = ["finetune", str(tiny_yolo_data), "--weights", str(tiny_base_weights), "--project", str(tmp_path),
            "--epochs", "1", "--imgsz", "64"]
    expect = ""
    if case == "missing_yaml":
        args[1], expect = str(tmp_path / "nope" / "data.yaml"), "data.yaml not found"
    elif case == "missing_images":
        bad = tmp_path / "bad.yaml"
        bad.write_text(f"path: {tmp_path}\ntrain: images/train\nval: images/val\nnames: [a, b]\n")
        args[1], expect = str(bad), "images not found"
    elif case == "cuda_device":
        device = "0" if not torch.cuda.is_available() else str(torch.cuda.device_count())
        args += ["--device", device]
        expect = "GPU"
    else:
        args += ["--unfreeze-at", "1"]
        expect = "--unfreeze-at"
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and expect in lines[0], result.output
