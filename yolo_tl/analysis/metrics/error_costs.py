"""What each TIDE error type costs in AP50: TIDE's oracle fixes over a whole split, in numpy.

``ErrorAccumulator`` keeps 19 bytes per kept prediction (score, class, class after the oracle fix,
type, flags, size) and (size, class) GT counts, and computes TIDE's dAP (``TIDERun.fix_main_errors``
/ ``fix_special_errors``): each type fixed on its own against the original, plus the FalsePos and
FalseNeg bounds, with TIDE's AP (101 recall points; classes with predictions but no GT count as AP 0)
and its order on tied scores (in a fixed run the error points come before the original true
positives). Overall, per class and per COCO object size (see error_types.py for how a box gets its size:
each size is then a self-contained TIDE evaluation of its boxes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from yolo_tl.analysis.metrics.error_types import (
    CROWD,
    ERROR_TYPES,
    MISSED,
    SIZES,
    SPECIAL,
    TP,
    TYPE_NAMES,
    ImageErrors,
    TypedBatch,
)
from yolo_tl.analysis.metrics.evaluation import _Columns
from yolo_tl.errors import AnnotationError

_IGNORED, _FIX = 1, 2  # flag bits of a kept prediction
RECALL = np.arange(101) / 100  # TIDE's x_range, [x / 100 for x in range(101)] to the last bit


@dataclass
class ErrorCosts:
    """AP50 (TIDE's, 0-100), the AP after each oracle fix, dAP per error type and for the two bounds
    (main types clamped at 0 as TIDE does; None where a slice has no box), and counts of boxes per type."""

    ap: float | None
    fixed_ap: dict[str, float | None]
    dap: dict[str, float | None]
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

    @classmethod
    def from_dict(cls, d: dict) -> ErrorBreakdown:
        """Back from ``to_dict()`` (the CLI renders the report's JSON)."""
        def one(c: dict) -> ErrorCosts:
            return ErrorCosts(c["ap50"], dict(c["ap50_fixed"]), dict(c["dap"]), dict(c["counts"]))

        return cls(one(d["overall"]), {k: one(v) for k, v in d["per_class"].items()},
                   {k: one(v) for k, v in d["per_size"].items()})


def _class_aps(order: np.ndarray, keep: np.ndarray, cls: np.ndarray, tp: np.ndarray, num_gt: np.ndarray
               ) -> np.ndarray:
    """TIDE's ``APDataObject.get_ap`` for every class: (nc,), NaN where a class is empty (left out of the mean).

    ``order``: every point, in the run's order on score (ties as TIDE's insertion order breaks them);
    ``keep``: the points in this run; ``cls`` / ``tp``: their class and outcome in this run."""
    nc = len(num_gt)
    o = order[keep[order]]
    c = cls[o]
    by_class = np.argsort(c, kind="stable")  # keeps the score order inside each class
    tp_s = tp[o[by_class]]
    bounds = np.searchsorted(c[by_class], np.arange(nc + 1), side="left")
    aps = np.full(nc, np.nan)
    for k in range(nc):
        a, b, n = bounds[k], bounds[k + 1], int(num_gt[k])
        if b == a and n == 0:
            continue  # is_empty(): left out of the mean
        if n <= 0 or b == a:
            aps[k] = 0.0
            continue
        hits = np.cumsum(tp_s[a:b]).astype(np.float64)
        precision = np.maximum.accumulate((hits / np.arange(1, b - a + 1))[::-1])[::-1]
        idx = np.searchsorted(hits / n, RECALL, side="left")
        aps[k] = float(np.sum(precision[idx[idx < len(precision)]])) / len(RECALL) * 100
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

    def add(self, typed: ImageErrors | TypedBatch) -> None:
        """Append one typed image or batch (in a fixed order: it breaks ties on score, as in TIDE)."""
        nc = len(self.names)
        for arr, name in ((typed.pred_cls, "pred_cls"), (typed.gt_cls, "gt_cls")):
            if len(arr) and (arr.min() < 0 or arr.max() >= nc):
                raise AnnotationError(f"class index outside 0..{nc - 1}", field=name)
        o = typed.kept if isinstance(typed, TypedBatch) else typed.order
        flags = typed.pred_ignored[o].astype(np.uint8) * _IGNORED | typed.pred_fix[o].astype(np.uint8) * _FIX
        self.cols.append(conf=typed.pred_conf[o].astype(np.float64), cls=typed.pred_cls[o].astype(np.int32),
                         fix_cls=typed.pred_fix_cls[o].astype(np.int32), type=typed.pred_type[o], flags=flags,
                         size=typed.pred_size[o])
        gt_type, gt_size, gt_cls = typed.gt_type, typed.gt_size, typed.gt_cls
        real = gt_type != CROWD
        np.add.at(self.num_gt, (gt_size[real], gt_cls[real]), 1)
        miss = gt_type == MISSED
        np.add.at(self.missed, (gt_size[miss], gt_cls[miss]), 1)
        unm = real & (gt_type != TP)
        np.add.at(self.unmatched, (gt_size[unm], gt_cls[unm]), 1)
        np.add.at(self.type_counts, (typed.pred_size[o], typed.pred_type[o], typed.pred_cls[o]), 1)
        np.add.at(self.type_counts, (gt_size[miss], MISSED, gt_cls[miss]), 1)
        self.images += len(typed) if isinstance(typed, TypedBatch) else 1

    def _orders(self) -> dict[str, np.ndarray]:
        """The three orders TIDE's runs sort points in (stable sorts: insertion order breaks ties):
        the original (score), a fixed run (score, then the errors before the original tps, as
        ``fix_errors`` pushes them) and FalsePos (tps, scored 1, before everything else, scored 0)."""
        score, is_tp = self.cols["conf"], self.cols["type"] == TP
        return {"base": np.argsort(-score, kind="stable"), "fixed": np.lexsort((is_tp, -score)),
                "false_pos": np.argsort(~is_tp, kind="stable")}

    def _costs(self, orders: dict[str, np.ndarray], sel: np.ndarray, sizes: list[int]
               ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(AP per class, AP per class of each fixed run) for the points in ``sel`` and GT of ``sizes``."""
        typ, flags, cls, fix_cls = self.cols["type"], self.cols["flags"], self.cols["cls"], self.cols["fix_cls"]
        num_gt = self.num_gt[sizes].sum(axis=0)
        kept = sel & ((flags & _IGNORED) == 0)
        is_tp, fixed_order = typ == TP, orders["fixed"]
        base = _class_aps(orders["base"], kept, cls, is_tp, num_gt)
        runs: dict[str, np.ndarray] = {}
        for name in ERROR_TYPES:
            if name == "missed":
                runs[name] = _class_aps(fixed_order, kept, cls, is_tp, num_gt - self.missed[sizes].sum(axis=0))
                continue
            this = typ == TYPE_NAMES.index(name)
            if name in ("cls", "loc"):  # the oracle's pick becomes a tp (of the GT's class), the others go
                fixed = sel & this & ((flags & _FIX) != 0)
                runs[name] = _class_aps(fixed_order, (kept & ~this) | fixed, np.where(fixed, fix_cls, cls),
                                        is_tp | fixed, num_gt)
            else:
                runs[name] = _class_aps(fixed_order, kept & ~this, cls, is_tp, num_gt)
        runs["false_pos"] = _class_aps(orders["false_pos"], kept, cls, is_tp, num_gt)
        runs["false_neg"] = _class_aps(fixed_order, kept, cls, is_tp, num_gt - self.unmatched[sizes].sum(axis=0))
        return base, runs

    def _slice(self, base: np.ndarray, runs: dict[str, np.ndarray], col: int | None, counts: np.ndarray
               ) -> ErrorCosts:
        def mean(a: np.ndarray) -> float | None:
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
        orders = self._orders()
        base, runs = self._costs(orders, np.ones(len(self.cols["type"]), bool), list(range(len(SIZES))))
        counts = self.type_counts.sum(axis=0)
        out = ErrorBreakdown(self._slice(base, runs, None, counts.sum(axis=1)))
        for c, name in enumerate(self.names):
            out.per_class[name] = self._slice(base, runs, c, counts[:, c])
        size = self.cols["size"]
        for s, name in enumerate(SIZES):
            b, r = self._costs(orders, size == s, [s])
            out.per_size[name] = self._slice(b, r, None, self.type_counts[s].sum(axis=1))
        return out
