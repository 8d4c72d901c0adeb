"""Bad weights given to finetune / evaluate / predict / analyze / export: one line, exit 1, nothing changed.

The checkpoints are built here from Ultralytics' own model yamls (yolov8n-seg / -pose / -cls / -obb),
so their task is Ultralytics' fact, not ours. Each case checks the exit code, that the one error line
names the file and the problem, that no traceback is printed, that the weights file is byte-identical
afterwards and that no output folder was made.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from yolo_tl.cli import app

pytestmark = pytest.mark.slow

runner = CliRunner()
TASKS = {"segment": "yolov8n-seg.yaml", "pose": "yolov8n-pose.yaml", "classify": "yolov8n-cls.yaml",
         "obb": "yolov8n-obb.yaml"}
COMMANDS = ("finetune", "evaluate", "predict", "analyze", "export")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def task_checkpoints(tmp_path_factory) -> dict[str, Path]:
    from ultralytics import YOLO

    root = tmp_path_factory.mktemp("task_ckpts")
    paths = {}
    for task, yaml_name in TASKS.items():
        model = YOLO(yaml_name)
        assert model.task == task  # Ultralytics' own word for what this checkpoint is
        model.save(root / f"{task}.pt")
        paths[task] = root / f"{task}.pt"
    return paths


def _argv(command: str, weights: Path, data_yaml: Path, out: Path) -> list[str]:
    images = data_yaml.parent / "images" / "val"
    return {
        "finetune": ["finetune", str(data_yaml), "--weights", str(weights), "--project", str(out), "--epochs", "1"],
        "evaluate": ["evaluate", str(weights), str(data_yaml), "--out", str(out)],
        "predict": ["predict", str(weights), str(images), "--out", str(out)],
        "analyze": ["analyze", str(data_yaml), "--weights", str(weights), "--name", "test-bad-weights"],
        "export": ["export", str(weights), "--data", str(data_yaml), "--out", str(out)],
    }[command]


def _assert_refused(result, weights: Path, out: Path, before: str, *needles: str) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    line = errors[0]
    assert str(weights) in line, line
    for needle in needles:
        assert needle in line, line
    assert _sha(weights) == before
    assert not out.exists(), f"{out} was created"
    return line


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("command", COMMANDS)
def test_other_task_checkpoint_is_refused(task, command, task_checkpoints, tiny_yolo_data, tmp_path):
    weights = task_checkpoints[task]
    before = _sha(weights)
    out = tmp_path / "out"
    result = runner.invoke(app, _argv(command, weights, tiny_yolo_data, out))
    _assert_refused(result, weights, out, before, f"is a {task}-task model")


def _damaged(tiny_base_weights: Path, tmp_path: Path) -> dict[str, tuple[Path, str]]:
    truncated = tmp_path / "truncated.pt"
    data = tiny_base_weights.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    text = tmp_path / "notes.pt"
    text.write_text("these are not weights\n")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    return {"truncated": (truncated, "truncated or damaged"), "text": (text, "not a PyTorch file"),
            "empty": (empty, "not a PyTorch file")}


@pytest.mark.parametrize("command", COMMANDS)
def test_truncated_or_non_torch_file_is_refused(command, tiny_base_weights, tiny_yolo_data, tmp_path):
    for kind, (weights, reason) in _damaged(tiny_base_weights, tmp_path).items():
        before = _sha(weights)
        out = tmp_path / f"out_{kind}"
        result = runner.invoke(app, _argv(command, weights, tiny_yolo_data, out))
        _assert_refused(result, weights, out, before, "not an Ultralytics checkpoint", reason)


def test_class_names_differ_from_data_yaml(tiny_base_weights, tiny_yolo_data, tmp_path):
    """The checkpoint was trained on red/green/blue; a data.yaml that calls class 1 'lime' is refused."""
    import torch

    names = torch.load(tiny_base_weights, map_location="cpu", weights_only=False)["model"].names
    assert names == {0: "red", 1: "green", 2: "blue"}
    other = tmp_path / "renamed.yaml"
    other.write_text(tiny_yolo_data.read_text().replace("1: green", "1: lime"))
    before = _sha(tiny_base_weights)
    for command in ("evaluate", "export"):
        out = tmp_path / f"out_{command}"
        line = _assert_refused(runner.invoke(app, _argv(command, tiny_base_weights, other, out)),
                               tiny_base_weights, out, before, "class names differ", "1: 'green' vs 'lime'",
                               str(other))
        assert "0:" not in line.split("differ")[1]  # only the differing name is listed
    # fewer classes that are not a subset of the model's (a subset is matched by name: test_keep_classes)
    fewer = tmp_path / "two.yaml"
    fewer.write_text(tiny_yolo_data.read_text().replace("  2: blue\n", "").replace("1: green", "1: purple"))
    line = _assert_refused(runner.invoke(app, _argv("evaluate", tiny_base_weights, fewer, tmp_path / "o2")),
                           tiny_base_weights, tmp_path / "o2", before, "predicts 3 classes", "has 2")


def test_exported_model_given_to_finetune(tiny_base_weights, tiny_yolo_data, tmp_path):
    from yolo_tl.deploy.export import export

    for fmt in ("torchscript", "onnx"):
        report = export(tiny_base_weights, format=fmt, imgsz=64, out=tmp_path / fmt)
        out = tmp_path / f"runs_{fmt}"
        before = _sha(report.model)
        _assert_refused(runner.invoke(app, _argv("finetune", report.model, tiny_yolo_data, out)),
                        report.model, out, before, f"is an exported {fmt} model", "(.pt)")


def test_damaged_export_is_refused_by_predict(tiny_base_weights, tiny_yolo_data, tmp_path):
    from yolo_tl.deploy.export import export

    report = export(tiny_base_weights, format="onnx", imgsz=64, out=tmp_path / "onnx")
    data = report.model.read_bytes()
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(data[: len(data) // 3])
    for command in ("predict", "evaluate"):
        out = tmp_path / f"out_{command}"
        before = _sha(broken)
        _assert_refused(runner.invoke(app, _argv(command, broken, tiny_yolo_data, out)), broken, out, before,
                        "onnx")
