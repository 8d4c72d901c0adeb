"""evaluate: Ultralytics' validator on one split of a data.yaml, with the checks a user needs first."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from yolo_tl.errors import TrainingError
from yolo_tl.training.metrics import DetectionMetrics
from yolo_tl.dataset.yolo_check import check_dataset
from yolo_tl.training.ultralytics_compat import check_device, offline_guards, read_data_info
from yolo_tl.training.weights import resolve_weights

PathLike = Union[str, Path]


@dataclass
class EvaluationResult:
    weights: Path
    data_yaml: Path
    split: str
    metrics: DetectionMetrics

    def to_dict(self) -> dict[str, Any]:
        return {"weights": str(self.weights), "data_yaml": str(self.data_yaml), "split": self.split,
                "metrics": self.metrics.to_dict()}


def evaluate(
    weights: PathLike,
    data_yaml: PathLike,
    *,
    split: str = "val",
    imgsz: int = 640,
    batch: int = 16,
    device: str | None = None,
    workers: int = 8,
    out: PathLike | None = None,
) -> EvaluationResult:
    """Validate ``weights`` on one split of ``data_yaml`` with Ultralytics' validator.

    Plots and outputs go to ``out`` when given; otherwise to a temporary folder that is removed.
    """
    if split not in ("train", "val", "test"):
        raise TrainingError(f"must be val, test or train, got {split!r}", field="--split")
    info = read_data_info(data_yaml, need=("train", "val", split))
    check_dataset(info, [split], error=TrainingError)  # Ultralytics' validator would drop a bad image silently
    dev = check_device(device)
    source = resolve_weights(weights)
    if source.from_scratch:
        raise TrainingError("evaluate needs trained weights (.pt), not a model .yaml", field="WEIGHTS")
    if source.nc is not None and source.nc != info.nc:
        raise TrainingError(f"has {info.nc} classes but the checkpoint's head has {source.nc}",
                            path=info.path, field="names")
    from ultralytics import YOLO

    model = YOLO(str(source.path), task="detect")
    with contextlib_tempdir(out) as save_root, offline_guards():
        args: dict[str, Any] = {
            "data": str(info.path), "split": split, "imgsz": imgsz, "batch": batch, "workers": workers,
            "project": str(save_root), "name": "val", "exist_ok": True, "plots": out is not None,
        }
        if dev is not None:
            args["device"] = dev
        try:
            results = model.val(**args)
        except (RuntimeError, ValueError, FileNotFoundError) as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise TrainingError(f"Ultralytics validation failed: {first}", path=info.path) from err
    return EvaluationResult(source.path, info.path, split, DetectionMetrics.from_ultralytics(results))


class contextlib_tempdir:
    """Yield ``out`` (created) or a temporary directory removed on exit."""

    def __init__(self, out: PathLike | None) -> None:
        self.out = Path(out).expanduser().resolve() if out is not None else None
        self._tmp: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> Path:
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            return self.out
        self._tmp = tempfile.TemporaryDirectory(prefix="yolo-tl-val-")
        return Path(self._tmp.name)

    def __exit__(self, *exc: object) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
