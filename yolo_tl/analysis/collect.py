"""Read a prepared YOLO split and a model's predictions into FiftyOne labels.

Ground truth comes from the very files Ultralytics trains and validates on (data.yaml + labels/),
so the analysis sees exactly what the model saw. Boxes: YOLO ``cx cy w h`` (normalised) ->
FiftyOne relative ``[x, y, w, h]`` from the top-left (``boxes.yolo_to_fiftyone``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yolo_tl.dataset.boxes import yolo_to_fiftyone
from yolo_tl.dataset.formats.yolo import label_path_for, load_data_yaml, read_yolo_labels, split_images
from yolo_tl.errors import WeightsError

log = logging.getLogger(__name__)

# the FiftyOne fields yolo-tl writes: boxes from the label files, the model's boxes, the evaluation key
GT, PRED, EVAL_KEY = "ground_truth", "predictions", "eval"


# (label, [x, y, w, h] relative, confidence or None)
RawBox = tuple[str, tuple[float, float, float, float], float | None]


@dataclass
class SplitData:
    """One split of a YOLO dataset: image paths (sorted), their label files and the class names."""

    data_yaml: Path
    split: str
    names: list[str]
    images: list[Path]
    labels: list[Path] = field(default_factory=list)


class Timed:
    """Iterate ``it``, adding up the time spent inside its ``next()`` in ``seconds``."""

    def __init__(self, it: Iterator) -> None:
        self.it = it
        self.seconds = 0.0

    def __iter__(self) -> Iterator:
        while True:
            t = time.perf_counter()
            try:
                item = next(self.it)
            except StopIteration:
                self.seconds += time.perf_counter() - t
                return
            self.seconds += time.perf_counter() - t
            yield item


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
    """Load a detection model (.pt, or one made by ``yolo-tl export``), or raise WeightsError in one line."""
    weights = Path(weights).expanduser()
    if not weights.exists():
        raise WeightsError("weights file not found", path=weights)
    from yolo_tl.model.weights import load_detector  # task, class names and damage checks for every format

    return load_detector(weights, field="weights")[0]


def rename_boxes(boxes: list[RawBox], rename: dict[str, str] | None) -> list[RawBox]:
    """Predictions in the data's class names; other classes dropped (``model.class_names.label_renames``)."""
    if rename is None:
        return boxes
    return [(rename[label], box, score) for label, box, score in boxes if label in rename]


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
) -> Iterator[tuple[Path, list[RawBox] | None, tuple[int, int] | None]]:
    """Batched inference; yields (image, boxes, (height, width)) for every image, in the order of ``images``.

    Each result is paired with its image by path (``training.predict.results_by_path``). An image
    Ultralytics could not read yields ``(image, None, None)`` and is named in one warning.
    ``nms_iou`` and ``max_det`` default to the values Ultralytics validates with, so our
    predictions are the ones its mAP is computed on.
    """
    from yolo_tl.model.predict import results_by_path

    names = model.names
    kwargs: dict[str, Any] = {"conf": conf, "iou": nms_iou, "imgsz": imgsz, "batch": batch, "max_det": max_det,
                              "verbose": False}
    if device is not None:
        kwargs["device"] = device
    for start in range(0, len(images), chunk):
        part = [Path(p) for p in images[start:start + chunk]]
        found: dict[Path, tuple[list[RawBox], tuple[int, int]] | None] = {}
        for path, result in results_by_path(model, part, chunk=chunk, **kwargs):
            if result is None:
                found[path] = None
                continue
            boxes = result.boxes
            xyxyn = boxes.xyxyn.cpu().numpy().tolist()
            confs = boxes.conf.cpu().numpy().tolist()
            clss = boxes.cls.cpu().numpy().astype(int).tolist()
            raw: list[RawBox] = [
                (str(names[c]), (x1, y1, x2 - x1, y2 - y1), float(s))
                for (x1, y1, x2, y2), s, c in zip(xyxyn, confs, clss)
            ]
            h, w = result.orig_shape[:2]
            found[path] = (raw, (int(h), int(w)))
        for path in part:  # the order of ``images``, whatever order the results came in
            hit = found[path]
            if hit is None:
                log.warning("%s: unreadable image (its pixels do not decode): no predictions", path)
                yield path, None, None
            else:
                yield path, hit[0], hit[1]


def to_detections(boxes: Sequence[RawBox]) -> Any:
    """Raw boxes -> ``fo.Detections``."""
    import fiftyone as fo

    return fo.Detections(detections=[
        fo.Detection(label=label, bounding_box=list(box), confidence=score)
        if score is not None else fo.Detection(label=label, bounding_box=list(box))
        for label, box, score in boxes
    ])
