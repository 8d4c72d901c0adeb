"""FinetuneOptions: --config merging, flag precedence, one-line errors for bad files, run.json round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from yolo_tl.cli import app
from yolo_tl.errors import TrainingError
from yolo_tl.training.finetune import finetune
from yolo_tl.training.options import FinetuneOptions


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_from_yaml_file_values_then_overrides_win(tmp_path):
    config = _write(tmp_path / "train.yaml", "epochs: 7\nunfreeze-at: 3,5\nname: from_file\nfreeze: [0, 1, 2]\n"
                    "device: 0\nultralytics:\n  lr0: 0.02\n  plots: false\n")
    opts = FinetuneOptions.from_yaml(config, name="from_flag", extra={"plots": True})
    assert opts.epochs == 7 and opts.unfreeze_at == "3,5" and opts.freeze == (0, 1, 2)
    assert opts.device == "0"  # YAML reads 0 as a number; devices are text, as on the command line
    assert opts.name == "from_flag"
    assert opts.extra == {"lr0": 0.02, "plots": True}  # an extra override is merged over the file's mapping
    untouched = [f for f in FinetuneOptions.names() if f not in ("epochs", "unfreeze_at", "name", "freeze",
                                                                   "device", "extra")]
    assert {f: getattr(opts, f) for f in untouched} == {f: getattr(FinetuneOptions(), f) for f in untouched}


@pytest.mark.parametrize(("text", "key", "words"), [
    ("epochs: 5\nlearning_rate: 0.1\n", "learning_rate", "unknown option"),
    ("extra:\n  lr0: 0.1\n", "extra", "unknown option"),  # the file's key is ultralytics:
    ("epochs: ten\n", "epochs", "expected an integer, got 'ten'"),
    ("keep_classes: 1\n", "keep_classes", "expected true or false"),
    ("imgsz: true\n", "imgsz", "expected an integer, got True"),
    ("freeze: [0, x]\n", "freeze", "expected text or an integer or a list of integers"),
    ("ultralytics: [lr0]\n", "ultralytics", "expected a mapping"),
    ("pseudo_conf: high\n", "pseudo_conf", "expected a number"),
])
def test_from_yaml_bad_key_or_type_names_file_and_key(tmp_path, text, key, words):
    config = _write(tmp_path / "train.yaml", text)
    with pytest.raises(TrainingError) as exc:
        FinetuneOptions.from_yaml(config)
    assert exc.value.path == str(config) and exc.value.field == key
    assert words in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("text", ["epochs: [1\n", "- epochs\n- 5\n"])
def test_from_yaml_not_a_mapping(tmp_path, text):
    config = _write(tmp_path / "train.yaml", text)
    with pytest.raises(TrainingError, match="train.yaml"):
        FinetuneOptions.from_yaml(config)


def test_library_errors_name_python_parameters():
    with pytest.raises(TrainingError) as exc:
        FinetuneOptions(epochs="10")
    assert exc.value.field == "epochs"
    with pytest.raises(TypeError, match="FinetuneOptions: unknown option 'epoch'"):
        FinetuneOptions().replace(epoch=3)
    with pytest.raises(TrainingError, match="on_error: expected fail or skip"):
        FinetuneOptions(on_error="ignore")


def _cli(*args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(app, ["finetune", *args])
    return result.exit_code, [line for line in result.output.splitlines() if line.strip()]


def test_cli_flags_win_over_config_file(tiny_yolo_data, tmp_path):
    """The device is checked before any model loads: no machine has GPU 97 or 98, and the error names it."""
    config = _write(tmp_path / "train.yaml", f"data: {tiny_yolo_data}\ndevice: 97\nproject: {tmp_path}\n")
    code, lines = _cli("--config", str(config))
    assert code == 1 and len(lines) == 1 and "CUDA device 97" in lines[0], lines
    code, lines = _cli("--config", str(config), "--device", "98")
    assert code == 1 and len(lines) == 1 and "CUDA device 98" in lines[0], lines
    code, lines = _cli(str(tmp_path / "nowhere" / "data.yaml"), "--config", str(config))
    assert code == 1 and len(lines) == 1 and "nowhere" in lines[0], lines  # the argument beat data:


def test_cli_shows_library_errors_as_flags_and_config_errors_as_keys(tiny_yolo_data, tmp_path):
    code, lines = _cli(str(tiny_yolo_data), "--epochs", "0", "--project", str(tmp_path))
    assert code == 1 and lines == ["error: --epochs: must be >= 1, got 0"]
    config = _write(tmp_path / "train.yaml", "epochs: 0\n")
    code, lines = _cli(str(tiny_yolo_data), "--config", str(config), "--project", str(tmp_path))
    assert code == 1 and lines == ["error: --epochs: must be >= 1, got 0"]
    config = _write(tmp_path / "bad.yaml", "epochz: 3\n")
    code, lines = _cli(str(tiny_yolo_data), "--config", str(config))
    assert code == 1 and len(lines) == 1 and lines[0].startswith(f"error: {config}: epochz: unknown option")
    assert not list(tmp_path.glob("*/run.json"))  # nothing half-written


class _Stop(RuntimeError):
    pass


def _stop(trainer) -> None:
    raise _Stop("stopped by the test before the first epoch")


def test_run_json_records_options_that_round_trip(tiny_yolo_data, tmp_path):
    """run.json's options are the resolved ones, and read back into the same FinetuneOptions."""
    asked = FinetuneOptions(weights="yolov8n.yaml", freeze="none", epochs=3, imgsz=64, batch=4, workers=0,
                            seed=3, lr_factors={"backbone": 0.5}, project=str(tmp_path / "runs"), name="rt",
                            extra={"plots": False})
    with pytest.raises(TrainingError, match="stopped by the test"):
        finetune(tiny_yolo_data, asked, callbacks={"on_pretrain_routine_start": _stop})
    record = json.loads((tmp_path / "runs" / "rt" / "run.json").read_text())
    assert record["status"] == "failed"
    recorded = FinetuneOptions.from_dict(record["options"])
    assert recorded.to_dict() == record["options"]
    assert recorded == asked.replace(data=str(Path(tiny_yolo_data).resolve()), device="auto",
                                     project=str((tmp_path / "runs").resolve()), lr_factors="backbone=0.5")
    # keyword callers get the same options as an options object
    with pytest.raises(TrainingError, match="stopped by the test"):
        finetune(tiny_yolo_data, callbacks={"on_pretrain_routine_start": _stop},
                 **{**asked.to_dict(), "data": None, "name": "kw"})
    again = json.loads((tmp_path / "runs" / "kw" / "run.json").read_text())["options"]
    assert {**again, "name": "rt"} == record["options"]
