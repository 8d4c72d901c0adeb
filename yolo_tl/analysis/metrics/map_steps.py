"""Why FiftyOne's mAP and Ultralytics' differ, measured on the very same stored predictions.

From FiftyOne's COCO mAP to Ultralytics' mAP50-95, one rule at a time, each step measured:

1. FiftyOne's rules: greedy COCO matching, 101-point COCO reading, at most 100 predictions per
   image and class (``evaluation.Accumulator.pr_curves``);
2. the same with every prediction kept (Ultralytics keeps up to 300 per image);
3. the same matches through Ultralytics' own ``ap_per_class`` (its interpolation: the
   envelope read with ``np.interp`` and integrated by the trapezoid rule);
4. Ultralytics' own matching (``BaseValidator.match_predictions`` on ``box_iou`` in pixels), i.e.
   Ultralytics' metric functions end to end on our predictions.

What remains between step 4 and ``model.val()`` (``--ultralytics-val``) is its separate inference
(rectangular letterboxed batches) and nothing else.

Also here: the class-to-class confusion matrix (FiftyOne's ``classwise=False`` matching on the
predictions a person is shown, ``--show-conf``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from yolo_tl.analysis.metrics.evaluation import (
    AREAS,
    IOU_THRESHS,
    Accumulator,
    ImageBoxes,
    _bits,
    _greedy,
    box_ious,
    mean_ap,
)


@dataclass
class Step:
    rule: str
    map50_95: float | None
    change: float | None  # from the step before

    def to_dict(self) -> dict:
        return asdict(self)


def ultralytics_matcher() -> Callable[[ImageBoxes], np.ndarray]:
    """(P, 10) correct flags of each prediction, by Ultralytics' ``match_predictions`` (its iouv)."""
    import torch
    from ultralytics.utils.metrics import box_iou

    from yolo_tl._upstream.ultralytics import prediction_matcher

    match_predictions = prediction_matcher()

    def match(img: ImageBoxes) -> np.ndarray:
        n_pred = len(img.pred_cls)
        out = np.zeros((n_pred, len(IOU_THRESHS)), dtype=bool)
        if n_pred == 0 or len(img.gt_cls) == 0:
            return out
        h, w = img.size if img.size is not None else (1, 1)
        scale = np.array([w, h, w, h], dtype=np.float64)

        def xyxy(b: np.ndarray) -> Any:
            return torch.from_numpy(np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1) * scale)

        order = np.argsort(-img.pred_conf, kind="stable")  # NMS output order: by confidence
        iou = box_iou(xyxy(img.gt_xywh), xyxy(img.pred_xywh[order]))
        correct = match_predictions(torch.from_numpy(img.pred_cls[order]), torch.from_numpy(img.gt_cls), iou).numpy()
        out[order] = correct
        return out

    return match


def ultralytics_ap(conf: np.ndarray, tp: np.ndarray, n_labels: int) -> np.ndarray:
    """One class's AP at each of ``tp``'s columns: ``ultralytics.utils.metrics.ap_per_class``'s steps
    for that class (cumulative tp / fp by confidence, recall and precision, its ``compute_ap`` per
    column), one column at a time instead of (N, 10) float arrays at once."""
    from ultralytics.utils.metrics import compute_ap

    ap = np.zeros(tp.shape[1])
    if not len(conf) or not n_labels:
        return ap
    order = np.argsort(-conf, kind="stable")
    for j in range(tp.shape[1]):
        col = tp[order, j].astype(np.float64)
        tpc = col.cumsum()
        fpc = (1 - col).cumsum()
        ap[j] = compute_ap(tpc / (n_labels + 1e-16), tpc / (tpc + fpc))[0]
    return ap


def _ul_map(acc: Accumulator, ultralytics_matching: bool) -> float | None:
    """Ultralytics' mAP50-95 (``ap_per_class``: mean over the classes with labels) of the stored
    predictions, matched by FiftyOne's rules or by Ultralytics' ``match_predictions``."""
    nt = len(IOU_THRESHS)
    aps = []
    for c, conf, tp_bits, _, ul_bits in acc.by_class():
        if acc.gt_per_class[c] == 0:
            continue
        packed = ul_bits if ultralytics_matching else tp_bits  # tp_bits' rules 0-9: area "all"
        tp = np.stack([_bits(packed, r) for r in range(nt)], axis=1) if len(conf) else np.zeros((0, nt), bool)
        aps.append(ultralytics_ap(conf, tp, int(acc.gt_per_class[c])))
    return float(np.mean(aps)) if aps else None


def explain_maps(acc: Accumulator) -> list[Step]:
    """The four measured steps from FiftyOne's mAP to Ultralytics' (see the module docstring)."""
    values = [
        ("FiftyOne: COCO rules, <= 100 predictions per image and class",
         mean_ap(acc.pr_curves("all", 100)["precision"])[0]),
        ("+ every prediction kept (Ultralytics: up to 300 per image)",
         mean_ap(acc.pr_curves("all", None)["precision"])[0]),
        ("+ Ultralytics' interpolation (ap_per_class)", _ul_map(acc, False)),  # no crowds in YOLO labels
        ("+ Ultralytics' matching (match_predictions): its metrics on these boxes",
         _ul_map(acc, True) if acc.has_ul else None),
    ]
    steps, prev = [], None
    for rule, v in values:
        steps.append(Step(rule, None if v is None else round(v, 6),
                          None if v is None or prev is None else round(v - prev, 6)))
        prev = v
    return steps


def confusion_image(img: ImageBoxes, nc: int, *, iou: float, min_conf: float) -> np.ndarray:
    """(nc+1, nc+1) counts, rows GT class (+ none: background), columns predicted (+ none: missed).

    FiftyOne's ``classwise=False`` COCO matching: any class may match any, greedy by confidence.
    """
    out = np.zeros((nc + 1, nc + 1), dtype=np.int64)
    keep = np.flatnonzero(img.pred_conf >= min_conf)
    p = keep[np.argsort(-img.pred_conf[keep], kind="stable")]
    crowd = img.gt_crowd if img.gt_crowd is not None else np.zeros(len(img.gt_cls), dtype=bool)
    g = np.argsort(crowd, kind="stable")
    ious = box_ious(img.pred_xywh[p], img.gt_xywh[g], crowd[g])
    # a crowd only matches its own class (FiftyOne): zero those IoUs
    same = img.pred_cls[p][:, None] == img.gt_cls[g][None, :]
    ious = np.where(crowd[g][None, :] & ~same, 0.0, ious)
    m = _greedy(ious, np.array([min(iou, 1 - 1e-10)]), crowd[g][None, :], crowd[g])[0]
    matched_gt = set()
    for jj, k in enumerate(m):
        if k >= 0:
            out[img.gt_cls[g[k]], img.pred_cls[p[jj]]] += 1
            matched_gt.add(int(g[k]))
        else:
            out[nc, img.pred_cls[p[jj]]] += 1
    for gi in range(len(img.gt_cls)):
        if gi not in matched_gt:
            out[img.gt_cls[gi], nc] += 1
    return out


def ap_by_size(acc: Accumulator) -> dict[str, dict]:
    """COCO's AP@[.5:.95] per object size: {"small": {"mAP": x, "per_class": [...]}, ...} (FiftyOne's rules)."""
    out = {}
    for area in AREAS:
        m, per_class = mean_ap(acc.pr_curves(area, 100)["precision"])
        out[area] = {"mAP": m, "per_class": per_class, "gt": acc.num_gt[list(AREAS).index(area) * 10].tolist()}
    return out
