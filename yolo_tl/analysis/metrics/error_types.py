"""Why each error happened: TIDE's error types on every box, in numpy, a batch of images at a time.

``type_errors`` types every box of one image exactly as tidecv 1.0.1 does (``TIDEExample`` and
``TIDERun._eval_image``): the 100 most confident predictions of the image are kept, across classes;
each, by confidence, matches the unmatched GT box of its class with the highest IoU (the first on
ties) at IoU >= 0.5; an unmatched prediction inside a crowd of its class (IoU over its own area
> 0.5) is left out of the AP but still typed. An unmatched prediction is, in TIDE's order of tests:
``loc`` (its class, best IoU in [0.1, 0.5] with any GT of its class, matched ones included), ``cls``
(IoU >= 0.5 with a GT of another class), ``dupe`` (IoU >= 0.5 with a matched GT of its class),
``bkg`` (IoU <= 0.1 with every GT, or the image has none) or ``both``. An unmatched GT is ``missed``
unless a cls / loc error points at it; the most confident such error is the one TIDE's oracle fixes.

``type_batch`` does the same for many images at once (padded into one block, numpy across images;
``type_errors`` is a batch of one), and ``error_costs.ErrorAccumulator`` turns the types into dAP.
How a box gets its COCO object size (TIDE never shipped sizes): a GT box has the size of its own
area (w x h pixels; small <= 32^2 < medium <= 96^2 < large, TIDE's AREA qualifiers); a true
positive, cls, loc or dupe prediction the size of the GT it is about; a bkg or both prediction its
own. So the oracle never moves a box across sizes and each size is a self-contained evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from yolo_tl.analysis.metrics.evaluation import ImageBoxes
from yolo_tl.errors import AnnotationError

POS_THRESH, BG_THRESH, MAX_DETS = 0.5, 0.1, 100  # TIDE's t_f, t_b and Data.max_dets
TP, LOC, CLS, DUPE, BKG, BOTH, MISSED, CAPPED, CROWD = range(9)
TYPE_NAMES = ("tp", "loc", "cls", "dupe", "bkg", "both", "missed", "capped", "crowd")
ERROR_TYPES = ("cls", "loc", "both", "dupe", "bkg", "missed")  # TIDE's order of main errors
SPECIAL = ("false_pos", "false_neg")
SIZES = ("small", "medium", "large")
SIZE_LIMITS = np.array([32.0**2, 96.0**2])  # qualifiers.AREA: small <= 32^2 < medium <= 96^2 < large


def size_index(area: np.ndarray) -> np.ndarray:
    """0 small, 1 medium, 2 large for box areas in pixels (TIDE's AREA qualifiers)."""
    return np.searchsorted(SIZE_LIMITS, np.asarray(area, dtype=np.float64), side="left").astype(np.uint8)


@dataclass
class ImageErrors:
    """Every box of one image typed, in the caller's order (codes index ``TYPE_NAMES``).

    A prediction: tp, loc, cls, dupe, bkg, both, or capped (past the 100 kept). A GT box: tp, missed,
    crowd, or loc / cls when it is unmatched and errors of those types point at it (the type of the
    one the oracle fixes: such a GT is not missed, TIDE counts the error on the prediction).
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


def field_values(codes: np.ndarray) -> list[str | None]:
    """The ``error_type`` a box shows: the type's name, None for tp, capped and crowd boxes."""
    return [None if c in (TP, CAPPED, CROWD) else TYPE_NAMES[c] for c in codes.tolist()]


def _array(value: object, shape: tuple, dtype: type, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=dtype)
    if arr.size == 0:
        arr = arr.reshape((0, *shape[1:]))
    if arr.ndim != len(shape) or any(s not in (-1, a) for s, a in zip(shape, arr.shape)):
        raise AnnotationError(f"expected shape {shape} (-1: any), got {arr.shape}", field=name)
    return arr


class ImageInput(NamedTuple):
    """One image's boxes for ``type_batch``: ``[x1, y1, x2, y2]`` pixels, class indices, confidences."""

    gt_xyxy: object
    gt_cls: object
    pred_xyxy: object
    pred_cls: object
    pred_conf: object
    gt_crowd: object = None


@dataclass
class TypedBatch:
    """``type_batch``'s answer as flat arrays (images one after the other, ``*_off`` where each starts);
    ``kept``: flat indices of the kept predictions, by image, most confident first (the accumulation order)."""

    pred_off: np.ndarray
    gt_off: np.ndarray
    pred_type: np.ndarray
    pred_gt: np.ndarray
    pred_ignored: np.ndarray
    pred_fix: np.ndarray
    pred_size: np.ndarray
    pred_cls: np.ndarray
    pred_fix_cls: np.ndarray
    pred_conf: np.ndarray
    gt_type: np.ndarray
    gt_pred: np.ndarray
    gt_size: np.ndarray
    gt_cls: np.ndarray
    kept: np.ndarray
    kept_off: np.ndarray

    def __len__(self) -> int:
        return len(self.pred_off) - 1

    def image(self, i: int) -> ImageErrors:
        """Image ``i`` (views, indices local to the image)."""
        p, q = slice(self.pred_off[i], self.pred_off[i + 1]), slice(self.gt_off[i], self.gt_off[i + 1])
        k = self.kept[self.kept_off[i]:self.kept_off[i + 1]] - p.start
        return ImageErrors(self.pred_type[p], self.pred_gt[p], self.pred_ignored[p], self.pred_fix[p],
                           self.pred_size[p], self.gt_type[q], self.gt_pred[q], self.gt_size[q], k, self.pred_cls[p],
                           self.pred_fix_cls[p], self.pred_conf[p], self.gt_cls[q])


def type_errors(gt_xyxy: object, gt_cls: object, pred_xyxy: object, pred_cls: object, pred_conf: object, *,
                gt_crowd: object = None, max_dets: int = MAX_DETS, pos_thresh: float = POS_THRESH,
                bg_thresh: float = BG_THRESH) -> ImageErrors:
    """Type every box of one image as tidecv does; boxes ``[x1, y1, x2, y2]`` in pixels."""
    one = ImageInput(gt_xyxy, gt_cls, pred_xyxy, pred_cls, pred_conf, gt_crowd)
    return type_batch([one], max_dets=max_dets, pos_thresh=pos_thresh, bg_thresh=bg_thresh).image(0)


def _flat(images: Sequence[ImageInput]) -> tuple:
    gxy, gcls, crowd, pxy, pcls, conf = [], [], [], [], [], []
    for im in images:
        g = _array(im.gt_xyxy, (-1, 4), np.float64, "gt_xyxy")
        p = _array(im.pred_xyxy, (-1, 4), np.float64, "pred_xyxy")
        gxy.append(g)
        gcls.append(_array(im.gt_cls, (len(g),), np.int64, "gt_cls"))
        crowd.append(np.zeros(len(g), bool) if im.gt_crowd is None else _array(im.gt_crowd, (len(g),), bool,
                                                                                  "gt_crowd"))
        pxy.append(p)
        pcls.append(_array(im.pred_cls, (len(p),), np.int64, "pred_cls"))
        conf.append(_array(im.pred_conf, (len(p),), np.float64, "pred_conf"))
    counts = (np.array([len(x) for x in gxy], np.int64), np.array([len(x) for x in pxy], np.int64))
    return (*(np.concatenate(x) if x else np.zeros((0, 4) if i in (0, 3) else 0)
              for i, x in enumerate((gxy, gcls, crowd, pxy, pcls, conf))), *counts)


def _pad(n_img: int, img: np.ndarray, pos: np.ndarray, width: int, value: np.ndarray, fill: float) -> np.ndarray:
    out = np.full((n_img, width, *value.shape[1:]), fill, dtype=value.dtype)
    out[img, pos] = value
    return out


def type_batch(images: Sequence[ImageInput], *, max_dets: int = MAX_DETS, pos_thresh: float = POS_THRESH,
               bg_thresh: float = BG_THRESH) -> TypedBatch:
    """Type every box of many images at once, each exactly as tidecv does (``type_errors`` for one).

    The images are padded to one (images, predictions, GT) block, so pass batches of a few hundred."""
    gxy, gcls, crowd, pxy, pcls, conf, n_gt, n_pred = _flat(images)
    n_img = len(images)
    gt_off, pred_off = np.concatenate([[0], np.cumsum(n_gt)]), np.concatenate([[0], np.cumsum(n_pred)])
    # TIDE's boxes are [x, y, w, h] and pycocotools adds w back: the same operations here
    gt = np.concatenate([gxy[:, :2], gxy[:, 2:] - gxy[:, :2]], axis=1)
    pred = np.concatenate([pxy[:, :2], pxy[:, 2:] - pxy[:, :2]], axis=1)
    gt_size, pred_size = size_index(gt[:, 2] * gt[:, 3]), size_index(pred[:, 2] * pred[:, 3])
    p_img, g_img = np.repeat(np.arange(n_img), n_pred), np.repeat(np.arange(n_img), n_gt)
    order = np.lexsort((-conf, p_img))  # per image, Python's stable sort on -score
    rank = np.arange(len(order)) - pred_off[p_img[order]]
    kept = order[rank < max_dets]
    k_img, k_rank = p_img[kept], rank[rank < max_dets]
    n_kept = len(kept)
    width = int(min(n_pred.max(initial=0), max_dets))
    real = np.flatnonzero(~crowd)
    r_img = g_img[real]
    r_pos = np.arange(len(real)) - np.searchsorted(r_img, r_img, side="left")
    g_width = int(r_pos.max(initial=-1)) + 1
    pb = _pad(n_img, k_img, k_rank, width, pred[kept], 0.0)
    pc = _pad(n_img, k_img, k_rank, width, pcls[kept], -2)
    valid = _pad(n_img, k_img, k_rank, width, np.ones(n_kept, bool), False)
    gb = _pad(n_img, r_img, r_pos, g_width, gt[real], 0.0)
    gc = _pad(n_img, r_img, r_pos, g_width, gcls[real], -1)
    g_flat = _pad(n_img, r_img, r_pos, g_width, real, -1)
    iou = _ious(pb, gb, crowd=False)
    same = pc[:, :, None] == gc[:, None, :]
    cls_iou = iou * same
    rows = np.arange(n_img)
    match = np.full((n_img, width), -1, np.int64)
    used = np.zeros((n_img, g_width), bool)
    if g_width:
        for r in np.flatnonzero(cls_iou.max(axis=(0, 2)) >= pos_thresh).tolist():  # TIDE's greedy, by rank
            avail = cls_iou[:, r, :] * ~used
            k = avail.argmax(axis=1)
            ok = np.flatnonzero(avail[rows, k] >= pos_thresh)
            match[ok, r] = k[ok]
            used[ok, k[ok]] = True
    # an unmatched prediction: loc, cls, dupe, bkg or both, in TIDE's order of tests
    free = valid & (match < 0)
    has_gt = (gc >= 0).any(axis=1)[:, None]

    def best(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = values.argmax(axis=2) if g_width else np.zeros((n_img, width), np.int64)
        return k, (np.take_along_axis(values, k[:, :, None], axis=2)[:, :, 0] if g_width else
                   np.zeros((n_img, width)))

    k_loc, v_loc = best(cls_iou)
    k_cls, v_cls = best(iou * ~same)
    k_dupe, v_dupe = best(cls_iou * used[:, None, :])
    is_loc = free & has_gt & (bg_thresh <= v_loc) & (v_loc <= pos_thresh)
    is_cls = free & ~is_loc & (v_cls >= pos_thresh)
    is_dupe = free & ~is_loc & ~is_cls & (v_dupe >= pos_thresh)
    is_bkg = free & ~is_loc & ~is_cls & ~is_dupe & (iou.max(axis=2, initial=0.0) <= bg_thresh)
    ptype = np.select([match >= 0, is_loc, is_cls, is_dupe, is_bkg], [TP, LOC, CLS, DUPE, BKG], BOTH)
    target = np.select([match >= 0, is_loc, is_cls, is_dupe], [match, k_loc, k_cls, k_dupe], -1)
    # BestGTMatch: of the loc / cls errors on an unmatched GT, the most confident (the first) is fixed
    safe = np.maximum(target, 0)
    err = (is_loc | is_cls) & ~np.take_along_axis(used, safe, axis=1) if g_width else np.zeros_like(free)
    e_img, e_rank = np.nonzero(err)
    _, first = np.unique(e_img * max(g_width, 1) + target[e_img, e_rank], return_index=True)
    fix = np.zeros((n_img, width), bool)
    fix[e_img[first], e_rank[first]] = True
    # back to flat arrays: kept predictions are the valid cells in row-major order
    n_p, n_g = len(pcls), len(gcls)
    pred_type, pred_gt = np.full(n_p, CAPPED, np.uint8), np.full(n_p, -1, np.int64)
    pred_ignored, pred_fix, fix_cls = np.zeros(n_p, bool), np.zeros(n_p, bool), pcls.copy()
    t_flat = np.where(target >= 0, np.take_along_axis(g_flat, safe, axis=1) if g_width else -1, -1)[valid]
    pred_type[kept], pred_fix[kept] = ptype[valid], fix[valid]
    pred_gt[kept] = np.where(t_flat >= 0, t_flat - gt_off[k_img], -1)
    pred_size[kept[t_flat >= 0]] = gt_size[t_flat[t_flat >= 0]]
    c_flat = is_cls[valid]
    fix_cls[kept[c_flat]] = gcls[t_flat[c_flat]]
    gt_type, gt_pred = np.where(crowd, CROWD, MISSED).astype(np.uint8), np.full(n_g, -1, np.int64)
    local = np.full((n_img, width), -1, np.int64)
    local[valid] = kept - pred_off[k_img]
    m_img, m_rank = np.nonzero(match >= 0)
    gt_type[g_flat[m_img, match[m_img, m_rank]]] = TP
    gt_pred[g_flat[m_img, match[m_img, m_rank]]] = local[m_img, m_rank]
    b_img, b_rank = e_img[first], e_rank[first]
    gt_type[g_flat[b_img, target[b_img, b_rank]]] = ptype[b_img, b_rank]
    gt_pred[g_flat[b_img, target[b_img, b_rank]]] = local[b_img, b_rank]
    if crowd.any() and width:  # ignore regions: crowd IoU (over the prediction's area) > t_f, same class
        cr = np.flatnonzero(crowd)
        c_img = g_img[cr]
        c_pos = np.arange(len(cr)) - np.searchsorted(c_img, c_img, side="left")
        c_width = int(c_pos.max()) + 1
        cb = _pad(n_img, c_img, c_pos, c_width, gt[cr], 0.0)
        cc = _pad(n_img, c_img, c_pos, c_width, gcls[cr], -1)
        inside = (_ious(pb, cb, crowd=True) > pos_thresh) & (pc[:, :, None] == cc[:, None, :])
        pred_ignored[kept] = ((match < 0) & inside.any(axis=2))[valid]
    return TypedBatch(pred_off, gt_off, pred_type, pred_gt, pred_ignored, pred_fix, pred_size, pcls, fix_cls, conf,
                      gt_type, gt_pred, gt_size, gcls, kept,
                      np.concatenate([[0], np.cumsum(np.minimum(n_pred, max_dets))]))


def _ious(pred: np.ndarray, gt: np.ndarray, *, crowd: bool) -> np.ndarray:
    """(B, P, G) IoUs of ``[x, y, w, h]`` boxes with pycocotools' ``bbIou`` operations (crowd: over the
    prediction's area): w = min(x + w) - max(x), 0 unless both sides > 0. In place: the block is large."""
    px, py, pw, ph = (pred[:, :, None, i] for i in range(4))
    gx, gy, gw, gh = (gt[:, None, :, i] for i in range(4))
    w = np.minimum(px + pw, gx + gw)
    w -= np.maximum(px, gx)
    np.maximum(w, 0.0, out=w)
    h = np.minimum(py + ph, gy + gh)
    h -= np.maximum(py, gy)
    np.maximum(h, 0.0, out=h)
    w *= h  # the intersection, w * h where both > 0, else 0
    if crowd:
        union = np.broadcast_to(pw * ph, w.shape)
    else:
        union = np.add(pw * ph, gw * gh, out=h)
        union -= w
    return np.divide(w, union, out=np.zeros_like(w), where=w > 0)


def input_from_boxes(img: ImageBoxes) -> ImageInput:
    """evaluation.py's relative ``[x, y, w, h]`` boxes as ``type_batch`` input (pixels from ``img.size``,
    which object sizes need)."""
    h, w = img.size if img.size is not None else (1, 1)
    scale = np.array([w, h, w, h], dtype=np.float64)

    def xyxy(b: np.ndarray) -> np.ndarray:
        b = b.reshape(-1, 4) * scale
        return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)

    return ImageInput(xyxy(img.gt_xywh), img.gt_cls, xyxy(img.pred_xywh), img.pred_cls, img.pred_conf, img.gt_crowd)


def type_image_boxes(img: ImageBoxes, *, max_dets: int = MAX_DETS) -> ImageErrors:
    """``type_errors`` for one ``ImageBoxes`` (``type_batch([input_from_boxes(...), ...])`` for many)."""
    return type_batch([input_from_boxes(img)], max_dets=max_dets).image(0)


