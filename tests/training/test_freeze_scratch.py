"""Training from an architecture file: the default freezes nothing; an explicit freeze is refused.

Independent facts: the backbone length from Ultralytics' own ``yaml_model_load``, and which parameters
Ultralytics' trainer leaves trainable (``requires_grad``) once it has applied its ``freeze`` argument.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tests.helpers.train_helpers import FAST
from yolo_tl.cli import app
from yolo_tl.errors import TrainingError
from yolo_tl.training.finetune import finetune
from yolo_tl.training.freeze import FreezeSpec, freeze_for_weights


def test_auto_is_backbone_for_weights_and_none_for_a_yaml():
    from ultralytics.nn.tasks import yaml_model_load

    arch = yaml_model_load("yolov8n.yaml")
    trained = freeze_for_weights("auto", from_scratch=False, weights="best.pt")
    assert trained.resolve(arch) == list(range(len(arch["backbone"])))
    assert freeze_for_weights("auto", from_scratch=True, weights="yolov8n.yaml").resolve(arch) == []
    assert freeze_for_weights("none", from_scratch=True, weights="yolov8n.yaml") == FreezeSpec("none")


@pytest.mark.parametrize("freeze", ["backbone", "3", "0,1", 4, [0, 2]])
def test_explicit_freeze_on_random_weights_is_refused(freeze):
    with pytest.raises(TrainingError, match=r"random.*never learn"):
        freeze_for_weights(freeze, from_scratch=True, weights="yolov8n.yaml")


@pytest.mark.slow
@pytest.mark.parametrize("start", ["yaml", "pt"])
def test_default_freeze_follows_the_weights(tiny_yolo_data, tiny_base_weights, tmp_path, start):
    """Default --freeze: a .yaml trains every layer; trained .pt weights get their backbone frozen."""
    from ultralytics.nn.tasks import yaml_model_load

    seen = {}

    def on_train_start(trainer):  # Ultralytics has applied freeze=[...] to the model by now
        params = list(trainer.model.named_parameters())
        # Ultralytics always freezes the DFL projection (a fixed integral), whatever freeze says
        frozen = {n.split(".")[1] for n, p in params if not p.requires_grad and ".dfl" not in n}
        seen["frozen_layers"] = sorted(int(i) for i in frozen)

    weights = "yolov8n.yaml" if start == "yaml" else tiny_base_weights
    result = finetune(tiny_yolo_data, weights=weights, epochs=1, imgsz=64, batch=4, workers=0,
                      project=tmp_path, name="run", extra=FAST, callbacks={"on_train_start": on_train_start})
    backbone = len(yaml_model_load("yolov8n.yaml")["backbone"])
    expected = [] if start == "yaml" else list(range(backbone))
    assert seen["frozen_layers"] == expected
    assert result.frozen_layers == expected
    assert result.record["options"]["freeze"] == ("none" if start == "yaml" else "backbone")


@pytest.mark.slow
def test_cli_refuses_explicit_freeze_with_a_yaml(tiny_yolo_data, tmp_path):
    res = CliRunner().invoke(app, ["finetune", str(tiny_yolo_data), "--weights", "yolov8n.yaml", "--freeze",
                                   "backbone", "--epochs", "1", "--project", str(tmp_path / "runs")])
    assert res.exit_code != 0
    assert "Traceback" not in res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert any("--freeze" in line and "never learn" in line for line in lines), res.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
