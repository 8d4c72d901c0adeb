"""Discriminative learning rates and gradual unfreezing, measured on the weights Ultralytics trained.

Nothing here reads yolo-tl's own log: the checks are on the tensors in Ultralytics' checkpoints
(best/last/epochN.pt, stored in half precision exactly as the start checkpoint, so torch.equal is
exact) or on the live model between optimiser steps, taken through Ultralytics' own callbacks.
"""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from tests.helpers.train_helpers import FAST, backbone_keys, checkpoint_state
from yolo_tl.cli import app
from yolo_tl.errors import TrainingError
from yolo_tl.training.finetune import finetune
from yolo_tl.training.lr_factors import parse_lr_factors, resolve_lr_factors
from yolo_tl.training.schedule import unfreeze_groups

COMMON = {"imgsz": 64, "batch": 4, "workers": 0}


def _arch():
    from ultralytics.nn.tasks import yaml_model_load

    return yaml_model_load("yolov8n.yaml")


def _layer_keys(state: dict, layers) -> list:
    prefixes = tuple(f"model.{i}." for i in layers)
    return [k for k in state if k.startswith(prefixes) and ".dfl." not in k]


def _changed(a: dict, b: dict, keys: list) -> list:
    return [k for k in keys if not torch.equal(a[k], b[k])]


def test_lr_factor_parts_come_from_the_architecture():
    arch = _arch()  # yolov8n: 10 backbone modules, 23 layers, Detect is the last
    assert len(arch["backbone"]) == 10 and len(arch["backbone"]) + len(arch["head"]) == 23
    got = resolve_lr_factors(parse_lr_factors("backbone=0.1,neck=0.5,0-1=0"), arch)
    assert got == {0: 0.0, 1: 0.0, **{i: 0.1 for i in range(2, 10)}, **{i: 0.5 for i in range(10, 22)}}
    assert resolve_lr_factors(parse_lr_factors("head=2"), arch) == {22: 2.0}


@pytest.mark.parametrize(("value", "message"), [
    ("backbone", "expected PART=FACTOR"), ("torso=0.1", "unknown part"), ("neck=x", "must be a number"),
    ("head=-1", "must be >= 0"), ("30-40=0.1", "do not exist"),
])
def test_lr_factor_bad_values(value, message):
    with pytest.raises(TrainingError, match=message):
        resolve_lr_factors(parse_lr_factors(value), _arch())


def test_unfreeze_groups_top_first():
    assert unfreeze_groups(list(range(10)), 2) == [[5, 6, 7, 8, 9], [0, 1, 2, 3, 4]]
    assert unfreeze_groups(list(range(10)), 3) == [[7, 8, 9], [3, 4, 5, 6], [0, 1, 2]]


@pytest.mark.parametrize(("args", "message"), [
    (["--lr-factors", "torso=0.1"], "--lr-factors: unknown part"),
    (["--unfreeze-at", "2,1", "--epochs", "3"], "--unfreeze-at: epochs must increase"),
    (["--unfreeze-at", "1,x", "--epochs", "3"], "--unfreeze-at: expected epochs"),
])
def test_schedule_bad_cli_values_one_line(args, message, tiny_yolo_data, tiny_base_weights, tmp_path):
    result = CliRunner().invoke(app, ["finetune", str(tiny_yolo_data), "--weights", str(tiny_base_weights),
                                      "--project", str(tmp_path), "--epochs", "1", *args])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.output
    assert not any(tmp_path.iterdir()), "nothing may be written for a bad option"


def test_lr_factor_zero_backbone_bit_identical_bn_moves_head_trains(tiny_yolo_data, tiny_base_weights, tmp_path):
    """backbone=0, nothing frozen, explicit SGD with a bias warm-up: the backbone weights never move."""
    result = CliRunner().invoke(app, [
        "finetune", str(tiny_yolo_data), "--weights", str(tiny_base_weights), "--freeze", "none",
        "--lr-factors", "backbone=0", "--epochs", "2", "--imgsz", "64", "--batch", "4", "--workers", "0",
        "--project", str(tmp_path), "--name", "zero", "--json",
    ] + ["--config", str(_config(tmp_path, optimizer="SGD", lr0=0.01, warmup_epochs=1))])
    assert result.exit_code == 0, result.output
    run = tmp_path / "zero"
    start, after = checkpoint_state(tiny_base_weights), checkpoint_state(run / "weights" / "last.pt")
    keys = backbone_keys(start)
    weights = [k for k in keys if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert any(k.endswith(".bias") for k in weights) and any(".bn.weight" in k for k in weights)
    assert _changed(start, after, weights) == [], "a backbone weight moved with factor 0"
    stats = [k for k in keys if k.endswith("running_mean")]
    assert len(_changed(start, after, stats)) == len(stats), "backbone BatchNorm statistics did not move"
    assert _changed(start, after, _layer_keys(start, [22])), "the head did not train"
    record = json.loads((run / "run.json").read_text())
    assert record["options"]["lr_factors"] == "backbone=0"


def _config(tmp_path, **ultralytics):
    path = tmp_path / "train.yaml"
    path.write_text("ultralytics:\n" + "".join(f"  {k}: {v}\n" for k, v in {**FAST, **ultralytics}.items()))
    return path


def _first_step(tiny_yolo_data, tiny_base_weights, tmp_path, name, lr_factors):
    """Live backbone conv weights right after Ultralytics' first optimiser step."""
    seen = {}

    def grab(trainer):
        if not seen:
            from ultralytics.utils.torch_utils import unwrap_model

            state = unwrap_model(trainer.model).state_dict()
            seen.update({k: v.detach().clone().float() for k, v in state.items()})

    finetune(tiny_yolo_data, weights=tiny_base_weights, freeze="none", epochs=1, lr_factors=lr_factors,
             project=tmp_path, name=name, callbacks={"on_train_batch_end": grab},
             extra={**FAST, "optimizer": "Adam", "lr0": 0.001, "warmup_epochs": 0, "val": False}, **COMMON)
    return seen


def test_lr_factor_tenth_moves_backbone_ten_times_less_first_adam_step(tiny_yolo_data, tiny_base_weights,
                                                                       tmp_path):
    start = {k: v.float() for k, v in checkpoint_state(tiny_base_weights).items()}
    full = _first_step(tiny_yolo_data, tiny_base_weights, tmp_path, "full", None)
    tenth = _first_step(tiny_yolo_data, tiny_base_weights, tmp_path, "tenth", "backbone=0.1")
    convs = [k for k in backbone_keys(start) if k.endswith(".conv.weight")]
    d_full = torch.cat([(full[k] - start[k]).abs().flatten() for k in convs])
    d_tenth = torch.cat([(tenth[k] - start[k]).abs().flatten() for k in convs])
    moved = d_full > 0
    ratio = (d_full[moved] / d_tenth[moved].clamp_min(1e-30)).median().item()
    assert 9.0 < ratio < 11.0, ratio
    head = [k for k in _layer_keys(start, [22]) if k.endswith(".weight")]
    d_head_full = torch.cat([(full[k] - start[k]).abs().flatten() for k in head]).mean()
    d_head_tenth = torch.cat([(tenth[k] - start[k]).abs().flatten() for k in head]).mean()
    assert d_head_tenth.item() == pytest.approx(d_head_full.item(), rel=0.05), "the head kept its full rate"


def test_gradual_unfreezing_groups_train_from_their_epoch(tiny_yolo_data, tiny_base_weights, tmp_path):
    groups = {}

    def grab_groups(trainer):
        groups["factors"] = [g.get("lr_factor", 1.0) for g in trainer.optimizer.param_groups]
        groups["tags"] = [g.get("param_group") for g in trainer.optimizer.param_groups]

    result = finetune(tiny_yolo_data, weights=tiny_base_weights, freeze="backbone", epochs=3, unfreeze_at="1,2",
                      lr_factors="backbone=0.5", project=tmp_path, name="gradual",
                      callbacks={"on_pretrain_routine_end": grab_groups}, extra={**FAST, "save_period": 1}, **COMMON)
    start = checkpoint_state(tiny_base_weights)
    upper, lower = _layer_keys(start, range(5, 10)), _layer_keys(start, range(0, 5))
    after1 = checkpoint_state(result.run_dir / "weights" / "epoch0.pt")  # saved after epoch 1
    after2 = checkpoint_state(result.run_dir / "weights" / "epoch1.pt")
    final = checkpoint_state(result.last)
    assert _changed(start, after1, upper + lower) == [], "the backbone moved while frozen"
    up2 = _changed(start, after2, upper)
    assert any(".conv.weight" in k for k in up2) and any("running_mean" in k for k in up2)
    assert _changed(start, after2, lower) == [], "the lower group moved before its epoch"
    low3 = _changed(start, final, lower)
    assert any(".conv.weight" in k for k in low3) and any("running_mean" in k for k in low3)
    record = json.loads(result.run_json.read_text())
    assert [s["epochs"] for s in record["stages"]] == [[1, 1], [2, 2], [3, 3]]
    assert [s["frozen_layers"] for s in record["stages"]] == [list(range(10)), list(range(5)), []]
    # Ultralytics' own lr log: the backbone's factor holds across both unfreeze steps (and their lr x 0.1)
    import csv

    with open(result.run_dir / "results.csv", newline="") as fh:
        rows = [{k.strip(): float(v) for k, v in row.items()} for row in csv.DictReader(fh)]
    for row in rows:
        for tag in ("weight", "bn", "bias"):
            lr = {f: row[f"lr/pg{i}"] for i, (f, t) in enumerate(zip(groups["factors"], groups["tags"])) if t == tag}
            assert lr[0.5] == pytest.approx(0.5 * lr[1.0], rel=5e-5), (row["epoch"], tag, lr)  # csv: ~6 digits


def test_lr_factors_hold_through_warmup_decay_and_resume(tiny_yolo_data, tiny_base_weights, tmp_path):
    """Ultralytics' own per-group lr log (results.csv lr/pgN) keeps backbone = 0.5 x the rest, across a resume."""
    import csv

    def stop_after_first_epoch(trainer):
        if trainer.epoch == 0:
            raise KeyboardInterrupt

    groups = {}

    def grab_groups(trainer):
        groups["factors"] = [g.get("lr_factor", 1.0) for g in trainer.optimizer.param_groups]
        groups["tags"] = [g.get("param_group") for g in trainer.optimizer.param_groups]

    kwargs = dict(weights=tiny_base_weights, freeze="none", epochs=3, lr_factors="backbone=0.5", project=tmp_path,
                  name="resumable", extra={**FAST, "optimizer": "SGD", "lr0": 0.01, "warmup_epochs": 1}, **COMMON)
    with pytest.raises(KeyboardInterrupt):
        finetune(tiny_yolo_data, callbacks={"on_fit_epoch_end": stop_after_first_epoch,
                                            "on_pretrain_routine_end": grab_groups}, **kwargs)
    finetune(tiny_yolo_data, resume=True, project=tmp_path, name="resumable", workers=0)
    with open(tmp_path / "resumable" / "results.csv", newline="") as fh:
        rows = [{k.strip(): float(v) for k, v in row.items()} for row in csv.DictReader(fh)]
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    factors, tags = groups["factors"], groups["tags"]
    assert sorted(set(factors)) == [0.5, 1.0] and len(factors) == 6  # weight / bn / bias, each split in two
    for row in rows:
        for tag in ("weight", "bn", "bias"):
            lr = {f: row[f"lr/pg{i}"] for i, (f, t) in enumerate(zip(factors, tags)) if t == tag}
            assert lr[0.5] == pytest.approx(0.5 * lr[1.0], rel=5e-5), (row["epoch"], tag, lr)  # csv: ~6 digits
    assert rows[2]["lr/pg0"] < rows[1]["lr/pg0"], "the schedule did not decay"


def test_lr_factors_scale_what_optimizer_auto_picks(tiny_yolo_data, tiny_base_weights, tmp_path):
    """optimizer=auto ignores lr0 and picks its own rate (AdamW, 0.002*5/(4+nc) here): the factor scales that."""
    seen = {}

    def grab(trainer):
        seen["auto_lr"] = trainer.args.lr0  # Ultralytics writes its choice back into args
        seen["groups"] = [(g.get("lr_factor", 1.0), g["initial_lr"]) for g in trainer.optimizer.param_groups]
        seen["optimizer"] = type(trainer.optimizer).__name__

    finetune(tiny_yolo_data, weights=tiny_base_weights, freeze="none", epochs=1, lr_factors="neck=0.25",
             project=tmp_path, name="auto", callbacks={"on_train_epoch_end": grab},
             extra={**FAST, "lr0": 0.5, "val": False}, **COMMON)
    assert seen["optimizer"] == "AdamW" and seen["auto_lr"] == pytest.approx(round(0.002 * 5 / (4 + 3), 6))
    assert {f: lr for f, lr in seen["groups"]} == pytest.approx({1.0: seen["auto_lr"], 0.25: 0.25 * seen["auto_lr"]})
