"""Likely label mistakes in one image, from its labels and a model's out-of-sample predictions.

Pure numpy. Four kinds, each with the evidence and the suggested fix as a box:

- ``missing``: a confident prediction that no label box (of any class) covers -> add the predicted box;
- ``wrong_class``: a label box that a prediction of another class covers more confidently than any
  prediction of the label's own class -> relabel the box;
- ``badly_placed``: a label box whose own-class prediction overlaps it only loosely, and that no
  own-class prediction covers closely (then the loose one is an unlabelled neighbour's) -> move it to
  the predicted box;
- ``spurious``: a label box that no prediction supports -> remove it.

The score of a suspect depends on that image alone (its IoUs and confidences), never on the other
images analysed with it: cleanlab's ObjectLab takes a minimum similarity over the whole batch, so its
scores move when images are added. Each kind's raw evidence goes through a logistic calibration
(``CALIBRATION``) so the score reads as a probability: of the suspects scored about ``s``, about a
share ``s`` are real mistakes, as measured on injected mistakes (``CALIBRATION`` says which data;
benchmarks/bench_label_issues.py refits it with ``--fit`` and prints the reliability table).

Boxes are ``x1, y1, x2, y2`` in pixels; classes are integer ids of the dataset's class list.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

KINDS = ("missing", "wrong_class", "badly_placed", "spurious")

# Predictions below this confidence are not evidence for anything (their boxes are noise at this level).
MIN_CONF = 0.05
# A prediction counts as covering a label box from this IoU on (COCO's match threshold).
MATCH_IOU = 0.5
# A prediction whose best IoU with every label box is under this is unexplained (a candidate missing box).
MISSING_IOU = 0.3
# A label box whose best own-class prediction overlaps it less than this is a candidate badly placed box.
PLACED_IOU = 0.8
# An own-class prediction this close to a label box says the box is placed as well as the model places
# boxes: a looser prediction beside it is another object (an unlabelled neighbour), not where the box belongs.
ON_BOX_IOU = 0.6
# A label box is a candidate spurious box when no prediction above this covers it (IoU >= MATCH_IOU).
SPURIOUS_SUPPORT = 0.5
_EPS = 0.01  # confidences are floored here before the logit (a missing prediction reads as 0.01)

# Per kind: (intercept, weights) of the logistic calibration over ``_features``' values.
# Fitted (``label_issues_compare.fit_calibration``) on real predictions: mistakes injected into BCCD and
# fruits_nuts (../shared/datasets), each image predicted by a model of two folds that did not train on it
# (COCO backbone, 8 epochs, imgsz 160): ``python -m benchmarks.bench_label_issues --epochs 8 --imgsz 160
# --fit``. Out of sample (each dataset scored with the calibration fitted on the other) the share of real
# mistakes per score bin was 0.77 / 0.78 / 0.94 for scores 0.5-0.7 / 0.7-0.9 / 0.9-1.0 (means 0.60 /
# 0.81 / 0.98); under 0.5 the scores run high (0.3-0.5: 0.18 real). benchmarks/RESULTS_label_issues.md.
CALIBRATION: dict[str, tuple[float, tuple[float, ...]]] = {
    "missing": (-1.521, (1.455, -1.535)),
    "wrong_class": (-2.475, (1.022, -1.011)),
    "badly_placed": (2.88, (1.242, -6.916)),
    "spurious": (-5.014, (-0.754, -0.133)),
}
FEATURES = {
    "missing": ("logit(pred conf)", "best IoU with any label box"),
    "wrong_class": ("logit(other-class conf)", "logit(own-class conf)"),
    "badly_placed": ("logit(own-class conf)", "IoU of label and prediction"),
    "spurious": ("logit(best conf at IoU>=0.5)", "logit(best conf at IoU>=0.1)"),
}

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class LabelIssue:
    """One suspect: its kind, calibrated score, the label and prediction involved, and the fix.

    ``label_index`` is the box's position in the image's label list (its line in the YOLO label
    file); ``pred_index`` the prediction's position. ``fix_class`` / ``fix_box`` are the box to
    write instead (``None`` for a spurious box: remove it). ``features`` are the raw values the
    score was computed from (named in ``FEATURES[kind]``).
    """

    kind: str
    score: float
    label_index: int | None
    label_class: int | None
    label_box: Box | None
    pred_index: int | None
    pred_class: int | None
    pred_box: Box | None
    pred_conf: float | None
    fix_class: int | None
    fix_box: Box | None
    features: tuple[float, ...]

    def to_dict(self) -> dict:
        """JSON-ready form (plain floats and ints)."""
        def box(b):
            return None if b is None else [round(float(v), 3) for v in b]

        return {"kind": self.kind, "score": round(self.score, 4), "label_index": self.label_index,
                "label_class": self.label_class, "label_box": box(self.label_box),
                "pred_index": self.pred_index, "pred_class": self.pred_class, "pred_box": box(self.pred_box),
                "pred_conf": None if self.pred_conf is None else round(self.pred_conf, 4),
                "fix_class": self.fix_class, "fix_box": box(self.fix_box),
                "features": [round(float(f), 4) for f in self.features]}


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4) with every box in ``b`` (M, 4), xyxy."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _logit(p: float) -> float:
    p = min(max(float(p), _EPS), 1.0 - 1e-4)
    return math.log(p / (1.0 - p))


def calibrated(kind: str, features: Sequence[float],
               calibration: dict[str, tuple[float, tuple[float, ...]]] | None = None) -> float:
    """The score of a suspect of ``kind`` with raw ``features``: sigmoid(intercept + weights . features)."""
    intercept, weights = (calibration or CALIBRATION)[kind]
    z = intercept + sum(w * f for w, f in zip(weights, features))
    return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))


def _box(row) -> Box:
    return tuple(float(v) for v in row)  # type: ignore[return-value]


def find_label_issues(
    gt_boxes, gt_classes, pred_boxes, pred_classes, pred_confs, *,
    min_score: float = 0.0,
    calibration: dict[str, tuple[float, tuple[float, ...]]] | None = None,
) -> list[LabelIssue]:
    """The suspects of one image, most likely first (see the module docstring for the kinds).

    ``gt_boxes`` (L, 4) and ``gt_classes`` (L,) are the labels; ``pred_boxes`` (M, 4),
    ``pred_classes`` (M,) and ``pred_confs`` (M,) a model's predictions on the image, best made by
    a model that did not train on it (a model reproduces the mistakes it learned). Suspects scored
    under ``min_score`` are left out. ``calibration`` replaces ``CALIBRATION`` (for fitting it).
    """
    gtb = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    gtc = np.asarray(gt_classes, dtype=np.int64).reshape(-1)
    prb = np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 4)
    prc = np.asarray(pred_classes, dtype=np.int64).reshape(-1)
    prs = np.asarray(pred_confs, dtype=np.float64).reshape(-1)
    if len(gtb) != len(gtc) or not (len(prb) == len(prc) == len(prs)):
        raise ValueError("boxes and classes (and confidences) must have the same length")
    keep = prs >= MIN_CONF
    pred_index = np.flatnonzero(keep)
    prb, prc, prs = prb[keep], prc[keep], prs[keep]
    ious = iou_matrix(gtb, prb)  # (L, M)
    issues: list[LabelIssue] = []

    def add(kind: str, features: tuple[float, ...], *, li=None, pj=None, fix_class=None, fix_box=None) -> None:
        score = calibrated(kind, features, calibration)
        if score < min_score:
            return
        issues.append(LabelIssue(
            kind=kind, score=score,
            label_index=None if li is None else int(li),
            label_class=None if li is None else int(gtc[li]),
            label_box=None if li is None else _box(gtb[li]),
            pred_index=None if pj is None else int(pred_index[pj]),
            pred_class=None if pj is None else int(prc[pj]),
            pred_box=None if pj is None else _box(prb[pj]),
            pred_conf=None if pj is None else float(prs[pj]),
            fix_class=fix_class, fix_box=fix_box, features=features))

    # missing: a prediction no label box explains
    best_gt_iou = ious.max(axis=0) if len(gtb) else np.zeros(len(prb))
    for j in range(len(prb)):
        if best_gt_iou[j] < MISSING_IOU:
            add("missing", (_logit(prs[j]), float(best_gt_iou[j])), pj=j,
                fix_class=int(prc[j]), fix_box=_box(prb[j]))

    # the prediction each label box is best matched to: its own class and any other class
    best_pred_gt = ious.argmax(axis=0) if len(gtb) else np.zeros(len(prb), dtype=np.int64)
    for i in range(len(gtb)):
        row = ious[i]
        covering = row >= MATCH_IOU
        own = covering & (prc == gtc[i])
        other = covering & (prc != gtc[i])
        own_conf = float(prs[own].max()) if own.any() else 0.0
        if other.any():  # wrong class: another class covers the box more confidently than its own
            j = int(np.flatnonzero(other)[np.argmax(prs[other])])
            if prs[j] > own_conf:
                add("wrong_class", (_logit(prs[j]), _logit(own_conf)), li=i, pj=j,
                    fix_class=int(prc[j]), fix_box=_box(gtb[i]))
        # badly placed: the most confident own-class prediction that overlaps the box and is not
        # a neighbour's (its best label box is this one) overlaps it only loosely, and no confident
        # own-class prediction sits on the box itself (then the loose one is an unlabelled neighbour's)
        mine = (row > 0.1) & (prc == gtc[i]) & (best_pred_gt == i)
        placed = (row >= ON_BOX_IOU) & (prc == gtc[i])
        if mine.any() and not placed.any():
            j = int(np.flatnonzero(mine)[np.argmax(prs[mine])])
            if row[j] < PLACED_IOU:
                add("badly_placed", (_logit(prs[j]), float(row[j])), li=i, pj=j,
                    fix_class=int(gtc[i]), fix_box=_box(prb[j]))
        # spurious: nothing supports the box
        support = float(prs[covering].max()) if covering.any() else 0.0
        if support < SPURIOUS_SUPPORT:
            near = row > 0.1
            loose = float(prs[near].max()) if near.any() else 0.0
            add("spurious", (_logit(support), _logit(loose)), li=i)
    issues.sort(key=lambda s: (-s.score, KINDS.index(s.kind), s.label_index if s.label_index is not None else -1,
                               s.pred_index if s.pred_index is not None else -1))
    return issues


def best_per_box(issues: Sequence[LabelIssue]) -> list[LabelIssue]:
    """One suspect per label box, its most likely (``issues`` sorted best first, as ``find_label_issues``
    returns them): a moved box is not also offered for removal. Missing boxes have no label box: all kept."""
    seen: set[int] = set()
    out = []
    for s in issues:
        if s.label_index is not None:
            if s.label_index in seen:
                continue
            seen.add(s.label_index)
        out.append(s)
    return out


def reliability_table(scores: Sequence[float], real: Sequence[bool], *,
                      edges: Sequence[float] = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)) -> list[dict]:
    """Per score bin: how many suspects, their mean score, and the share that were real mistakes."""
    s = np.asarray(scores, dtype=np.float64)
    r = np.asarray(real, dtype=bool)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (s >= lo) & ((s < hi) if hi < edges[-1] else (s <= hi))
        n = int(inside.sum())
        rows.append({"bin": f"{lo:.1f}-{hi:.1f}", "n": n,
                     "mean_score": float(s[inside].mean()) if n else None,
                     "share_real": float(r[inside].mean()) if n else None})
    return rows


def ranking_ap(scores: Sequence[float], hits: Sequence[bool], n_real: int) -> float | None:
    """Average precision of a ranking of candidates against ``n_real`` real mistakes.

    ``hits[k]`` says whether candidate k is a real mistake (each real mistake hit at most once);
    real mistakes that no candidate names count as never found. Tied scores form one step, as in
    scikit-learn's ``average_precision_score``.
    """
    if n_real <= 0:
        return None
    s = np.asarray(scores, dtype=np.float64)
    h = np.asarray(hits, dtype=bool)
    order = np.argsort(-s, kind="stable")
    s, h = s[order], h[order]
    tp = np.cumsum(h)
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1] if len(s) else np.array([], dtype=int)
    ap, prev_recall = 0.0, 0.0
    for k in last:
        recall = tp[k] / n_real
        ap += (recall - prev_recall) * tp[k] / (k + 1)
        prev_recall = recall
    return float(ap)


def recall_at(scores: Sequence[float], hits: Sequence[bool], n_real: int, k: int | None = None) -> float | None:
    """Share of the ``n_real`` real mistakes among the top ``k`` candidates (``k`` = ``n_real`` by default).

    Candidates tied at the cut count in proportion (the expected recall over the tie's orders), so a
    flag (a score of 0 or 1) is not favoured by the order its candidates came in.
    """
    if n_real <= 0:
        return None
    k = n_real if k is None else k
    s = np.asarray(scores, dtype=np.float64)
    h = np.asarray(hits, dtype=bool)
    if k >= len(s):
        return float(h.sum() / n_real)
    cut = np.sort(s)[::-1][k - 1] if k > 0 else np.inf
    above = s > cut
    tied = s == cut
    room = k - int(above.sum())
    found = h[above].sum() + (h[tied].sum() * room / tied.sum() if tied.any() and room > 0 else 0.0)
    return float(found / n_real)


FIX_FOR_KIND = {"missing": "add", "wrong_class": "relabel", "badly_placed": "move", "spurious": "remove"}


def fixes_above(issues: Sequence[LabelIssue], image: str, threshold: float, *, accepted: str | None = None) -> list:
    """The ``dataset.fixes.LabelFix`` list for one image's suspects scored at or above ``threshold``.

    One fix per label box (its best-scored suspect) and none for a missing box whose suggestion overlaps an
    accepted one (IoU >= 0.5), so the fixes never conflict. ``accepted`` says how (default
    ``--accept-above THRESHOLD``); ``image`` is the image as the data.yaml lists it.
    """
    from yolo_tl.dataset.fixes import LabelFix

    how = accepted or f"--accept-above {threshold:g}"
    fixes, added = [], []
    for s in best_per_box(sorted(issues, key=lambda s: -s.score)):
        if s.score < threshold:
            break
        if s.label_index is None and added and iou_matrix([s.fix_box], added).max() >= MATCH_IOU:
            continue
        before = None if s.label_index is None else (s.label_class, *s.label_box)
        after = None if s.fix_box is None else (s.fix_class, *s.fix_box)
        if s.kind == "missing":
            added.append(s.fix_box)
        fixes.append(LabelFix(image=image, kind=FIX_FOR_KIND[s.kind], box=s.label_index, before=before,
                              after=after, score=round(s.score, 4), accepted=how, issue=s.kind))
    return fixes
