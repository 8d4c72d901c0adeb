"""--freeze parsing and resolution against Ultralytics' own architecture yamls."""

from __future__ import annotations

import pytest

from yolo_tl.errors import TrainingError
from yolo_tl.training.freeze import FreezeSpec, architecture_lengths


def _arch(name: str) -> dict:
    from ultralytics.nn.tasks import yaml_model_load

    return yaml_model_load(name)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("backbone", "backbone"), ("none", "none"), ("0", "none"), ("3", "3"), (5, "5"),
     ("2,0,1", "0,1,2"), ("[4, 5]", "4,5"), ([7, 7, 1], "1,7"), (None, "none")],
)
def test_freeze_parse(value, expected):
    assert str(FreezeSpec.parse(value)) == expected


@pytest.mark.parametrize("value", ["lots", "-1", "1,x", "2.5", True])
def test_freeze_parse_rejects(value):
    with pytest.raises(TrainingError, match="freeze"):
        FreezeSpec.parse(value)


@pytest.mark.parametrize(("model", "backbone"), [("yolov8n.yaml", 10), ("yolo11n.yaml", 11), ("yolov8s.yaml", 10)])
def test_freeze_backbone_is_read_from_the_architecture(model, backbone):
    arch = _arch(model)
    # independent fact: Ultralytics' own yaml lists that many backbone modules
    assert len(arch["backbone"]) == backbone
    assert FreezeSpec.parse("backbone").resolve(arch) == list(range(backbone))


def test_freeze_backbone_follows_a_custom_architecture():
    arch = _arch("yolov8n.yaml")
    arch = {**arch, "backbone": arch["backbone"][:7]}  # a made-up, shorter backbone
    assert FreezeSpec.parse("backbone").resolve(arch) == list(range(7))


def test_freeze_count_list_none_resolve():
    arch = _arch("yolov8n.yaml")
    assert FreezeSpec.parse("4").resolve(arch) == [0, 1, 2, 3]
    assert FreezeSpec.parse("0,2,9").resolve(arch) == [0, 2, 9]
    assert FreezeSpec.parse("none").resolve(arch) == []


def test_freeze_rejects_layers_that_do_not_exist_or_everything():
    arch = _arch("yolov8n.yaml")
    n_backbone, n_layers = architecture_lengths(arch)
    assert (n_backbone, n_layers) == (10, 23)
    with pytest.raises(TrainingError, match="layer 40 does not exist"):
        FreezeSpec.parse("0,40").resolve(arch)
    with pytest.raises(TrainingError, match="nothing to train"):
        FreezeSpec.parse(str(n_layers)).resolve(arch)


def test_freeze_backbone_needs_a_backbone_section():
    with pytest.raises(TrainingError, match="no 'backbone' section"):
        FreezeSpec.parse("backbone").resolve({"head": []})
