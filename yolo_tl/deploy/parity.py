"""Does the exported model answer like the .pt? Raw outputs, matched boxes, mAP and CPU latency.

Three levels, from the tightest to the one a user cares about:

- raw: the network's output tensor on one random input, PyTorch vs the export's own runtime
  (onnxruntime / OpenVINO / torch.jit), without Ultralytics' pre- or post-processing;
- boxes: predictions on a few real images after Ultralytics' letterbox and NMS, matched per class by
  IoU, and the largest box-corner difference in pixels;
- mAP: Ultralytics' validator on the same split with the same settings (see ``export.py``).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from yolo_tl.model.weights import DetectorWeights


def raw_output_diff(pt_path: Path, exported: DetectorWeights, imgsz: int, *, seed: int = 0,
                    f32: bool = True) -> float:
    """max |export - torch| / max |torch| of the raw output on one random input (batch 1).

    ``f32``: run OpenVINO in float32. Its CPU plugin otherwise picks the fastest precision the CPU
    has (bfloat16 on CPUs with AMX or AVX512-BF16), which is what Ultralytics runs it with.
    """
    import torch
    from ultralytics.nn.tasks import load_checkpoint

    model, _ = load_checkpoint(pt_path, device="cpu", fuse=True)
    model = model.float().eval()
    x = torch.from_numpy(np.random.default_rng(seed).random((1, 3, imgsz, imgsz), dtype=np.float32))
    with torch.inference_mode():
        ref = model(x)
    ref = (ref[0] if isinstance(ref, (list, tuple)) else ref).numpy()
    got = run_exported(exported, x.numpy(), f32=f32)
    if got.shape != ref.shape:
        raise ValueError(f"output shape {got.shape} differs from PyTorch's {ref.shape}")
    return float(np.abs(got - ref).max() / max(float(np.abs(ref).max()), 1e-12))


def openvino_cpu_precision() -> str:
    """The precision OpenVINO's CPU plugin runs a float model in by default on this machine (f32, bf16, f16)."""
    import openvino

    return openvino.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").to_string()


def run_exported(exported: DetectorWeights, x: np.ndarray, *, f32: bool = True) -> np.ndarray:
    """The first output of an exported model on ``x`` (NCHW float32), in its own runtime."""
    if exported.format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: x})[0]
    if exported.format == "openvino":
        import openvino

        config = {"INFERENCE_PRECISION_HINT": openvino.Type.f32} if f32 else {}
        compiled = openvino.Core().compile_model(str(next(exported.path.glob("*.xml"))), "CPU", config)
        return np.asarray(compiled(x)[0])
    import torch

    module = torch.jit.load(str(exported.path), map_location="cpu")
    with torch.inference_mode():
        out = module(torch.from_numpy(x))
    return (out[0] if isinstance(out, (list, tuple)) else out).numpy()


@dataclass
class BoxParity:
    """Predictions of the .pt and the export on the same images, matched per class."""

    images: int
    pt_boxes: int
    exported_boxes: int
    matched: int
    max_corner_px: float | None  # None when no box was matched

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def predict_xyxy(model: Any, images: list[Path], *, imgsz: int, conf: float,
                 rect: bool = True) -> dict[str, list[tuple]]:
    """image path -> [(class, x1, y1, x2, y2, score)] in pixels, on CPU, one image at a time.

    ``rect=False`` makes a .pt letterbox to the full square, as a fixed-size export must; with the
    default, Ultralytics pads a .pt's input only to the next multiple of the stride.
    """
    out: dict[str, list[tuple]] = {}
    for path in images:
        result = model.predict(str(path), imgsz=imgsz, conf=conf, device="cpu", verbose=False, rect=rect)[0]
        boxes = result.boxes
        out[str(path)] = [(int(c), *map(float, xyxy), float(s))
                          for xyxy, c, s in zip(boxes.xyxy.tolist(), boxes.cls.tolist(), boxes.conf.tolist())]
    return out


def match_boxes(a: list[tuple], b: list[tuple], *, min_iou: float = 0.5) -> list[tuple[tuple, tuple]]:
    """Greedy one-to-one matching of same-class boxes by IoU (highest first), IoU >= ``min_iou``."""
    pairs = []
    for i, box_a in enumerate(a):
        for j, box_b in enumerate(b):
            if box_a[0] == box_b[0]:
                iou = _iou(box_a[1:5], box_b[1:5])
                if iou >= min_iou:
                    pairs.append((iou, i, j))
    used_a: set[int] = set()
    used_b: set[int] = set()
    matched = []
    for _, i, j in sorted(pairs, reverse=True):
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            matched.append((a[i], b[j]))
    return matched


def box_parity(pt_model: Any, exported_model: Any, images: list[Path], *, imgsz: int, conf: float,
               same_letterbox: bool = True) -> BoxParity:
    """Match the two models' boxes on ``images``; the largest corner difference in pixels.

    ``same_letterbox``: both get the square letterbox (isolates the export); otherwise each gets
    what ``predict`` gives it by default (the .pt a rectangular input), which is what a user compares.
    """
    ours = predict_xyxy(pt_model, images, imgsz=imgsz, conf=conf, rect=not same_letterbox)
    theirs = predict_xyxy(exported_model, images, imgsz=imgsz, conf=conf)
    worst: float | None = None
    matched = 0
    for key, boxes in ours.items():
        for box_a, box_b in match_boxes(boxes, theirs[key]):
            matched += 1
            diff = max(abs(p - q) for p, q in zip(box_a[1:5], box_b[1:5]))
            worst = diff if worst is None else max(worst, diff)
    return BoxParity(len(images), sum(map(len, ours.values())), sum(map(len, theirs.values())), matched,
                     None if worst is None else round(worst, 4))


def latencies(models: dict[str, Any], images: list[Path], *, imgsz: int, runs: int = 20,
              warmup: int = 3, block: int = 5) -> dict[str, float]:
    """Median wall time of one ``predict`` call per model (batch 1, CPU, pre- and post-processing included), ms.

    The models take turns in blocks of ``block`` calls (AAAAA BBBBB AAAAA ...) on the same frames, so a
    load change on a shared machine hits all of them alike. Blocks, not single calls: onnxruntime's
    threads keep spinning for a while after a run and would otherwise slow the next PyTorch call.
    """
    import cv2

    frames = [cv2.imread(str(p)) for p in images]
    frames = [f for f in frames if f is not None]
    if not frames:
        raise ValueError("no readable image for the latency measurement")
    for i in range(warmup):
        for model in models.values():
            model.predict(frames[i % len(frames)], imgsz=imgsz, device="cpu", verbose=False)
    times: dict[str, list[float]] = {key: [] for key in models}
    for start in range(0, runs, block):
        for key, model in models.items():
            for i in range(start, min(start + block, runs)):
                t0 = time.perf_counter()
                model.predict(frames[i % len(frames)], imgsz=imgsz, device="cpu", verbose=False)
                times[key].append((time.perf_counter() - t0) * 1000.0)
    return {key: round(statistics.median(values), 3) for key, values in times.items()}


def _iou(a: tuple, b: tuple) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
