"""COCO-style detection evaluation in numpy, with FiftyOne's exact rules, one image at a time.

``match_image`` does what ``evaluate_detections(..., compute_mAP=True)`` does per sample
(``fiftyone.utils.eval.coco._compute_matches``): per class, predictions greedily by confidence
(stable order on ties), each to the unmatched ground-truth box of highest IoU (the last one on
ties), crowds last and reusable, IoU >= threshold. It returns the fields FiftyOne writes (every
box's ``eval`` / ``eval_id`` / ``eval_iou``, the sample's tp / fp / fn) and feeds an
``Accumulator`` whose arrays are a few bytes per box: the 10 IoU thresholds 0.50:0.95 x the COCO
object sizes (all / small / medium / large, as pycocotools ignores boxes outside a size range),
the rank of each prediction within its image and class (FiftyOne keeps 100 per class and image
for mAP) and Ultralytics' own matching of the same boxes (``explain.py``).

``Accumulator.pr_curves`` reads precision at the 101 recall points exactly as FiftyOne's
``_compute_pr_curves`` does (tps before fps on tied confidences), so the mAP is FiftyOne's to
the last bit; tests/analysis/test_evaluation.py checks it against FiftyOne and pycocotools.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

IOU_THRESHS = [x / 100 for x in range(50, 100, 5)]  # COCOEvaluationConfig's default sweep
AREAS = {"all": (0.0, 1e10), "small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e10)}
MAX_PREDS = 100  # FiftyOne's (and COCO's) max_preds per image and class for mAP
RECALL = np.linspace(0, 1, 101)


@dataclass
class ImageBoxes:
    """One image in arrays: boxes relative ``[x, y, w, h]`` from the top-left, class indices."""

    gt_xywh: np.ndarray
    gt_cls: np.ndarray
    pred_xywh: np.ndarray
    pred_cls: np.ndarray
    pred_conf: np.ndarray
    size: tuple[int, int] | None = None  # (height, width) in pixels, for COCO object sizes
    gt_crowd: np.ndarray | None = None

    @classmethod
    def from_lists(cls, gt: list, preds: list, names: list[str], size: tuple[int, int] | None = None,
                   crowd: list[bool] | None = None) -> ImageBoxes:
        """From ``(label, [x, y, w, h], conf)`` tuples (``labels.RawBox``)."""
        index = {n: i for i, n in enumerate(names)}
        return cls(
            np.array([b[1] for b in gt], dtype=np.float64).reshape(-1, 4),
            np.array([index[b[0]] for b in gt], dtype=np.int64),
            np.array([b[1] for b in preds], dtype=np.float64).reshape(-1, 4),
            np.array([index[b[0]] for b in preds], dtype=np.int64),
            np.array([b[2] if b[2] is not None else -1.0 for b in preds], dtype=np.float64),
            size, None if crowd is None else np.array(crowd, dtype=bool))


@dataclass
class ImageResult:
    """What FiftyOne's evaluation writes for one image, plus the matches its results store."""

    pred_eval: list[str]
    pred_match: list[int]  # index of the matched GT box, -1 when none
    pred_iou: list[float | None]
    gt_eval: list[str]
    gt_match: list[int]  # index of the matched prediction, -1 when none
    gt_iou: list[float | None]
    tp: int
    fp: int
    fn: int
    matches: list[tuple] = field(default_factory=list)  # (gt idx|None, pred idx|None, iou|None)


def box_ious(pred: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """(P, G) IoUs with the very operations of ``fiftyone.utils.iou.compute_bbox_iou`` (crowd: / pred area)."""
    px, py, pw, ph = (pred[:, i, None] for i in range(4))
    gx, gy, gw, gh = (gt[None, :, i] for i in range(4))
    w = np.minimum(px + pw, gx + gw) - np.maximum(px, gx)
    h = np.minimum(py + ph, gy + gh) - np.maximum(py, gy)
    inter = h * w
    pred_area, gt_area = ph * pw, gh * gw
    union = np.where(crowd[None, :], pred_area, pred_area + gt_area - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union != 0, inter / np.where(union != 0, union, 1.0), 0.0)
    return np.where((w <= 0) | (h <= 0), 0.0, np.minimum(iou, 1.0))


def _greedy(ious: np.ndarray, thr: np.ndarray, ignore: np.ndarray, reusable: np.ndarray) -> np.ndarray:
    """COCO's greedy matching for R rules at once: (R, P) index of the matched GT, -1 when none.

    ``ious`` (P, G) with predictions by descending confidence and GT in their stable order;
    ``thr`` (R,); ``ignore`` (R, G): GT boxes that match only when no other does (crowds, sizes
    out of range); ``reusable`` (G,): crowds, which several predictions may match. Per prediction,
    per rule: the last GT of highest IoU >= threshold among the untaken counted ones, else among
    the ignored ones (pycocotools' and FiftyOne's loop with its crowds-last ``break``). Plain Python
    over the one or two GT boxes a prediction overlaps: faster than numpy on arrays this small.
    """
    n_rules, (n_pred, n_gt) = len(thr), ious.shape
    out = np.full((n_rules, n_pred), -1, dtype=np.int64)
    if n_gt == 0 or n_pred == 0:
        return out
    tmin = float(thr.min())
    cand = np.flatnonzero(ious.max(axis=1) >= tmin)  # the others overlap nothing enough: no match
    if not len(cand):
        return out
    thr_l, ign, reuse = thr.tolist(), ignore.tolist(), reusable.tolist()
    taken: list[set] = [set() for _ in range(n_rules)]
    rows = ious[cand]
    for jj, j in enumerate(cand.tolist()):
        row = rows[jj]
        cols = np.flatnonzero(row >= tmin).tolist()
        vals = row[cols].tolist()
        for r in range(n_rules):
            t, tk, ig = thr_l[r], taken[r], ign[r]
            best, best_iou = -1, t
            for tier in (False, True):
                for k, v in zip(cols, vals):
                    if ig[k] is not tier or (k in tk and not reuse[k]) or v < best_iou:
                        continue
                    best, best_iou = k, v
                if best >= 0:
                    break
            if best >= 0:
                out[r, j] = best
                tk.add(best)
    return out


def _bits(packed: np.ndarray, r: int) -> np.ndarray:
    """Column ``r`` of a bool matrix stored with ``np.packbits(..., axis=1, bitorder="little")``."""
    return ((packed[:, r >> 3] >> (r & 7)) & 1).astype(bool)


class _Columns:
    """Arrays that grow by batches: appended as chunks, joined once when read (one column at a time)."""

    def __init__(self, **empty: np.ndarray) -> None:
        self._parts: dict[str, list[np.ndarray]] = {k: [] for k in empty}
        self._joined: dict[str, np.ndarray] = dict(empty)

    def append(self, **cols: np.ndarray) -> None:
        for k, v in cols.items():
            self._parts[k].append(v)

    def __getitem__(self, key: str) -> np.ndarray:
        if self._parts[key]:
            self._joined[key] = np.concatenate([self._joined[key], *self._parts[key]])
            self._parts[key] = []
        return self._joined[key]


class Accumulator:
    """Per-prediction arrays of a whole split in 28 bytes a prediction: confidence, class, rank in
    its image and class, and three bit sets (``np.packbits``): counted tp and left out for each of
    the 40 rules (10 IoU thresholds x 4 COCO sizes), Ultralytics' matching at its 10 thresholds."""

    def __init__(self, names: list[str]) -> None:
        self.names = list(names)
        self.n_rules = len(IOU_THRESHS) * len(AREAS)  # rule r = area index * 10 + threshold index
        nb, nb_ul = -(-self.n_rules // 8), -(-len(IOU_THRESHS) // 8)
        self.cols = _Columns(conf=np.zeros(0), cls=np.zeros(0, np.int32), rank=np.zeros(0, np.int32),
                             tp=np.zeros((0, nb), np.uint8), ign=np.zeros((0, nb), np.uint8),
                             tp_ul=np.zeros((0, nb_ul), np.uint8))
        self.has_ul = True  # every image went through Ultralytics' matching too
        self.num_gt = np.zeros((self.n_rules, len(names)), dtype=np.int64)
        self.gt_per_class = np.zeros(len(names), dtype=np.int64)  # non-crowd GT (Ultralytics' target_cls)
        self._curves: dict[tuple, dict] = {}  # pr_curves by (area, max_preds) since the last add

    def add(self, conf: np.ndarray, cls: np.ndarray, rank: np.ndarray, tp: np.ndarray, ign: np.ndarray,
            tp_ul: np.ndarray | None, gt_counted: np.ndarray, gt_cls: np.ndarray, gt_crowd: np.ndarray) -> None:
        def pack(bits: np.ndarray) -> np.ndarray:
            return np.packbits(bits.astype(bool), axis=1, bitorder="little")

        if tp_ul is None:
            self.has_ul = False
            tp_ul = np.zeros((len(conf), len(IOU_THRESHS)), dtype=bool)
        self._curves.clear()
        self.cols.append(conf=conf.astype(np.float64), cls=cls.astype(np.int32), rank=rank.astype(np.int32),
                         tp=pack(tp), ign=pack(ign), tp_ul=pack(tp_ul))
        for r in range(self.n_rules):
            np.add.at(self.num_gt[r], gt_cls[gt_counted[r]], 1)
        np.add.at(self.gt_per_class, gt_cls[~gt_crowd], 1)

    def by_class(self, max_preds: int | None = None) -> Any:
        """Yield ``(c, conf, tp, ign, tp_ul)`` per class: that class's predictions (the first
        ``max_preds`` of each image), one class at a time, so memory holds one class's copy only."""
        cls, rank = self.cols["cls"], self.cols["rank"]
        for c in range(len(self.names)):
            idx = np.flatnonzero((cls == c) & (rank < max_preds) if max_preds is not None else cls == c)
            yield (c, self.cols["conf"][idx], self.cols["tp"][idx], self.cols["ign"][idx],
                   self.cols["tp_ul"][idx])

    def pr_curves(self, area: str = "all", max_preds: int | None = MAX_PREDS) -> dict[str, np.ndarray]:
        """FiftyOne's ``_compute_pr_curves``: precision / thresholds (10, nc, 101), recall_sweep (10, nc).

        Computed once per (area, max_preds) until the next ``add``: the run's registration, the
        figures, the AP by size and the mAP steps all read the area "all" curves."""
        key = (area, max_preds)
        if key not in self._curves:
            self._curves[key] = self._pr_curves(area, max_preds)
        return self._curves[key]

    def _pr_curves(self, area: str, max_preds: int | None) -> dict[str, np.ndarray]:
        base = list(AREAS).index(area) * len(IOU_THRESHS)
        nt, nc = len(IOU_THRESHS), len(self.names)
        precision, thresholds = -np.ones((nt, nc, 101)), -np.ones((nt, nc, 101))
        recall_sweep = -np.ones((nt, nc))
        for c, conf_c, tp_c, ign_c, _ in self.by_class(max_preds):
            for t in range(nt):
                r = base + t
                num_gt = self.num_gt[r, c]
                if num_gt == 0:
                    continue
                sel = ~_bits(ign_c, r)
                tp, confs = _bits(tp_c, r)[sel], conf_c[sel]
                order = np.lexsort((~tp, -confs))  # by confidence, tps first on ties (FiftyOne's list order)
                tp_fp, confs = tp[order].astype(int), confs[order]
                tp_sum = np.cumsum(tp_fp).astype(dtype=float)
                total = np.arange(1, len(tp_fp) + 1).astype(dtype=float)
                pre, rec = tp_sum / total, tp_sum / num_gt
                pre = np.maximum.accumulate(pre[::-1])[::-1]
                inds = np.searchsorted(rec, RECALL, side="left")
                inside = inds < len(pre)
                q, th = np.zeros(101), np.zeros(101)
                q[inside], th[inside] = pre[inds[inside]], confs[inds[inside]]
                precision[t, c], thresholds[t, c] = q, th
                recall_sweep[t, c] = rec[-1] if rec.size else 0
        return {"precision": precision, "thresholds": thresholds, "recall_sweep": recall_sweep, "recall": RECALL}


def mean_ap(precision: np.ndarray) -> tuple[float | None, list[float | None]]:
    """(mAP, per-class AP) as ``COCODetectionResults.mAP``: classes without GT (-1) are left out."""
    per_class = np.mean(precision, axis=(0, 2))
    aps = [float(v) if v > -1 else None for v in per_class]
    kept = per_class[per_class > -1]
    return (float(np.mean(kept)) if kept.size else None), aps


def _area_ignore(areas: np.ndarray) -> np.ndarray:
    """(n_areas, n) True where a box's pixel area lies outside a COCO size range."""
    return np.stack([(areas < lo) | (areas > hi) for lo, hi in AREAS.values()]) if len(areas) \
        else np.zeros((len(AREAS), 0), dtype=bool)


def match_image(img: ImageBoxes, acc: Accumulator | None, *, iou: float = 0.5,
                ul_match: Any = None) -> ImageResult:
    """Evaluate one image: FiftyOne's per-box fields at ``iou``, and feed ``acc`` (mAP, sizes).

    FiftyOne matches class by class; here all classes go through one greedy pass with the IoU of
    boxes of different classes set to 0: they can never match, so each class sees exactly its own
    matching (predictions of a class keep their stable confidence order, GT boxes their stable
    crowds-last order, ties the same "last GT of highest IoU").
    """
    n_gt, n_pred = len(img.gt_cls), len(img.pred_cls)
    crowd = img.gt_crowd if img.gt_crowd is not None else np.zeros(n_gt, dtype=bool)
    h, w = img.size if img.size is not None else (1, 1)
    gt_area_ign = _area_ignore(img.gt_xywh[:, 2] * w * img.gt_xywh[:, 3] * h)
    pred_area_ign = _area_ignore(img.pred_xywh[:, 2] * w * img.pred_xywh[:, 3] * h)
    nt, na = len(IOU_THRESHS), len(AREAS)
    thr = np.array([min(iou, 1 - 1e-10)] + IOU_THRESHS * na)
    g = np.argsort(crowd, kind="stable")  # crowds last, stable
    p = np.argsort(-img.pred_conf, kind="stable")  # highest confidence first, stable
    ious = box_ious(img.pred_xywh[p], img.gt_xywh[g], crowd[g])
    ious[img.pred_cls[p][:, None] != img.gt_cls[g][None, :]] = 0.0
    cg = crowd[g]
    ignore = np.concatenate([cg[None, :], np.repeat(cg[None, :] | gt_area_ign[:, g], nt, axis=0)])
    m = _greedy(ious, thr, ignore, cg)  # (1 + 40, P): position in g of the matched GT, -1 when none
    # rank of each prediction within its class, in confidence order (FiftyOne's max_preds cut)
    rank = np.zeros(n_pred, dtype=np.int64)
    if n_pred:
        cls_sorted = img.pred_cls[p]
        order = np.argsort(cls_sorted, kind="stable")
        first = np.searchsorted(cls_sorted[order], cls_sorted[order], side="left")
        rank[p[order]] = np.arange(n_pred) - first
    # rule 0: the fields FiftyOne writes
    pred_eval, pred_match, pred_iou = ["fp"] * n_pred, [-1] * n_pred, [None] * n_pred
    gt_eval, gt_match, gt_iou = ["fn"] * n_gt, [-1] * n_gt, [None] * n_gt
    m0 = m[0]
    for jj in np.flatnonzero(m0 >= 0).tolist():
        k = int(m0[jj])
        gi, j, v = int(g[k]), int(p[jj]), float(ious[jj, k])
        if gt_match[gi] < 0:  # a crowd keeps its first (most confident) match
            gt_eval[gi], gt_match[gi], gt_iou[gi] = "tp", j, v
        pred_eval[j], pred_match[j], pred_iou[j] = "tp", gi, v
    # matches in FiftyOne's order: by class (GT labels first seen, then labels only predicted), each
    # class's predictions by confidence, then its unmatched GT boxes
    matches: list[tuple] = []
    for c in dict.fromkeys([*img.gt_cls.tolist(), *img.pred_cls.tolist()]):
        for jj in np.flatnonzero(img.pred_cls[p] == c).tolist():
            j = int(p[jj])
            matches.append((pred_match[j], j, pred_iou[j]) if pred_match[j] >= 0 else (None, j, None))
        matches.extend((gi, None, None) for gi in np.flatnonzero(img.gt_cls == c).tolist() if gt_match[gi] < 0)
    tp = n_pred - pred_eval.count("fp")
    result = ImageResult(pred_eval, pred_match, pred_iou, gt_eval, gt_match, gt_iou,
                         tp=tp, fp=n_pred - tp, fn=gt_eval.count("fn"), matches=matches)
    if acc is not None:
        # rules 1..: counted tp, or left out of the curves (matched an ignored GT, or unmatched out of range)
        mm = m[1:]
        hit = mm >= 0
        hit_ignored = hit & np.take_along_axis(ignore[1:], np.maximum(mm, 0), axis=1) if n_gt else hit
        out_of_range = np.repeat(pred_area_ign[:, p], nt, axis=0)
        tp_all, ign_all = np.zeros((n_pred, nt * na), dtype=bool), np.zeros((n_pred, nt * na), dtype=bool)
        tp_all[p] = (hit & ~hit_ignored).T
        ign_all[p] = (hit_ignored | (~hit & out_of_range)).T
        gt_counted = np.ones((nt * na, n_gt), dtype=bool)
        gt_counted[:, g] = ~ignore[1:]
        tp_ul = ul_match(img) if ul_match is not None else None
        acc.add(img.pred_conf, img.pred_cls, rank, tp_all, ign_all, tp_ul, gt_counted, img.gt_cls, crowd)
    return result
