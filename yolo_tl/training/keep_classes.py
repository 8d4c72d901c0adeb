"""``--keep-classes``: fine-tune on new classes without forgetting the pretrained model's classes.

1. Class list = the new dataset's classes, then the pretrained model's classes it does not already
   have. Ultralytics 8.4's ``cls_remap`` (on by default) then copies the head rows of every class
   whose name the pretrained model knows (stripped, case-insensitive), so those start trained.
2. Before training, the pretrained model labels the train and val images for its own classes at
   confidence >= ``pseudo_conf``; a box that overlaps a labelled object (IoU >= ``OVERLAP_IOU``) is
   dropped (the user's label wins), and so are boxes of classes the user labels themselves.
3. The merged labels go into a derived dataset inside the run directory (``keep_classes_data/``:
   the images are links, the user's folder is never written); the per-class pseudo-label counts
   go into run.json.
4. best.pt (and early stopping) is chosen by the mAP50-95 of the dataset's own classes: the val
   pseudo-labels are the start model's guesses, so their AP measures agreement with it (see
   ``ScheduleHooks._select_best_on``). run.json's metrics still cover every class of that val split.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from yolo_tl._upstream.ultralytics import offline_guards
from yolo_tl.dataset.formats.yolo import DataYaml
from yolo_tl.dataset.relabel import Box, iter_splits, write_derived_dataset
from yolo_tl.errors import TrainingError
from yolo_tl.model.class_names import norm_name

log = logging.getLogger(__name__)
OVERLAP_IOU = 0.3
PSEUDO_SPLITS = ("train", "val")


def merged_names(target: list[str], source: list[str]) -> list[str]:
    have = {norm_name(n) for n in target}
    return list(target) + [n for n in source if norm_name(n) not in have]


def build_keep_classes_data(info: DataYaml, weights: Path, source_names: dict[int, str], out: Path, *,
                            conf: float = 0.5, imgsz: int = 640, batch: int = 16,
                            device: str | None = None) -> tuple[Path, dict[str, Any]]:
    """Write the derived dataset under ``out``; return its data.yaml and the run.json record."""
    if not 0 < conf < 1:
        raise TrainingError(f"must be between 0 and 1, got {conf}", field="pseudo_conf")
    if not source_names:
        raise TrainingError("the start weights have no class names to keep", field="keep_classes",
                            hint="--keep-classes needs a trained .pt, not a model .yaml")
    target = [info.names[i] for i in range(info.nc)]
    names = merged_names(target, [source_names[i] for i in sorted(source_names)])
    index = {norm_name(n): i for i, n in enumerate(names)}
    target_norm = {norm_name(n) for n in target}
    # source class -> merged index, only for classes the user does not label
    to_merged = {c: index[norm_name(n)] for c, n in source_names.items() if norm_name(n) not in target_norm}
    pseudo = _predict(info, weights, conf=conf, imgsz=imgsz, batch=batch, device=device)
    counts: dict[str, dict[str, int]] = {s: {} for s in PSEUDO_SPLITS if s in info.entries}
    dropped = {"overlap": 0, "shared_class": 0}

    def relabel(split: str, image: Path, boxes: list[Box]) -> list[Box]:
        if split not in PSEUDO_SPLITS:
            return boxes
        extra: list[Box] = []
        for c, box in pseudo.get(str(image.resolve()), []):
            if c not in to_merged:
                dropped["shared_class"] += 1
                continue
            if any(_iou(box, b[1:]) >= OVERLAP_IOU for b in boxes):
                dropped["overlap"] += 1
                continue
            extra.append((to_merged[c], *box))
            name = names[to_merged[c]]
            counts[split][name] = counts[split].get(name, 0) + 1
        return boxes + extra

    data_yaml = write_derived_dataset(info, out, names, relabel)
    kept = [n for n in names if norm_name(n) in {norm_name(v) for v in source_names.values()}]
    record = {
        "names": names,
        "new_classes": target,
        "head_rows_from_pretrained": kept,  # copied by Ultralytics' cls_remap (matching names)
        "head_rows_new": [n for n in names if n not in kept],
        "pseudo_conf": conf,
        "overlap_iou": OVERLAP_IOU,
        "pseudo_labels": {s: dict(sorted(c.items())) for s, c in counts.items()},
        "pseudo_dropped": dropped,
        "data_yaml": str(data_yaml),
        "best_by": "mAP50-95 of the dataset's own classes: " + ", ".join(target),
    }
    log.info("keep-classes: %d classes, pseudo-labels %s", len(names), record["pseudo_labels"])
    return data_yaml, record


def _predict(info: DataYaml, weights: Path, *, conf: float, imgsz: int, batch: int,
             device: str | None) -> dict[str, list[tuple[int, tuple[float, float, float, float]]]]:
    """Pretrained-model boxes (class, normalised cx cy w h) per resolved image path."""
    from ultralytics import YOLO

    model = YOLO(str(weights), task="detect")
    out: dict[str, list[tuple[int, tuple[float, float, float, float]]]] = {}
    args: dict[str, Any] = {"conf": conf, "imgsz": imgsz, "batch": batch, "verbose": False, "stream": True,
                            "save": False}
    if device is not None:
        args["device"] = device
    with offline_guards():
        for _split, images in iter_splits(info, PSEUDO_SPLITS):
            for start in range(0, len(images), 64):
                chunk = [str(p) for p in images[start:start + 64]]
                for res in model.predict(chunk, **args):
                    # paired by the path Ultralytics reports, never by position (it skips unreadable files)
                    key = str(Path(res.path).resolve())
                    xywhn = res.boxes.xywhn.tolist()
                    out[key] = [(int(c), tuple(b)) for c, b in zip(res.boxes.cls.tolist(), xywhn)]
    return out


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """IoU of two normalised (cx, cy, w, h) boxes."""
    ax1, ay1, ax2, ay2 = a[0] - a[2] / 2, a[1] - a[3] / 2, a[0] + a[2] / 2, a[1] + a[3] / 2
    bx1, by1, bx2, by2 = b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2
    iw, ih = max(0.0, min(ax2, bx2) - max(ax1, bx1)), max(0.0, min(ay2, by2) - max(ay1, by1))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0
