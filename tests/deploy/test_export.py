"""yolo-tl export: each runtime's own output against PyTorch's, mAP and box parity, export.json, errors.

The references are independent of yolo-tl: the raw network output comes from torch on the checkpoint's
unfused model and from onnxruntime / OpenVINO called directly (no Ultralytics); mAP from Ultralytics'
validator; hashes from hashlib; the opset from onnx itself.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from yolo_tl.cli import app
from yolo_tl.deploy.export import export
from yolo_tl.errors import OutputError, WeightsError

pytestmark = pytest.mark.slow
runner = CliRunner()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _torch_output(pt: Path, x: np.ndarray) -> np.ndarray:
    """The checkpoint's own model (unfused, float32) on ``x``: what the export must reproduce."""
    import torch

    ckpt = torch.load(pt, map_location="cpu", weights_only=False)
    model = (ckpt.get("ema") or ckpt["model"]).float().eval()
    with torch.inference_mode():
        out = model(torch.from_numpy(x))
    return (out[0] if isinstance(out, (list, tuple)) else out).numpy()


def _rel(got: np.ndarray, ref: np.ndarray) -> float:
    assert got.shape == ref.shape
    return float(np.abs(got - ref).max() / np.abs(ref).max())


def _one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.output
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.fixture(scope="module")
def onnx_export(tiny_base_weights, tmp_path_factory):
    return export(tiny_base_weights, format="onnx", imgsz=64, out=tmp_path_factory.mktemp("onnx"))


def test_onnx_export_runs_in_onnxruntime_like_pytorch(onnx_export, tiny_base_weights):
    import onnx
    import onnxruntime
    import torch

    x = np.random.default_rng(1).random((1, 3, 64, 64), dtype=np.float32)
    session = onnxruntime.InferenceSession(str(onnx_export.model), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert _rel(got, _torch_output(tiny_base_weights, x)) <= 1e-4

    record = json.loads(onnx_export.export_json.read_text())
    assert record["sha256"] == _sha(onnx_export.model)
    assert record["source_sha256"] == _sha(tiny_base_weights)
    names = torch.load(tiny_base_weights, map_location="cpu", weights_only=False)["model"].names
    assert record["names"] == {str(k): v for k, v in names.items()}
    model = onnx.load(str(onnx_export.model))
    assert record["opset"] == next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    assert record["versions"]["onnxruntime"] == onnxruntime.__version__
    assert record["versions"]["torch"] == torch.__version__
    assert record["imgsz"] == 64 and record["dynamic"] is False and record["format"] == "onnx"
    assert 0 <= record["parity"]["raw_output_max_rel_diff"] <= 1e-4
    assert sorted(p.name for p in onnx_export.export_json.parent.iterdir()) == ["best.onnx", "export.json"]


def test_openvino_export_runs_in_openvino_like_pytorch(tiny_base_weights, tiny_yolo_data, tmp_path):
    import openvino

    report = export(tiny_base_weights, format="openvino", imgsz=64, out=tmp_path)
    assert report.model == tmp_path / "best_openvino_model"
    x = np.random.default_rng(2).random((1, 3, 64, 64), dtype=np.float32)
    core = openvino.Core()
    f32 = {"INFERENCE_PRECISION_HINT": openvino.Type.f32}  # the CPU default may be bf16 (see export.json)
    compiled = core.compile_model(str(report.model / "best.xml"), "CPU", f32)
    assert _rel(np.asarray(compiled(x)[0]), _torch_output(tiny_base_weights, x)) <= 1e-4
    record = json.loads(report.export_json.read_text())
    from importlib.metadata import version

    assert record["versions"]["openvino"] == version("openvino")
    default = core.get_property("CPU", "INFERENCE_PRECISION_HINT").to_string()
    assert record["parity"]["openvino_cpu_precision"] == default
    files = sorted(p.name for p in report.model.iterdir())
    digest = hashlib.sha256()
    for name in files:
        digest.update(name.encode() + b"\0" + hashlib.sha256((report.model / name).read_bytes()).digest())
    assert record["sha256"] == digest.hexdigest()
    # predict takes the folder, with the class names it carries (no .pt beside it)
    import torch

    import yolo_tl

    names = torch.load(tiny_base_weights, map_location="cpu", weights_only=False)["model"].names
    images = sorted((tiny_yolo_data.parent / "images" / "val").glob("*.jpg"))
    pred = yolo_tl.predict(report.model, images[0], out=tmp_path / "pred", imgsz=64, conf=0.0, save_images=False)
    assert pred.names == names and pred.images == 1


def test_dynamic_onnx_takes_another_input_size(tiny_base_weights, tmp_path):
    import onnxruntime

    report = export(tiny_base_weights, format="onnx", imgsz=64, dynamic=True, out=tmp_path)
    record = json.loads(report.export_json.read_text())
    assert record["dynamic"] is True
    session = onnxruntime.InferenceSession(str(report.model), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(3).random((2, 3, 96, 128), dtype=np.float32)  # batch 2, not the export size
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert _rel(got, _torch_output(tiny_base_weights, x)) <= 1e-4


@pytest.fixture(scope="module")
def confident_detector(bccd_detector, tmp_path_factory) -> Path:
    """The session's BCCD detector with its class-logit biases raised by 4.

    Two CPU epochs leave every score near 0.0003, all but tied, so "the same boxes" would hinge on
    float noise in the NMS order. Raising the biases gives scores around 0.12 that still vary with
    the input: a network whose answers can be compared box by box (parity is about reproducing the
    function, not about its accuracy).
    """
    import torch

    ckpt = torch.load(bccd_detector, map_location="cpu", weights_only=False)
    for seq in ckpt["model"].model[-1].cv3:
        seq[-1].bias.data += 4.0
    ckpt["ema"] = None
    path = tmp_path_factory.mktemp("confident") / "best.pt"
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope="module")
def bccd_onnx(confident_detector, bccd_yolo, tmp_path_factory):
    """CLI export of that detector to ONNX with parity on BCCD val (87 images) at imgsz 128."""
    out = tmp_path_factory.mktemp("bccd_onnx")
    result = runner.invoke(app, ["export", str(confident_detector), "--format", "onnx", "--data", str(bccd_yolo),
                                 "--imgsz", "128", "--conf", "0.1", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), out


def test_export_map_parity_on_val_matches_ultralytics(bccd_onnx, confident_detector, bccd_yolo):
    from ultralytics import YOLO

    bccd_detector = confident_detector
    record, out = bccd_onnx
    assert record["model"] == str(out / "best.onnx")
    assert json.loads((out / "export.json").read_text())["parity"] == record["parity"]
    parity = record["parity"]
    # the .pt figure is Ultralytics' validator with the stated settings
    ref = YOLO(str(bccd_detector)).val(data=str(bccd_yolo), split="val", imgsz=128, rect=False, batch=16,
                                       device="cpu", workers=0, plots=False, verbose=False,
                                       project=str(out.parent / "ref"), name="val")
    assert parity["pt"]["map50_95"] == pytest.approx(ref.box.map, abs=1e-6)
    assert parity["pt"]["map50"] == pytest.approx(ref.box.map50, abs=1e-6)
    # ... and the exported model, validated by Ultralytics straight from best.onnx, agrees with it
    onnx_val = YOLO(str(out / "best.onnx"), task="detect").val(
        data=str(bccd_yolo), split="val", imgsz=128, device="cpu", workers=0, plots=False, verbose=False,
        project=str(out.parent / "ref"), name="onnx")
    assert parity["exported"]["map50_95"] == pytest.approx(onnx_val.box.map, abs=1e-6)
    assert abs(onnx_val.box.map - ref.box.map) <= 0.005
    assert parity["map50_95_drop"] == pytest.approx(ref.box.map - onnx_val.box.map, abs=1e-5)
    # yolo-tl evaluate takes best.onnx and gives Ultralytics' own figures for it
    result = runner.invoke(app, ["evaluate", str(out / "best.onnx"), str(bccd_yolo), "--imgsz", "128", "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["metrics"]
    assert (metrics["map50"], metrics["map50_95"]) == pytest.approx((onnx_val.box.map50, onnx_val.box.map), abs=1e-9)
    assert parity["pt"]["latency_ms"] > 0 and parity["exported"]["latency_ms"] > 0
    boxes = parity["boxes"]
    assert boxes["pt_boxes"] > 0 and 0 < boxes["matched"] <= min(boxes["pt_boxes"], boxes["exported_boxes"])
    assert boxes["max_corner_px"] <= 0.05  # same square letterbox for both: only float noise is left
    default = parity["boxes_default_predict"]  # the .pt letterboxed to a rectangle, as predict does
    assert default["images"] == boxes["images"] and default["matched"] > 0


def _match(a: list[dict], b: list[dict]) -> list[tuple[dict, dict]]:
    """Same class, nearest box by largest corner distance (the test's own matching)."""
    pairs, used = [], set()
    for da in sorted(a, key=lambda d: -d["confidence"]):
        options = [(max(abs(p - q) for p, q in zip(da["xyxy"], db["xyxy"])), j) for j, db in enumerate(b)
                   if j not in used and db["class_id"] == da["class_id"]]
        if options:
            dist, j = min(options)
            used.add(j)
            pairs.append((da, b[j]))
    return pairs


def test_predict_and_analyze_accept_the_onnx_export(bccd_onnx, confident_detector, bccd_yolo, tmp_path):
    import yolo_tl

    bccd_detector = confident_detector
    _, out = bccd_onnx
    onnx_path = out / "best.onnx"
    val_images = sorted((bccd_yolo.parent / "images" / "val").iterdir())[:6]
    src = tmp_path / "imgs"
    src.mkdir()
    for p in val_images:
        (src / p.name).symlink_to(p)
    pt = yolo_tl.predict(bccd_detector, src, out=tmp_path / "pt", conf=0.1, imgsz=128, save_images=False)
    ox = yolo_tl.predict(onnx_path, src, out=tmp_path / "onnx", conf=0.1, imgsz=128, save_images=False)
    assert ox.names == pt.names  # the class names the export carries
    a = json.loads(pt.predictions_json.read_text())["images"]
    b = json.loads(ox.predictions_json.read_text())["images"]
    assert [r["image"] for r in a] == [r["image"] for r in b]
    total = sum(len(r["detections"]) for r in a)
    assert total > 0, "the detector must predict something for this comparison to mean anything"
    matched = 0
    for ra, rb in zip(a, b):
        confident = [d for d in ra["detections"] if d["confidence"] >= 0.102]  # clear of the 0.1 threshold
        pairs = _match(confident, rb["detections"])
        assert len(pairs) == len(confident)
        for da, db in pairs:
            assert max(abs(p - q) for p, q in zip(da["xyxy"], db["xyxy"])) <= 1.0
        matched += len(pairs)
    assert matched > 0

    report = yolo_tl.analyze(bccd_yolo, weights=onnx_path, split="val", name="test-export-onnx", imgsz=128,
                             compare_ultralytics=False)
    import fiftyone as fo

    ds = fo.load_dataset(report.name)
    labels = set(ds.distinct("predictions.detections.label"))
    assert labels and labels <= {"RBC", "WBC", "Platelets"}
    assert len(ds) == 87
    ds.delete()


# --- errors: one line, exit 1, nothing written ---

def test_unknown_format_and_non_detection_weights(tiny_base_weights, tmp_path):
    from ultralytics import YOLO

    line = _one_line_error(runner.invoke(app, ["export", str(tiny_base_weights), "--format", "tflite",
                                               "--out", str(tmp_path / "o")]))
    assert "--format" in line and "unknown format 'tflite'" in line and "onnx, openvino, torchscript" in line
    seg = tmp_path / "seg.pt"
    YOLO("yolov8n-seg.yaml").save(seg)
    line = _one_line_error(runner.invoke(app, ["export", str(seg), "--out", str(tmp_path / "o")]))
    assert str(seg) in line and "segment-task model" in line
    assert not (tmp_path / "o").exists()


def test_missing_runtime_names_the_extra(monkeypatch, tiny_base_weights, onnx_export, tiny_yolo_data, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    line = _one_line_error(runner.invoke(app, ["export", str(tiny_base_weights), "--format", "onnx",
                                               "--out", str(tmp_path / "o")]))
    assert "onnxruntime" in line and "pip install 'yolo-tl[export]'" in line
    assert not (tmp_path / "o").exists()
    # the same for running an exported model
    images = tiny_yolo_data.parent / "images" / "val"
    line = _one_line_error(runner.invoke(app, ["predict", str(onnx_export.model), str(images), "--out",
                                               str(tmp_path / "p")]))
    assert "running a model in onnx needs onnxruntime" in line and "yolo-tl[export]" in line
    assert not (tmp_path / "p").exists()


def test_ultralytics_never_pip_installs(monkeypatch):
    """Inside the guard an unmet requirement raises our error and no installer is started."""
    import subprocess

    from ultralytics.utils import checks

    from yolo_tl.model.runtime import no_autoinstall

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"a subprocess was started: {args}")

    monkeypatch.setattr(subprocess, "check_output", no_subprocess)
    monkeypatch.setattr(subprocess, "run", no_subprocess)
    with no_autoinstall():
        import ultralytics.engine.exporter as exporter

        with pytest.raises(WeightsError, match=r"no-such-package-xyz.*yolo-tl\[export\]"):
            exporter.check_requirements("no-such-package-xyz>=1.0")
        assert checks.check_requirements("no-such-package-xyz", install=False) is False  # a probe stays a probe
    assert exporter.check_requirements is checks.check_requirements  # restored


def test_out_not_writable(tiny_base_weights, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="not writable"):
        export(tiny_base_weights, format="torchscript", imgsz=64, out=blocker / "sub")
    line = _one_line_error(runner.invoke(app, ["export", str(tiny_base_weights), "--format", "torchscript",
                                               "--imgsz", "64", "--out", str(blocker)]))
    assert str(blocker) in line and "not a folder" in line
    assert blocker.read_text() == "x"


def test_map_drop_above_max_drop_fails_and_publishes_nothing(tiny_base_weights, tiny_yolo_data, tmp_path):
    out = tmp_path / "out"
    line = _one_line_error(runner.invoke(app, [
        "export", str(tiny_base_weights), "--format", "torchscript", "--imgsz", "64", "--data", str(tiny_yolo_data),
        "--out", str(out), "--max-drop", "-1"]))
    assert "mAP50-95" in line and "--max-drop -1" in line and "nothing was written" in line
    assert not out.exists()  # no model, no export.json, no staging folder, not even the folder it made
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    _one_line_error(runner.invoke(app, [
        "export", str(tiny_base_weights), "--format", "torchscript", "--imgsz", "64", "--data", str(tiny_yolo_data),
        "--out", str(out), "--max-drop", "-1"]))
    assert [p.name for p in out.iterdir()] == ["keep.txt"]  # a folder that was there stays, untouched


def test_finetune_refuses_an_exported_model(onnx_export, tiny_yolo_data, tmp_path):
    before = _sha(onnx_export.model)
    line = _one_line_error(runner.invoke(app, ["finetune", str(tiny_yolo_data), "--weights", str(onnx_export.model),
                                               "--project", str(tmp_path / "runs")]))
    assert str(onnx_export.model) in line and "exported onnx model" in line and "best.pt" in line
    assert _sha(onnx_export.model) == before and not (tmp_path / "runs").exists()
