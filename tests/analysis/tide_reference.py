"""The same boxes through tidecv 1.0.1 (the reference) and through yolo_tl's error_types, side by side.

An image is a dict of numpy arrays: ``gt`` (G, 4) xyxy pixels, ``gt_cls``, ``crowd`` (optional),
``pred`` (P, 4), ``pred_cls``, ``conf``. tidecv gets ``[x, y, w, h]`` made by the same subtraction
that ``type_errors`` does, so both compute IoU on the very same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from yolo_tl.analysis.metrics import error_types as et
from yolo_tl.analysis.metrics.error_costs import ErrorAccumulator, ErrorBreakdown

TIDE_NAMES = {"ClassError": "cls", "BoxError": "loc", "OtherError": "both", "DuplicateError": "dupe",
              "BackgroundError": "bkg", "MissedError": "missed"}


@dataclass
class Side:
    """One side's answer: per image the type name of every prediction and GT, and the dAP figures."""

    pred_types: list[list[str]]
    missed: list[list[bool]]
    ap: float
    dap: dict[str, float]
    class_ap: dict[int, float]  # classes that are not empty in the original run
    class_fixed: dict[str, dict[int, float]]  # per run, classes not empty after the fix


def _xywh(b: np.ndarray) -> list[list[float]]:
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1).tolist()


def run_tide(images: list[dict], *, max_dets: int = 100) -> Side:
    """tidecv's TIDE.evaluate at 0.5 on in-memory Data objects; every box's type and every dAP."""
    from tidecv import TIDE, Data
    from tidecv.errors.main_errors import FalsePositiveError

    gt, preds = Data("gt", max_dets=max_dets), Data("preds", max_dets=max_dets)
    where: dict[int, tuple[int, int]] = {}
    gt_where: dict[int, tuple[int, int]] = {}
    for i, im in enumerate(images):
        gt.add_image(i, f"img{i}")
        crowd = im.get("crowd", np.zeros(len(im["gt_cls"]), bool))
        for k, (box, c, cr) in enumerate(zip(_xywh(im["gt"]), np.asarray(im["gt_cls"]).tolist(), crowd)):
            if cr:
                gt.add_ignore_region(i, c, box)
            else:
                gt_where[len(gt.annotations)] = (i, k)
                gt.add_ground_truth(i, c, box)
        for k, (box, c, s) in enumerate(zip(_xywh(im["pred"]), np.asarray(im["pred_cls"]).tolist(),
                                            np.asarray(im["conf"], dtype=np.float64).tolist())):
            where[len(preds.annotations)] = (i, k)
            preds.add_detection(i, c, s, box)
    run = TIDE().evaluate(gt, preds, mode=TIDE.BOX)
    types = [["capped"] * len(im["pred_cls"]) for im in images]
    missed = [[False] * len(im["gt_cls"]) for im in images]
    for p in preds.annotations:
        if p.get("used") is True:
            i, k = where[p["_id"]]
            types[i][k] = "tp"
    for err in run.errors:
        name = TIDE_NAMES[type(err).__name__]
        if name == "missed":
            i, k = gt_where[err.gt["_id"]]
            missed[i][k] = True
        else:
            i, k = where[err.pred["_id"]]
            types[i][k] = name
    main = {TIDE_NAMES[e.__name__]: v for e, v in run.fix_main_errors().items()}
    special = run.fix_special_errors()
    dap = {**main, "false_pos": special[FalsePositiveError], "false_neg": list(special.values())[1]}

    def per_class(data) -> dict[int, float]:
        return {c: o.get_ap() for c, o in data.objs.items() if not o.is_empty()}

    fixed = {TIDE_NAMES[e.__name__]: per_class(run.fix_errors(lambda x, e=e: isinstance(x, e)))
             for e in TIDE._error_types}
    fixed["false_pos"] = per_class(run.fix_errors(transform=FalsePositiveError.fix))
    fixed["false_neg"] = per_class(run.fix_errors(false_neg_dict=run.false_negatives))
    return Side(types, missed, run.ap, dap, per_class(run.ap_data), fixed)


def run_ours(images: list[dict], names: list[str], *, max_dets: int = 100) -> tuple[Side, ErrorBreakdown]:
    """The same images through type_batch (all at once), type_errors (one by one) and ErrorAccumulator."""
    acc = ErrorAccumulator(names)
    batch = et.type_batch([et.ImageInput(im["gt"], im["gt_cls"], im["pred"], im["pred_cls"], im["conf"],
                                         im.get("crowd")) for im in images], max_dets=max_dets)
    acc.add(batch)  # the whole list at once; each image alone must give the same
    types, missed = [], []
    for i, im in enumerate(images):
        typed = et.type_errors(im["gt"], im["gt_cls"], im["pred"], im["pred_cls"], im["conf"],
                               gt_crowd=im.get("crowd"), max_dets=max_dets)
        from_batch = batch.image(i)
        for name in typed.__dataclass_fields__:
            assert np.array_equal(getattr(typed, name), getattr(from_batch, name)), (i, name)
        types.append([et.TYPE_NAMES[c] for c in typed.pred_type.tolist()])
        missed.append((typed.gt_type == et.MISSED).tolist())
    res = acc.result()
    nan = float("nan")
    class_ap = {c: v.ap for c, v in enumerate(res.per_class.values()) if v.ap is not None}
    fixed = {name: {c: v.fixed_ap[name] for c, v in enumerate(res.per_class.values()) if v.fixed_ap[name] is not None}
             for name in et.ERROR_TYPES + et.SPECIAL}
    side = Side(types, missed, res.overall.ap if res.overall.ap is not None else nan,
                {k: (v if v is not None else nan) for k, v in res.overall.dap.items()}, class_ap, fixed)
    return side, res


def largest_difference(ours: Side, tide: Side) -> float:
    """Largest |ours - tidecv| over the AP and every dAP (0-100 scale); types must already agree."""
    diffs = [abs(ours.ap - tide.ap)] + [abs(ours.dap[k] - tide.dap[k]) for k in tide.dap]
    return max(diffs)


def assert_same(ours: Side, tide: Side, *, tol: float = 0.1) -> float:
    """Every box's type equal, every dAP (and per-class AP of every run) within ``tol`` AP points."""
    assert ours.pred_types == tide.pred_types
    assert ours.missed == tide.missed
    worst = largest_difference(ours, tide)
    assert worst <= tol, (ours.ap, tide.ap, ours.dap, tide.dap)
    assert ours.class_ap.keys() == tide.class_ap.keys()
    for c, v in tide.class_ap.items():
        assert abs(ours.class_ap[c] - v) <= tol
    for name, per in tide.class_fixed.items():
        mine = ours.class_fixed[name]
        assert mine.keys() == per.keys(), (name, mine, per)
        for c, v in per.items():
            assert abs(mine[c] - v) <= tol, (name, c, mine[c], v)
    return worst
