"""export: a deployable model (ONNX, OpenVINO, TorchScript) and the proof that it answers like the .pt.

Ultralytics' exporter does the conversion, on CPU, offline, installing nothing (``runtime.py``).
The model is built in a hidden staging folder inside ``out`` and moved into place only when every
check passed, so a failed or broken export leaves nothing that looks usable. Beside it,
``export.json`` records what was exported, from what, with which versions, and the parity figures:

- raw output difference on one random input (always);
- with ``data``: mAP50 / mAP50-95 of the .pt and of the export on the same split with the same
  settings (square letterbox, ``rect=False``: a fixed-size export cannot run rectangular batches, and
  that difference alone moves mAP), CPU latency per image of each, and the largest box-corner
  difference between their matched predictions on a few images. A mAP50-95 drop above
  ``max_drop`` is an error.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yolo_tl._upstream.ultralytics import offline_guards
from yolo_tl.dataset.handoff import read_data_info, ultralytics_data_yaml
from yolo_tl.errors import OutputError, TrainingError, WeightsError, first_line
from yolo_tl.model.class_names import match_classes
from yolo_tl.model.runtime import RUNTIME_OF, check_format, check_runtime, no_autoinstall, package_version
from yolo_tl.model.weights import (
    DetectorWeights,
    refuse_classic,
    resolve_detector,
    resolve_weights,
)

PathLike = str | Path
log = logging.getLogger(__name__)

RAW_TOLERANCE = 1e-4  # relative; float32 exports differ from PyTorch by ~1e-6


@dataclass
class ExportReport:
    """What ``export`` wrote and what it measured."""

    model: Path
    export_json: Path
    format: str
    imgsz: int
    dynamic: bool
    names: dict[int, str]
    record: dict[str, Any] = field(repr=False)

    @property
    def parity(self) -> dict[str, Any]:
        return self.record["parity"]

    def to_dict(self) -> dict[str, Any]:
        return {"model": str(self.model), "export_json": str(self.export_json), **self.record}


def export(
    weights: PathLike,
    *,
    format: str = "onnx",  # noqa: A002  (the Ultralytics and CLI name)
    data: PathLike | None = None,
    split: str = "val",
    imgsz: int = 640,
    dynamic: bool = False,
    out: PathLike | None = None,
    max_drop: float = 0.005,
    opset: int | None = None,
    batch: int = 16,
    parity_images: int = 8,
    parity_conf: float = 0.25,
    latency_runs: int = 20,
) -> ExportReport:
    """Export ``weights`` (.pt) to ``format`` in ``out`` (default: ``<weights dir>/export_<format>``).

    With ``data`` (a data.yaml), both models are validated on ``split`` and compared; a mAP50-95 drop
    above ``max_drop`` raises and publishes nothing.
    """
    fmt = check_format(format)
    check_runtime(fmt, purpose="export")
    if imgsz < 32 or imgsz % 32:
        raise TrainingError(f"must be a positive multiple of 32 (the model's stride), got {imgsz}", field="imgsz")
    if fmt != "onnx" and opset is not None:
        raise TrainingError("only applies to --format onnx", field="opset")
    source = resolve_weights(weights)
    refuse_classic(source)
    if source.from_scratch:
        raise WeightsError("export needs trained weights (.pt), not a model .yaml", path=source.path, field="weights")
    info = None
    if data is not None:
        info = read_data_info(data, need=(split,))
        match_classes(source.names, info.names_dict, path=source.path, data_yaml=info.path, by_name=False)
    out_dir = Path(out) if out is not None else source.path.parent / f"export_{fmt}"
    out_dir = out_dir.expanduser().resolve()
    created = not out_dir.exists()
    _prepare_out(out_dir)
    staging = Path(tempfile.mkdtemp(prefix=".yolo-tl-export-", dir=out_dir))
    final = None
    try:
        artifact = _run_exporter(source.path, staging, fmt, imgsz=imgsz, dynamic=dynamic, opset=opset)
        exported = resolve_detector(artifact)
        record = _base_record(source, exported, fmt, imgsz, dynamic)
        raw = _raw_diff(source.path, exported, imgsz)
        record["parity"] = {"raw_output_max_rel_diff": raw, "raw_tolerance": RAW_TOLERANCE}
        if fmt == "openvino":  # what Ultralytics (and so predict / evaluate) runs it with on this CPU
            from yolo_tl.deploy.parity import openvino_cpu_precision

            record["parity"]["openvino_cpu_precision"] = openvino_cpu_precision()
            record["parity"]["raw_output_max_rel_diff_cpu_precision"] = _raw_diff(source.path, exported, imgsz,
                                                                                  f32=False)
        if raw > RAW_TOLERANCE:
            raise WeightsError(f"the exported model's raw output differs from PyTorch's by {raw:.2e} relative "
                               f"(tolerance {RAW_TOLERANCE:g}): the export is broken", path=source.path)
        if info is not None:
            record["parity"].update(_data_parity(source.path, exported, info.path, split, imgsz=imgsz, batch=batch,
                                                 max_drop=max_drop, n_images=parity_images, conf=parity_conf,
                                                 runs=latency_runs, staging=staging))
        record["out"] = str(out_dir)
        (staging / "export.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        final = _publish(staging, artifact.name, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if final is None and created:  # a failed export leaves no trace, not even the folder it made
            shutil.rmtree(out_dir, ignore_errors=True)
    log.info("exported %s to %s", source.path, final)
    return ExportReport(final, out_dir / "export.json", fmt, imgsz, dynamic, exported.names, record)


def _prepare_out(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise OutputError("exists and is not a folder", path=out, field="out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out, prefix=".yolo-tl-write-test-", delete=True)
        probe.close()
    except OSError as err:
        raise OutputError(f"not writable ({err.strerror or err})", path=out, field="out") from None
    return out


def _run_exporter(pt: Path, staging: Path, fmt: str, *, imgsz: int, dynamic: bool, opset: int | None) -> Path:
    """Ultralytics' exporter on a copy of ``pt`` in ``staging`` (it writes beside its input); the artifact."""
    from ultralytics import YOLO

    staged = staging / pt.name
    shutil.copy2(pt, staged)
    args: dict[str, Any] = {"format": fmt, "imgsz": imgsz, "dynamic": dynamic, "device": "cpu", "verbose": False}
    if opset is not None:
        args["opset"] = opset
    with offline_guards(), no_autoinstall():
        try:
            produced = YOLO(str(staged), task="detect").export(**args)
        except WeightsError:
            raise
        except Exception as err:  # noqa: BLE001  (the exporter raises many kinds)
            first = first_line(err)
            raise WeightsError(f"Ultralytics could not export to {fmt}: {first[:200]}", path=pt) from None
    staged.unlink()
    if not produced or not Path(produced).exists():
        raise WeightsError(f"Ultralytics' {fmt} export produced no model", path=pt)
    return Path(produced).resolve()


def _base_record(source: Any, exported: DetectorWeights, fmt: str, imgsz: int, dynamic: bool) -> dict[str, Any]:
    import torch
    import ultralytics

    from yolo_tl import __version__

    opset = None
    if fmt == "onnx":
        import onnx

        model = onnx.load(str(exported.path), load_external_data=False)
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    runtime = RUNTIME_OF[fmt]
    return {
        "format": fmt, "imgsz": imgsz, "dynamic": dynamic, "opset": opset,
        "model_file": exported.path.name, "sha256": exported.sha256,
        "source_weights": str(source.path), "source_sha256": source.sha256,
        "names": exported.names,
        "versions": {"yolo_tl": __version__, "ultralytics": ultralytics.__version__, "torch": torch.__version__,
                     runtime: torch.__version__ if runtime == "torch" else package_version(runtime)},
    }


def _raw_diff(pt: Path, exported: DetectorWeights, imgsz: int, *, f32: bool = True) -> float:
    from yolo_tl.deploy.parity import raw_output_diff

    try:
        return raw_output_diff(pt, exported, imgsz, f32=f32)
    except Exception as err:  # noqa: BLE001
        first = first_line(err)
        raise WeightsError(f"the exported {exported.format} model does not run in its runtime: {first[:200]}",
                           path=exported.path) from None


def _data_parity(pt: Path, exported: DetectorWeights, data_yaml: Path, split: str, *, imgsz: int, batch: int,
                 max_drop: float, n_images: int, conf: float, runs: int, staging: Path) -> dict[str, Any]:
    """Validate both models on ``split`` the same way; box-corner differences and latency on a few images."""
    from ultralytics import YOLO

    from yolo_tl.dataset.formats.yolo import load_data_yaml, split_images
    from yolo_tl.deploy.parity import box_parity, latencies
    from yolo_tl.model.metrics import DetectionMetrics

    info = load_data_yaml(data_yaml, error=TrainingError)
    images = split_images(info, split, error=TrainingError)[:n_images]
    handed = ultralytics_data_yaml(info, staging / "data", (split,))  # a relative path: read as we read it
    models = {"pt": YOLO(str(pt), task="detect"), "exported": YOLO(str(exported.path), task="detect")}
    figures: dict[str, Any] = {"data_yaml": str(data_yaml), "split": split,
                               "settings": {"imgsz": imgsz, "rect": False, "conf": 0.001, "iou": 0.7, "device": "cpu"}}
    with offline_guards(), no_autoinstall():
        for key, model in models.items():
            try:
                results = model.val(data=str(handed), split=split, imgsz=imgsz, batch=batch, rect=False,
                                    device="cpu", workers=0, plots=False, verbose=False, project=str(staging / "val"),
                                    name=key, exist_ok=True)
            except (RuntimeError, ValueError, FileNotFoundError) as err:
                first = first_line(err)
                raise TrainingError(f"Ultralytics validation of the {key} model failed: {first}",
                                    path=data_yaml) from err
            metrics = DetectionMetrics.from_ultralytics(results)
            figures[key] = {"map50": round(metrics.map50, 6), "map50_95": round(metrics.map50_95, 6)}
        for key, ms in latencies(models, images, imgsz=imgsz, runs=runs).items():
            figures[key]["latency_ms"] = ms
        figures["boxes"] = box_parity(models["pt"], models["exported"], images, imgsz=imgsz, conf=conf).to_dict()
        # what `predict` gives each by default: a .pt gets a rectangular letterbox, a fixed-size export a square
        figures["boxes_default_predict"] = box_parity(models["pt"], models["exported"], images, imgsz=imgsz,
                                                      conf=conf, same_letterbox=False).to_dict()
    figures["boxes_conf"] = conf
    figures["map50_drop"] = round(figures["pt"]["map50"] - figures["exported"]["map50"], 6)
    figures["map50_95_drop"] = round(figures["pt"]["map50_95"] - figures["exported"]["map50_95"], 6)
    figures["max_drop"] = max_drop
    if figures["map50_95_drop"] > max_drop:
        raise WeightsError(
            f"the exported model's mAP50-95 on {split} is {figures['exported']['map50_95']:.4f}, "
            f"{figures['map50_95_drop']:.4f} below the .pt's {figures['pt']['map50_95']:.4f} (--max-drop {max_drop}); "
            "nothing was written", path=pt)
    return figures


def _publish(staging: Path, name: str, out_dir: Path) -> Path:
    """Move the model, then export.json, from ``staging`` into ``out_dir`` (replacing an earlier export)."""
    target = out_dir / name
    if target.is_dir() and not target.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=".yolo-tl-old-", dir=out_dir))
        os.replace(target, old / name)
        os.replace(staging / name, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging / name, target)
    os.replace(staging / "export.json", out_dir / "export.json")
    return target
