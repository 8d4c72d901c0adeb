"""Read a prepared YOLO split and a model's predictions into FiftyOne labels.

Ground truth comes from the very files Ultralytics trains and validates on (data.yaml + labels/),
so the analysis sees exactly what the model saw. Boxes: YOLO ``cx cy w h`` (normalised) ->
FiftyOne relative ``[x, y, w, h]`` from the top-left (``boxes.yolo_to_fiftyone``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional


from yolo_tl.dataset.boxes import yolo_to_fiftyone
from yolo_tl.errors import WeightsError
from yolo_tl.dataset.formats.yolo import label_path_for, load_data_yaml, read_yolo_labels, split_images

log = logging.getLogger(__name__)

# the FiftyOne fields yolo-tl writes: boxes from the label files, the model's boxes, the evaluation key
GT, PRED, EVAL_KEY = "ground_truth", "predictions", "eval"


# (label, [x, y, w, h] relative, confidence or None)
RawBox = tuple[str, tuple[float, float, float, float], Optional[float]]


@dataclass
class SplitData:
    """One split of a YOLO dataset: image paths (sorted), their label files and the class names."""

    data_yaml: Path
    split: str
    names: list[str]
    images: list[Path]
    labels: list[Path] = field(default_factory=list)


def read_split(data_yaml: Path, split: str) -> SplitData:
    """Resolve the images of ``split`` the way Ultralytics does (dir, .txt list or list of both).

    Every label line and image header is checked first (``yolo_check``): the first bad one stops
    with ``file: line N: problem``, so the analysis never silently evaluates on fewer images.
    """
    from yolo_tl.dataset.yolo_check import check_dataset

    data = load_data_yaml(Path(data_yaml).expanduser().resolve())
    images = split_images(data, split)
    check_dataset(data, [split], on_error="fail")
    return SplitData(data.path, split, data.names, images, [label_path_for(p) for p in images])


def read_yolo_boxes(label: Path, names: Sequence[str]) -> list[RawBox]:
    """One YOLO label file -> FiftyOne boxes; a missing file means "no objects" (as in Ultralytics)."""
    return [(names[cls], yolo_to_fiftyone(cx, cy, w, h), None)
            for cls, cx, cy, w, h in read_yolo_labels(label, nc=len(names))]


def load_model(weights: Path) -> Any:
    """Load a detection checkpoint with Ultralytics, or raise WeightsError in one line."""
    weights = Path(weights).expanduser()
    if not weights.is_file():
        raise WeightsError("weights file not found", path=weights)
    from ultralytics import YOLO

    try:
        model = YOLO(str(weights))
    except Exception as err:  # Ultralytics raises many kinds for a bad file
        raise WeightsError(f"cannot load checkpoint ({type(err).__name__}: {err})",
                           path=weights) from err
    if getattr(model, "task", "detect") != "detect":
        raise WeightsError(f"a '{model.task}' model; analyze needs a detection model", path=weights)
    return model


def check_class_names(model_names: dict[int, str], names: Sequence[str], weights: Path) -> None:
    """The model must predict the data's classes, in the same order, or the evaluation is noise."""
    got = [str(model_names[i]) for i in sorted(model_names)]
    if got != list(names):
        raise WeightsError(
            f"the model's classes {got[:6]}{'...' if len(got) > 6 else ''} differ from data.yaml's "
            f"{list(names)[:6]}", path=weights, hint="use weights fine-tuned on this data.yaml")


def predict_boxes(
    model: Any,
    images: Sequence[Path],
    *,
    conf: float,
    imgsz: int,
    batch: int,
    nms_iou: float = 0.7,
    max_det: int = 300,
    device: str | None = None,
    chunk: int = 256,
) -> Iterator[tuple[Path, list[RawBox], tuple[int, int]]]:
    """Batched inference; yields (image, boxes, (height, width)) in the order of ``images``.

    ``nms_iou`` and ``max_det`` default to the values Ultralytics validates with, so our
    predictions are the ones its mAP is computed on.
    """
    names = model.names
    for start in range(0, len(images), chunk):
        part = [str(p) for p in images[start:start + chunk]]
        kwargs: dict[str, Any] = {"conf": conf, "iou": nms_iou, "imgsz": imgsz, "batch": batch,
                                      "max_det": max_det, "stream": True, "verbose": False}
        if device is not None:
            kwargs["device"] = device
        for path, result in zip(part, model.predict(source=part, **kwargs)):
            boxes = result.boxes
            xyxyn = boxes.xyxyn.cpu().numpy().tolist()
            confs = boxes.conf.cpu().numpy().tolist()
            clss = boxes.cls.cpu().numpy().astype(int).tolist()
            raw: list[RawBox] = [
                (str(names[c]), (x1, y1, x2 - x1, y2 - y1), float(s))
                for (x1, y1, x2, y2), s, c in zip(xyxyn, confs, clss)
            ]
            h, w = result.orig_shape[:2]
            yield Path(path), raw, (int(h), int(w))


def to_detections(boxes: Sequence[RawBox]) -> Any:
    """Raw boxes -> ``fo.Detections``."""
    import fiftyone as fo

    return fo.Detections(detections=[
        fo.Detection(label=label, bounding_box=list(box), confidence=score)
        if score is not None else fo.Detection(label=label, bounding_box=list(box))
        for label, box, score in boxes
    ])
