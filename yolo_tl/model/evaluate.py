"""evaluate: Ultralytics' validator on one split of a data.yaml, with the checks a user needs first."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yolo_tl._upstream.ultralytics import offline_guards
from yolo_tl.dataset.handoff import read_data_info, ultralytics_data_yaml
from yolo_tl.dataset.yolo_check import check_dataset
from yolo_tl.errors import TrainingError, first_line
from yolo_tl.model.class_names import match_classes
from yolo_tl.model.device import check_device
from yolo_tl.model.metrics import DetectionMetrics
from yolo_tl.model.runtime import no_autoinstall
from yolo_tl.model.weights import load_detector

PathLike = str | Path
log = logging.getLogger(__name__)


@dataclass
class EvaluationResult:
    weights: Path
    data_yaml: Path
    split: str
    metrics: DetectionMetrics
    matched_by_name: bool = False  # the model knows more (or reordered) classes: labels re-indexed by name

    def to_dict(self) -> dict[str, Any]:
        return {"weights": str(self.weights), "data_yaml": str(self.data_yaml), "split": self.split,
                "matched_by_name": self.matched_by_name, "metrics": self.metrics.to_dict()}


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

    ``weights`` is a .pt checkpoint or a model made by ``yolo-tl export`` (a fixed-size export is
    validated at its own input size, as Ultralytics does). Plots and outputs go to ``out`` when given;
    otherwise to a temporary folder that is removed.
    """
    if split not in ("train", "val", "test"):
        raise TrainingError(f"must be val, test or train, got {split!r}", field="split")
    info = read_data_info(data_yaml, need=("train", "val", split))
    dev = check_device(device)
    model, source = load_detector(weights)
    # same count, other names, or classes the model does not know: an index match would score the wrong classes
    match = match_classes(source.names, info.names_dict, path=source.path, data_yaml=info.path)
    class_map = None if match.same_order else match.data_to_model
    check_dataset(info, [split], error=TrainingError)  # Ultralytics' validator would drop a bad image silently
    if source.imgsz is not None and source.imgsz != (imgsz, imgsz):
        log.warning("%s was exported for %sx%s input: validating at that size, not %s",
                    source.path.name, *source.imgsz, imgsz)
    with contextlib_tempdir(out) as save_root, offline_guards(), no_autoinstall(), \
            tempfile.TemporaryDirectory() as tmp:
        data_path = ultralytics_data_yaml(info, Path(tmp) / "data", (split,))  # a relative path: too
        if class_map is not None:  # same images, labels re-indexed to the model's class order
            from yolo_tl.dataset.relabel import write_by_name_dataset

            data_path = write_by_name_dataset(info, Path(tmp) / "by_name", source.names or {}, split, class_map)
        args: dict[str, Any] = {
            "data": str(data_path), "split": split, "imgsz": imgsz, "batch": batch, "workers": workers,
            "project": str(save_root), "name": "val", "exist_ok": True, "plots": out is not None,
        }
        if dev is not None:
            args["device"] = dev
        try:
            results = model.val(**args)
        except (RuntimeError, ValueError, FileNotFoundError) as err:
            first = first_line(err)
            raise TrainingError(f"Ultralytics validation failed: {first}", path=info.path) from err
    return EvaluationResult(source.path, info.path, split, DetectionMetrics.from_ultralytics(results),
                            matched_by_name=class_map is not None)


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
