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

import yaml

from yolo_tl.boxes import yolo_to_fiftyone
from yolo_tl.errors import AnnotationError, LayoutError, WeightsError
from yolo_tl.formats.yolo import label_path_for

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".bmp", ".dng", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp", ".pfm",
                  ".heic"}

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


def _names(data: dict[str, Any], path: Path) -> list[str]:
    names = data.get("names")
    if isinstance(names, dict):
        try:
            keys = sorted(int(k) for k in names)
        except (TypeError, ValueError):
            raise AnnotationError("class ids must be integers", path=path, field="names") from None
        if keys != list(range(len(keys))):
            raise AnnotationError("class ids must be 0..n-1 without gaps", path=path, field="names")
        return [str(names[k] if k in names else names[str(k)]) for k in keys]
    if isinstance(names, list) and names:
        return [str(n) for n in names]
    raise AnnotationError("missing or empty class list", path=path, field="names")


def _images_from(entry: Path, data_yaml: Path, split: str) -> list[Path]:
    if entry.is_dir():
        return sorted(p for p in entry.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if entry.is_file() and entry.suffix == ".txt":
        out = []
        for line in entry.read_text().splitlines():
            line = line.strip()
            if not line:
                continue
            p = Path(line[2:]) if line.startswith("./") else Path(line)
            out.append(p if p.is_absolute() else entry.parent / p)
        return out
    if entry.is_file() and entry.suffix.lower() in IMAGE_SUFFIXES:
        return [entry]
    raise LayoutError(f"split '{split}' points to {entry}, which does not exist", path=data_yaml,
                      field=split)


def read_split(data_yaml: Path, split: str) -> SplitData:
    """Resolve the images of ``split`` the way Ultralytics does (dir, .txt list or list of both)."""
    data_yaml = Path(data_yaml).expanduser().resolve()
    if not data_yaml.is_file():
        raise LayoutError("data.yaml not found", path=data_yaml)
    try:
        data = yaml.safe_load(data_yaml.read_text()) or {}
    except yaml.YAMLError as err:
        raise AnnotationError(f"not valid YAML ({str(err).splitlines()[0]})", path=data_yaml) from None
    if not isinstance(data, dict):
        raise AnnotationError("expected a mapping", path=data_yaml)
    names = _names(data, data_yaml)
    root = Path(str(data.get("path") or data_yaml.parent)).expanduser()
    if not root.is_absolute():
        root = (data_yaml.parent / root).resolve()
    entries = data.get(split)
    if not entries:
        have = [k for k in ("train", "val", "test") if data.get(k)]
        raise LayoutError(f"no split '{split}' (this file has: {', '.join(have) or 'none'})",
                          path=data_yaml, field=split)
    if not isinstance(entries, list):
        entries = [entries]
    images: list[Path] = []
    for e in entries:
        p = Path(str(e)).expanduser()
        images += _images_from(p if p.is_absolute() else root / p, data_yaml, split)
    if not images:
        raise LayoutError(f"split '{split}' has no images", path=data_yaml, field=split)
    images = sorted({p.resolve() for p in images})
    return SplitData(data_yaml, split, names, images, [label_path_for(p) for p in images])


def read_yolo_boxes(label: Path, names: Sequence[str]) -> list[RawBox]:
    """One YOLO label file -> boxes; a missing file means "no objects" (as in Ultralytics)."""
    if not label.is_file():
        return []
    out: list[RawBox] = []
    for n, line in enumerate(label.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            cls = int(float(parts[0]))
            vals = [float(v) for v in parts[1:]]
        except ValueError:
            raise AnnotationError("non-numeric value", path=label, field=f"line {n}") from None
        if cls < 0 or cls >= len(names):
            raise AnnotationError(f"class id {cls} is not in data.yaml names (0..{len(names) - 1})",
                                  path=label, field=f"line {n}")
        if not all(0.0 <= v <= 1.0 for v in vals):  # Ultralytics would drop the whole image
            raise AnnotationError("coordinates outside [0, 1]", path=label, field=f"line {n}")
        if len(vals) == 4:
            x, y, w, h = yolo_to_fiftyone(*vals)
        elif len(vals) >= 6 and len(vals) % 2 == 0:  # polygon: its bounding box, as Ultralytics does
            xs, ys = vals[0::2], vals[1::2]
            x, y, w, h = min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
        else:
            raise AnnotationError(f"expected 'cls cx cy w h', got {len(parts)} values", path=label,
                                  field=f"line {n}")
        out.append((names[cls], (x, y, w, h), None))
    return out


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
