"""Classic YOLOv5 checkpoints (ultralytics/yolov5) as transfer sources, on the real COCO yolov5n file.

The reference for every tensor is torch's own unpickling of the file, with stand-in ``models.common`` /
``models.yolo`` modules (empty nn.Module subclasses) so that torch.load can rebuild the module tree and
nn.Module.state_dict() can name its tensors: independent of yolo-tl's restricted reader. The refused
files are crafted from the real one through the same stand-ins.
"""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from yolo_tl.cli import app
from yolo_tl.errors import WeightsError

REPO = Path(__file__).resolve().parents[2]
CLASSIC = REPO.parent / "shared" / "weights" / "yolov5n-v6.1-coco.pt"
CARRIED = 342  # ../shared/weights/SOURCE.md: layers 0-23 of yolov5nu, 342 tensors
STAND_INS = {"models.common": ["Conv", "C3", "Bottleneck", "SPPF", "Concat"],
             "models.yolo": ["Model", "Detect", "Segment"]}


@pytest.fixture(scope="module")
def classic() -> Path:
    if not CLASSIC.is_file():
        pytest.skip(f"real YOLOv5 checkpoint not found at {CLASSIC} (../shared beside the repo)")
    return CLASSIC


@pytest.fixture
def stand_ins(monkeypatch) -> dict[str, type]:
    """Empty nn.Module classes under the yolov5 repository's module names, for torch.load / torch.save."""
    import torch

    made: dict[str, type] = {}
    monkeypatch.setitem(sys.modules, "models", types.ModuleType("models"))
    for mod_name, classes in STAND_INS.items():
        mod = types.ModuleType(mod_name)
        for cls in classes:
            made[cls] = type(cls, (torch.nn.Module,), {"__module__": mod_name, "__qualname__": cls})
            setattr(mod, cls, made[cls])
        monkeypatch.setitem(sys.modules, mod_name, mod)
    return made


def _reference(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def _layer(key: str) -> int:
    return int(key.split(".")[1])


def test_backbone_and_neck_carried_bit_exact(classic, stand_ins, tmp_path):
    """Every tensor of layers 0-23 in the converted checkpoint equals the file's: name, shape, dtype, bits."""
    import torch

    from yolo_tl.model.convert import convert_classic_yolov5

    ref = {k: v for k, v in _reference(classic)["model"].state_dict().items() if _layer(k) < 24}
    assert len(ref) == CARRIED
    out = tmp_path / "converted.pt"
    report = convert_classic_yolov5(classic, out, nc=3)
    assert (report.carried_tensors, report.carried_layers, report.new_layers) == (CARRIED, (0, 23), (24,))
    converted = torch.load(out, map_location="cpu", weights_only=False)  # Ultralytics' own classes
    model = converted["model"]
    assert type(model).__module__ == "ultralytics.nn.tasks" and type(model.model[-1]).__name__ == "Detect"
    got = model.state_dict()
    for key, tensor in ref.items():
        assert key in got, key
        assert got[key].shape == tensor.shape and got[key].dtype == tensor.dtype, key
        assert torch.equal(got[key].view(torch.int16), tensor.view(torch.int16)) if tensor.dtype == torch.float16 \
            else torch.equal(got[key], tensor), key
    # the head is Ultralytics' anchor-free Detect with 3 classes, nothing of the file's 80-class head
    head = {k: v for k, v in got.items() if _layer(k) >= 24}
    assert head and not any(k in ref for k in head)
    assert got["model.24.cv3.0.2.weight"].shape[0] == 3
    assert converted["yolo_tl_conversion"]["carried_tensors"] == CARRIED


def test_converted_checkpoint_loads_in_ultralytics(classic, tmp_path):
    """Ultralytics' own loader takes the converted file as a 3-class detection model named from data.yaml."""
    from ultralytics import YOLO

    from yolo_tl.model.convert import convert_classic_yolov5

    data = tmp_path / "data.yaml"
    data.write_text("path: .\ntrain: images\nval: images\nnames: [rbc, wbc, platelets]\n")
    out = tmp_path / "c.pt"
    convert_classic_yolov5(classic, out, data=data)
    model = YOLO(str(out))
    assert model.task == "detect"
    assert model.names == {0: "rbc", 1: "wbc", 2: "platelets"}


def test_resolve_weights_sees_the_yolov5u_architecture(classic):
    """finetune's view: the yolov5nu layout, so --freeze backbone is layers 0-9 and --lr-factors resolve."""
    from yolo_tl.model.weights import resolve_weights
    from yolo_tl.training.freeze import FreezeSpec
    from yolo_tl.training.lr_factors import parse_lr_factors, resolve_lr_factors

    resolved = resolve_weights(str(classic))
    assert resolved.classic and resolved.task == "detect" and resolved.nc == 80
    assert resolved.names[0] == "person" and resolved.names[2] == "car"
    assert FreezeSpec.parse("backbone").resolve(resolved.model_yaml) == list(range(10))
    factors = resolve_lr_factors(parse_lr_factors("backbone=0.1,neck=0.5"), resolved.model_yaml)
    assert factors[0] == 0.1 and factors[9] == 0.1 and factors[10] == 0.5


def _craft(classic: Path, out: Path, change) -> Path:
    import torch

    ckpt = _reference(classic)
    change(ckpt["model"])
    torch.save(ckpt, out)
    return out


def _reshape(model) -> None:
    import torch

    conv = model.model[7].conv
    conv.weight = torch.nn.Parameter(conv.weight[: conv.weight.shape[0] // 2].clone())


def _rename(model) -> None:
    c3 = model.model[4]
    c3._modules["cv9"] = c3._modules.pop("cv3")


def _segment(model) -> None:
    model.model[24].__class__ = sys.modules["models.yolo"].Segment


@pytest.mark.parametrize(("change", "needles"), [
    (_reshape, ("layer 7", "model.7.conv.weight", "[128, 128, 3, 3] in the file", "[256, 128, 3, 3] in")),
    (_rename, ("layer 4", "model.4.cv9")),
    (_segment, ("segmentation", "layer 24", "Segment")),
])
def test_mismatching_checkpoint_refused_naming_file_and_layer(classic, stand_ins, tmp_path, change, needles):
    from yolo_tl.model.convert import convert_classic_yolov5

    bad = _craft(classic, tmp_path / "bad.pt", change)
    out = tmp_path / "out.pt"
    with pytest.raises(WeightsError) as err:
        convert_classic_yolov5(bad, out, nc=3)
    text = str(err.value)
    assert "\n" not in text and str(bad) in text
    for needle in needles:
        assert needle in text, (needle, text)
    assert not out.exists() and not list(tmp_path.glob(".out.pt*"))


def _custom_width(model) -> None:
    model.yaml = {**model.yaml, "width_multiple": 0.3}


def test_custom_scale_in_yaml_refused(classic, stand_ins, tmp_path):
    from yolo_tl.model.convert import convert_classic_yolov5

    bad = _craft(classic, tmp_path / "custom.pt", _custom_width)
    with pytest.raises(WeightsError, match="custom architecture: depth_multiple 0.33 / width_multiple 0.3"):
        convert_classic_yolov5(bad, tmp_path / "out.pt", nc=3)


def test_scale_found_from_tensors_without_yaml(classic, stand_ins, tmp_path):
    """A checkpoint whose model lost its yaml: the scale comes from layer 0's width, then every shape is checked."""
    from yolo_tl.model.convert import convert_classic_yolov5

    def drop_yaml(model) -> None:
        del model.yaml

    no_yaml = _craft(classic, tmp_path / "no_yaml.pt", drop_yaml)
    report = convert_classic_yolov5(no_yaml, tmp_path / "out.pt", nc=3)
    assert (report.scale, report.p6, report.carried_tensors) == ("n", False, CARRIED)


def test_truncated_file_refused(classic, tmp_path):
    from yolo_tl.model.weights import resolve_weights

    bad = tmp_path / "yolov5n.pt"
    bad.write_bytes(classic.read_bytes()[: CLASSIC.stat().st_size // 2])
    with pytest.raises(WeightsError) as err:
        resolve_weights(str(bad))
    assert str(bad) in str(err.value) and "truncated" in str(err.value)


class _Probe:
    """Unpickling this calls os.system: what a hostile checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_no_code_from_the_file_runs(classic, stand_ins, tmp_path):
    """A probe inside the checkpoint, and a file that is only a probe: neither runs; the control shows it would."""
    import torch

    from yolo_tl.model.classic_yolov5 import Placeholder, read_restricted
    from yolo_tl.model.convert import convert_classic_yolov5

    marker = tmp_path / "ran"
    inside = tmp_path / "with_probe.pt"
    ckpt = _reference(classic)
    ckpt["opt"] = _Probe(marker)
    torch.save(ckpt, inside)
    only = tmp_path / "only_probe.pt"
    torch.save({"model": _Probe(marker)}, only)

    assert isinstance(read_restricted(inside)["opt"], Placeholder)
    report = convert_classic_yolov5(inside, tmp_path / "c.pt", nc=2)  # the rest is still a usable checkpoint
    assert report.carried_tensors == CARRIED
    with pytest.raises(WeightsError, match="not a classic YOLOv5 checkpoint"):
        convert_classic_yolov5(only, tmp_path / "d.pt", nc=2)
    assert not marker.exists()

    torch.load(only, weights_only=False)  # control: plain torch.load runs it
    assert marker.exists()


def test_cli_convert_and_predict_refusal(classic, tmp_path):
    runner = CliRunner()
    out = tmp_path / "yolov5n-converted.pt"
    first = runner.invoke(app, ["weights", "convert", str(classic), str(out), "--nc", "2", "--json"])
    assert first.exit_code == 0, first.output
    assert out.is_file() and json.loads(first.stdout)["carried_tensors"] == CARRIED
    again = runner.invoke(app, ["weights", "convert", str(classic), str(out), "--nc", "2"])
    assert again.exit_code == 1 and "already exists" in again.output

    from PIL import Image

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    image = tmp_path / "images" / "img.jpg"
    Image.new("RGB", (64, 64), "gray").save(image)
    (tmp_path / "labels" / "img.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp_path / "data.yaml").write_text("path: .\ntrain: images\nval: images\nnames: [a, b]\n")
    for argv in (["predict", str(classic), str(image), "--out", str(tmp_path / "p")],
                 ["evaluate", str(classic), str(tmp_path / "data.yaml")],
                 ["export", str(classic), "--format", "torchscript", "--out", str(tmp_path / "e")]):
        result = runner.invoke(app, argv)
        assert result.exit_code == 1, result.output
        assert "classic YOLOv5 checkpoint" in result.output and "convert or fine-tune it first" in result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "p").exists() and not (tmp_path / "e").exists()


# a short fine-tune at a small size on 2 CPUs; nbs = batch so every batch is an optimizer step, no warm-up
EPOCHS = 1  # measured (results.csv, same settings): COCO backbone mAP50 0.390, scratch 0.000
MARGIN = 0.2  # half the measured gap
SHORT = {"imgsz": 160, "batch": 8, "workers": 0, "device": "cpu", "seed": 0,
         "extra": {"plots": False, "nbs": 8, "warmup_epochs": 0}}


@pytest.mark.slow
def test_finetune_from_coco_backbone_starts_far_above_scratch(classic, stand_ins, bccd_yolo, tmp_path):
    """BCCD (real blood-cell photos), EPOCHS epoch(s), --freeze backbone: the carried COCO features give a
    validation mAP50 far above the same model from random weights, and the frozen layers stay the file's."""
    import torch

    from yolo_tl.training.finetune import finetune

    ref = {k: v for k, v in _reference(classic)["model"].state_dict().items() if _layer(k) < 10}
    runs = tmp_path / "runs"
    carried = finetune(bccd_yolo, weights=str(classic), freeze="backbone", epochs=EPOCHS, project=runs,
                       name="coco", **SHORT)
    scratch = finetune(bccd_yolo, weights="yolov5nu.yaml", epochs=EPOCHS, project=runs, name="scratch", **SHORT)

    record = json.loads(carried.run_json.read_text())
    conv = record["weights"]["conversion"]
    assert (conv["carried_tensors"], conv["carried_layers"], conv["new_layers"], conv["nc"]) == (CARRIED, [0, 23],
                                                                                                 [24], 3)
    assert record["frozen_layers"] == list(range(10)) and record["weights"]["kind"] == "classic-yolov5"
    best = torch.load(carried.best, map_location="cpu", weights_only=False)
    best_sd = (best.get("ema") or best["model"]).state_dict()
    for key, tensor in ref.items():  # frozen backbone: still the file's own bits
        assert torch.equal(best_sd[key], tensor), key
    print(f"mAP50 after {EPOCHS} epoch(s): COCO backbone {carried.metrics.map50:.3f}, "
          f"scratch {scratch.metrics.map50:.3f}")
    assert carried.metrics.map50 >= MARGIN + scratch.metrics.map50
