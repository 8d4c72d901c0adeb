"""Why each error happened: TIDE's error types and what each costs in AP50, in numpy, one image at a time.

``type_errors`` types every box of one image exactly as tidecv 1.0.1 does (``TIDEExample`` and
``TIDERun._eval_image``): the 100 most confident predictions of the image are kept, across classes;
each, by confidence, matches the unmatched GT box of its class with the highest IoU (the first on
ties) at IoU >= 0.5; an unmatched prediction inside a crowd of its class (IoU over its own area
> 0.5) is left out of the AP but still typed. An unmatched prediction is, in TIDE's order of tests:
``loc`` (its class, best IoU in [0.1, 0.5] with any GT of its class, matched ones included), ``cls``
(IoU >= 0.5 with a GT of another class), ``dupe`` (IoU >= 0.5 with a matched GT of its class),
``bkg`` (IoU <= 0.1 with every GT, or the image has none) or ``both``. An unmatched GT is ``missed``
unless a cls / loc error points at it; the most confident such error is the one TIDE's oracle fixes.

``ErrorAccumulator`` keeps 19 bytes per kept prediction and per-class GT counts, and computes TIDE's
dAP (``TIDERun.fix_main_errors`` / ``fix_special_errors``): each type fixed on its own against the
original, plus the FalsePos and FalseNeg bounds, with TIDE's AP (101 recall points, classes with
predictions but no GT count as AP 0) and its order on tied scores (in a fixed run the error points
come before the original true positives). Overall, per class and per COCO object size: a GT box has
the size of its own area (w x h pixels; small <= 32^2 < medium <= 96^2 < large, TIDE's AREA
qualifiers); a true positive, cls, loc or dupe prediction the size of the GT it is about; a bkg or
both prediction its own. Each size is then a self-contained TIDE evaluation of its boxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from yolo_tl.analysis.metrics.evaluation import ImageBoxes, _Columns
from yolo_tl.errors import AnnotationError

POS_THRESH, BG_THRESH, MAX_DETS = 0.5, 0.1, 100  # TIDE's t_f, t_b and Data.max_dets
TP, LOC, CLS, DUPE, BKG, BOTH, MISSED, CAPPED, CROWD = range(9)
TYPE_NAMES = ("tp", "loc", "cls", "dupe", "bkg", "both", "missed", "capped", "crowd")
ERROR_TYPES = ("cls", "loc", "both", "dupe", "bkg", "missed")  # TIDE's order of main errors
SPECIAL = ("false_pos", "false_neg")
SIZES = ("small", "medium", "large")
SIZE_LIMITS = np.array([32.0**2, 96.0**2])  # qualifiers.AREA: small <= 32^2 < medium <= 96^2 < large
RECALL = np.arange(101) / 100  # TIDE's x_range, [x / 100 for x in range(101)] to the last bit
_IGNORED, _FIX = 1, 2  # flag bits of a kept prediction


def size_index(area: np.ndarray) -> np.ndarray:
    """0 small, 1 medium, 2 large for box areas in pixels (TIDE's AREA qualifiers)."""
    return np.searchsorted(SIZE_LIMITS, np.asarray(area, dtype=np.float64), side="left").astype(np.uint8)


@dataclass
class ImageErrors:
    """Every box of one image typed, in the caller's order (codes index ``TYPE_NAMES``).

    ``pred_gt`` / ``gt_pred``: the GT a prediction is about (tp: matched, loc / cls: pointed at,
    dupe: the matched GT it repeats) and the prediction a GT is about (tp: its match, loc / cls: the
    error the oracle fixes); -1 when none. ``pred_fix``: the oracle turns this loc / cls error into a
    true positive. ``pred_ignored``: inside a crowd, left out of the AP. ``order``: the kept
    predictions, most confident first (TIDE's order).
    """

    pred_type: np.ndarray
    pred_gt: np.ndarray
    pred_ignored: np.ndarray
    pred_fix: np.ndarray
    pred_size: np.ndarray
    gt_type: np.ndarray
    gt_pred: np.ndarray
    gt_size: np.ndarray
    order: np.ndarray
    pred_cls: np.ndarray
    pred_fix_cls: np.ndarray
    pred_conf: np.ndarray
    gt_cls: np.ndarray

    def counts(self) -> dict[str, int]:
        """Number of boxes per error type (the sample's counts; tp, capped and crowd left out)."""
        kept = self.pred_type[self.order]
        n = np.bincount(kept, minlength=len(TYPE_NAMES))
        n[MISSED] = int(np.sum(self.gt_type == MISSED))
        return {t: int(n[TYPE_NAMES.index(t)]) for t in ERROR_TYPES}


def field_values(codes: np.ndarray) -> list[Optional[str]]:
    """The ``error_type`` a box shows: the type's name, None for tp, capped and crowd boxes."""
    return [None if c in (TP, CAPPED, CROWD) else TYPE_NAMES[c] for c in codes.tolist()]


def _array(value: object, shape: tuple, dtype: type, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=dtype)
    if arr.size == 0:
        arr = arr.reshape((0, *shape[1:]))
    if arr.ndim != len(shape) or any(s not in (-1, a) for s, a in zip(shape, arr.shape)):
        raise AnnotationError(f"expected shape {shape} (-1: any), got {arr.shape}", field=name)
    return arr


def type_errors(gt_xyxy: object, gt_cls: object, pred_xyxy: object, pred_cls: object, pred_conf: object, *,
                gt_crowd: object = None, max_dets: int = MAX_DETS, pos_thresh: float = POS_THRESH,
                bg_thresh: float = BG_THRESH) -> ImageErrors:
    """Type every box of one image as tidecv does; boxes ``[x1, y1, x2, y2]`` in pixels."""
    gxy = _array(gt_xyxy, (-1, 4), np.float64, "gt_xyxy")
    n_gt = len(gxy)
    gcls = _array(gt_cls, (n_gt,), np.int64, "gt_cls")
    pxy = _array(pred_xyxy, (-1, 4), np.float64, "pred_xyxy")
    n_pred = len(pxy)
    pcls = _array(pred_cls, (n_pred,), np.int64, "pred_cls")
    conf = _array(pred_conf, (n_pred,), np.float64, "pred_conf")
    crowd = np.zeros(n_gt, bool) if gt_crowd is None else _array(gt_crowd, (n_gt,), bool, "gt_crowd")
    # TIDE's boxes are [x, y, w, h] and pycocotools adds w back: the same operations here
    gt = np.concatenate([gxy[:, :2], gxy[:, 2:] - gxy[:, :2]], axis=1)
    pred = np.concatenate([pxy[:, :2], pxy[:, 2:] - pxy[:, :2]], axis=1)
    gt_size = size_index(gt[:, 2] * gt[:, 3])
    pred_size = size_index(pred[:, 2] * pred[:, 3])
    pred_type, pred_gt = np.full(n_pred, CAPPED, np.uint8), np.full(n_pred, -1, np.int64)
    pred_ignored, pred_fix, fix_cls = np.zeros(n_pred, bool), np.zeros(n_pred, bool), pcls.copy()
    gt_type, gt_pred = np.where(crowd, CROWD, MISSED).astype(np.uint8), np.full(n_gt, -1, np.int64)
    order = np.argsort(-conf, kind="stable")[:max_dets]  # Python's stable sort on -score, then [:max_dets]
    real = np.flatnonzero(~crowd) if crowd.any() else np.arange(n_gt)
    pb, pc, n_keep, n_real = pred[order], pcls[order], len(order), len(real)
    ptype, target = np.full(n_keep, BKG, np.uint8), np.full(n_keep, -1, np.int64)
    if n_real and n_keep:
        gc = gcls[real]
        iou = _ious(pb, gt[real], crowd=False)
        same = pc[:, None] == gc[None, :]
        cls_iou = iou * same
        match = _match(cls_iou, pos_thresh)
        used = np.zeros(n_real, bool)
        used[match[match >= 0]] = True
        free = np.flatnonzero(match < 0)
        ptype[match >= 0], target[match >= 0] = TP, match[match >= 0]
        # an unmatched prediction: loc, cls, dupe, bkg or both, in TIDE's order of tests
        f_iou, f_cls = iou[free], cls_iou[free]
        k_loc = f_cls.argmax(axis=1)
        v_loc = f_cls[np.arange(len(free)), k_loc]
        non_iou = f_iou * ~same[free]
        k_cls = non_iou.argmax(axis=1)
        v_cls = non_iou[np.arange(len(free)), k_cls]
        used_iou = f_cls * used
        k_dupe = used_iou.argmax(axis=1)
        v_dupe = used_iou[np.arange(len(free)), k_dupe]
        is_loc = (bg_thresh <= v_loc) & (v_loc <= pos_thresh)
        is_cls = ~is_loc & (v_cls >= pos_thresh)
        is_dupe = ~is_loc & ~is_cls & (v_dupe >= pos_thresh)
        is_bkg = ~is_loc & ~is_cls & ~is_dupe & (f_iou.max(axis=1, initial=0.0) <= bg_thresh)
        f_type = np.select([is_loc, is_cls, is_dupe, is_bkg], [LOC, CLS, DUPE, BKG], BOTH).astype(np.uint8)
        f_target = np.select([is_loc, is_cls, is_dupe], [k_loc, k_cls, k_dupe], -1)
        ptype[free], target[free] = f_type, f_target
        # BestGTMatch: of the loc / cls errors on an unmatched GT, the most confident (the first) is fixed
        err = free[(is_loc | is_cls) & ~used[np.maximum(f_target, 0)]]
        _, first = np.unique(target[err], return_index=True)
        best = err[first]
        pred_fix[order[best]] = True
        g_type = np.where(used, TP, MISSED).astype(np.uint8)
        g_pred = np.full(n_real, -1, np.int64)
        g_pred[match[match >= 0]] = order[match >= 0]
        g_type[target[best]], g_pred[target[best]] = ptype[best], order[best]
        gt_type[real], gt_pred[real] = g_type, g_pred
        is_c = free[is_cls]
        fix_cls[order[is_c]] = gc[target[is_c]]
        has = target >= 0
        pred_size[order[has]] = gt_size[real[target[has]]]
        pred_gt[order] = np.where(has, real[np.maximum(target, 0)], -1)
    else:
        match = np.full(n_keep, -1, np.int64)
    if n_real < n_gt and n_keep:  # ignore regions: crowd IoU (over the prediction's area) > t_f, same class
        crowds = np.flatnonzero(crowd)
        ciou = _ious(pb, gt[crowds], crowd=True)
        pred_ignored[order] = (match < 0) & np.any((ciou > pos_thresh) & (pc[:, None] == gcls[crowds][None, :]), axis=1)
    pred_type[order] = ptype
    return ImageErrors(pred_type, pred_gt, pred_ignored, pred_fix, pred_size, gt_type, gt_pred, gt_size, order,
                       pcls, fix_cls, conf, gcls)


def _ious(pred: np.ndarray, gt: np.ndarray, *, crowd: bool) -> np.ndarray:
    """(P, G) IoUs of ``[x, y, w, h]`` boxes with pycocotools' ``bbIou`` operations (crowd: over the pred area)."""
    px, py, pw, ph = pred.T[:, :, None]
    gx, gy, gw, gh = gt.T[:, None, :]
    w = np.minimum(px + pw, gx + gw) - np.maximum(px, gx)
    h = np.minimum(py + ph, gy + gh) - np.maximum(py, gy)
    inter = np.maximum(w, 0.0) * np.maximum(h, 0.0)  # w * h where both > 0, else 0
    union = pw * ph if crowd else pw * ph + gw * gh - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=inter > 0)


def _match(cls_iou: np.ndarray, pos_thresh: float) -> np.ndarray:
    """TIDE's greedy matching: each prediction (by confidence) takes the unused GT of its class with the
    highest IoU, the first on ties, when that IoU >= t_f. (P,) GT index, -1 when none. Plain Python over the
    few pairs above t_f: faster than numpy on arrays this small."""
    match = np.full(len(cls_iou), -1, np.int64)
    jj, kk = np.nonzero(cls_iou >= pos_thresh)
    if not len(jj):
        return match
    vals = cls_iou[jj, kk].tolist()
    taken: set = set()
    cur, best, best_v = -1, -1, -1.0
    for j, k, v in zip(jj.tolist() + [-2], kk.tolist() + [-1], vals + [0.0]):
        if j != cur:
            if best >= 0:
                match[cur], best = best, -1
                taken.add(match[cur].item())
            cur, best_v = j, -1.0
        if k not in taken and v > best_v:
            best, best_v = k, v
    return match


def type_image_boxes(img: ImageBoxes, *, max_dets: int = MAX_DETS) -> ImageErrors:
    """``type_errors`` for evaluation.py's relative ``[x, y, w, h]`` boxes (pixels from ``img.size``)."""
    h, w = img.size if img.size is not None else (1, 1)
    scale = np.array([w, h, w, h], dtype=np.float64)

    def xyxy(b: np.ndarray) -> np.ndarray:
        b = b.reshape(-1, 4) * scale
        return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)

    return type_errors(xyxy(img.gt_xywh), img.gt_cls, xyxy(img.pred_xywh), img.pred_cls, img.pred_conf,
                       gt_crowd=img.gt_crowd, max_dets=max_dets)


@dataclass
class ErrorCosts:
    """AP50 (TIDE's, 0-100), the AP after each oracle fix, dAP per error type and for the two bounds
    (main types clamped at 0 as TIDE does; None where a slice has no box), and counts of boxes per type."""

    ap: Optional[float]
    fixed_ap: dict[str, Optional[float]]
    dap: dict[str, Optional[float]]
    counts: dict[str, int]


@dataclass
class ErrorBreakdown:
    """What each error type costs: overall, per class name and per object size."""

    overall: ErrorCosts
    per_class: dict[str, ErrorCosts] = field(default_factory=dict)
    per_size: dict[str, ErrorCosts] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready (None for an AP that does not exist: a class with no box in that slice)."""
        def one(c: ErrorCosts) -> dict:
            return {"ap50": c.ap, "ap50_fixed": dict(c.fixed_ap), "dap": dict(c.dap), "counts": dict(c.counts)}

        return {"overall": one(self.overall), "per_class": {k: one(v) for k, v in self.per_class.items()},
                "per_size": {k: one(v) for k, v in self.per_size.items()}}


def _class_aps(cls: np.ndarray, score: np.ndarray, tp: np.ndarray, group: np.ndarray, num_gt: np.ndarray
               ) -> np.ndarray:
    """TIDE's ``APDataObject.get_ap`` for every class at once: (nc,), NaN where a class is empty.

    Points are in insertion order (their index); ties on score keep ``group`` (0 first), then that order."""
    nc = len(num_gt)
    order = np.lexsort((group, -score, cls))  # lexsort is stable: insertion order breaks the last ties
    cls_s, tp_s = cls[order], tp[order]
    bounds = np.searchsorted(cls_s, np.arange(nc + 1), side="left")
    aps = np.full(nc, np.nan)
    for c in range(nc):
        a, b, n = bounds[c], bounds[c + 1], int(num_gt[c])
        if b == a and n == 0:
            continue  # is_empty(): left out of the mean
        if n <= 0 or b == a:
            aps[c] = 0.0
            continue
        hits = np.cumsum(tp_s[a:b]).astype(np.float64)
        precision = np.maximum.accumulate((hits / np.arange(1, b - a + 1))[::-1])[::-1]
        idx = np.searchsorted(hits / n, RECALL, side="left")
        aps[c] = float(np.sum(precision[idx[idx < len(precision)]])) / len(RECALL) * 100
    return aps


class ErrorAccumulator:
    """TIDE's error types and dAP over a whole split, with memory flat in the number of images:
    19 bytes per kept prediction (score, class, class after the oracle fix, type, flags, size) and
    (size, class) GT counts."""

    def __init__(self, names: list[str]) -> None:
        self.names = list(names)
        nc = len(self.names)
        self.cols = _Columns(conf=np.zeros(0), cls=np.zeros(0, np.int32), fix_cls=np.zeros(0, np.int32),
                             type=np.zeros(0, np.uint8), flags=np.zeros(0, np.uint8), size=np.zeros(0, np.uint8))
        self.num_gt = np.zeros((len(SIZES), nc), np.int64)  # non-crowd GT
        self.missed = np.zeros((len(SIZES), nc), np.int64)
        self.unmatched = np.zeros((len(SIZES), nc), np.int64)  # TIDE's false_negatives
        self.type_counts = np.zeros((len(SIZES), len(TYPE_NAMES), nc), np.int64)  # pred class; GT class for missed
        self.images = 0

    def add(self, img: ImageErrors) -> None:
        """Append one typed image (images in a fixed order: it breaks ties on score, as in TIDE)."""
        nc = len(self.names)
        for arr, name in ((img.pred_cls, "pred_cls"), (img.gt_cls, "gt_cls")):
            if len(arr) and (arr.min() < 0 or arr.max() >= nc):
                raise AnnotationError(f"class index outside 0..{nc - 1}", field=name)
        o = img.order
        flags = img.pred_ignored[o].astype(np.uint8) * _IGNORED | img.pred_fix[o].astype(np.uint8) * _FIX
        self.cols.append(conf=img.pred_conf[o].astype(np.float64), cls=img.pred_cls[o].astype(np.int32),
                         fix_cls=img.pred_fix_cls[o].astype(np.int32), type=img.pred_type[o], flags=flags,
                         size=img.pred_size[o])
        real = img.gt_type != CROWD
        np.add.at(self.num_gt, (img.gt_size[real], img.gt_cls[real]), 1)
        miss = img.gt_type == MISSED
        np.add.at(self.missed, (img.gt_size[miss], img.gt_cls[miss]), 1)
        unm = real & (img.gt_type != TP)
        np.add.at(self.unmatched, (img.gt_size[unm], img.gt_cls[unm]), 1)
        np.add.at(self.type_counts, (img.pred_size[o], img.pred_type[o], img.pred_cls[o]), 1)
        np.add.at(self.type_counts, (img.gt_size[miss], MISSED, img.gt_cls[miss]), 1)
        self.images += 1

    def _costs(self, sel: np.ndarray, sizes: list[int]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(AP per class, AP per class of each fixed run) for the points in ``sel`` and GT of ``sizes``."""
        typ, flags = self.cols["type"][sel], self.cols["flags"][sel]
        cls, fix_cls, score = self.cols["cls"][sel], self.cols["fix_cls"][sel], self.cols["conf"][sel]
        num_gt = self.num_gt[sizes].sum(axis=0)
        kept = (flags & _IGNORED) == 0
        is_tp = typ == TP
        group = is_tp.astype(np.int8)  # fix_errors pushes the errors first, then the original tps

        def aps(keep: np.ndarray, c: np.ndarray, tp: np.ndarray, n: np.ndarray, s: np.ndarray = score,
                g: np.ndarray = group) -> np.ndarray:
            return _class_aps(c[keep], s[keep], tp[keep], g[keep], n)

        base = aps(kept, cls, is_tp, num_gt, g=np.zeros(len(typ), np.int8))
        runs: dict[str, np.ndarray] = {}
        for name in ERROR_TYPES:
            if name == "missed":
                runs[name] = aps(kept, cls, is_tp, num_gt - self.missed[sizes].sum(axis=0))
                continue
            this = typ == TYPE_NAMES.index(name)
            if name in ("cls", "loc"):
                fixed = this & ((flags & _FIX) != 0)
                runs[name] = aps((kept & ~this) | fixed, np.where(fixed, fix_cls, cls), is_tp | fixed, num_gt)
            else:
                runs[name] = aps(kept & ~this, cls, is_tp, num_gt)
        runs["false_pos"] = aps(kept, cls, is_tp, num_gt, s=is_tp.astype(np.float64))
        runs["false_neg"] = aps(kept, cls, is_tp, num_gt - self.unmatched[sizes].sum(axis=0))
        return base, runs

    def _slice(self, base: np.ndarray, runs: dict[str, np.ndarray], col: Optional[int], counts: np.ndarray
               ) -> ErrorCosts:
        def mean(a: np.ndarray) -> Optional[float]:
            if col is not None:
                return None if np.isnan(a[col]) else float(a[col])
            ok = a[~np.isnan(a)]
            return float(ok.mean()) if ok.size else None

        ap = mean(base)
        fixed, dap = {}, {}
        for name, run in runs.items():
            new = mean(run)
            fixed[name] = 0.0 if new is None and ap is not None and col is None else new  # nothing left at all
            if ap is None or fixed[name] is None:
                dap[name] = None
            else:  # TIDE clamps the main types at 0 (binning noise), not the two bounds
                dap[name] = fixed[name] - ap if name in SPECIAL else max(fixed[name] - ap, 0.0)
        return ErrorCosts(ap, fixed, dap, {t: int(counts[TYPE_NAMES.index(t)]) for t in ERROR_TYPES})

    def result(self) -> ErrorBreakdown:
        """AP50 and dAP per error type: overall, per class, per object size."""
        all_sizes = list(range(len(SIZES)))
        base, runs = self._costs(np.ones(len(self.cols["type"]), bool), all_sizes)
        counts = self.type_counts.sum(axis=0)
        out = ErrorBreakdown(self._slice(base, runs, None, counts.sum(axis=1)))
        for c, name in enumerate(self.names):
            out.per_class[name] = self._slice(base, runs, c, counts[:, c])
        size = self.cols["size"]
        for s, name in enumerate(SIZES):
            b, r = self._costs(size == s, [s])
            out.per_size[name] = self._slice(b, r, None, self.type_counts[s].sum(axis=1))
        return out
