"""Checkpoints are pickles: bad ones give one clear line, and none is loaded from an unnamed place."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from yolo_tl.cli import app
from yolo_tl.errors import TrainingError, WeightsError
from yolo_tl.training.finetune import finetune


def _one_line_error(result):
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04" + b"\0" * 64])
def test_corrupt_weights_file_one_line(tmp_path, tiny_yolo_data, content):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(content)
    for args in (["finetune", str(tiny_yolo_data), "--weights", str(bad), "--epochs", "1",
                  "--project", str(tmp_path / "runs")],
                 ["evaluate", str(bad), str(tiny_yolo_data)]):
        line = _one_line_error(CliRunner().invoke(app, args))
        assert "broken.pt" in line


def test_corrupt_last_pt_on_resume(tmp_path, tiny_yolo_data, tiny_base_weights):
    run = tmp_path / "runs" / "cut" / "weights"
    run.mkdir(parents=True)
    (run / "last.pt").write_bytes(tiny_base_weights.read_bytes()[:5000])  # a checkpoint cut short
    with pytest.raises(TrainingError, match="cannot read checkpoint"):
        finetune(tiny_yolo_data, resume=True, project=tmp_path / "runs", name="cut", workers=0)


def test_resume_never_guesses_which_checkpoint_to_load(tmp_path, tiny_yolo_data, tiny_base_weights):
    run = tmp_path / "runs" / "old" / "weights"
    run.mkdir(parents=True)
    (run / "last.pt").write_bytes(tiny_base_weights.read_bytes())
    with pytest.raises(TrainingError, match="--resume needs --name") as exc:
        finetune(tiny_yolo_data, resume=True, project=tmp_path / "runs", workers=0)
    assert "old" in str(exc.value)  # the candidates are listed, none is loaded


def test_missing_weights_path_is_not_searched_for(tmp_path, tiny_yolo_data):
    with pytest.raises(WeightsError):
        finetune(tiny_yolo_data, weights=str(tmp_path / "nowhere" / "model.pt"), epochs=1,
                 project=tmp_path / "runs", workers=0)
