"""Fill a FiftyOne dataset with evaluated samples, one batch at a time, and register the evaluation.

For each batch: match every image (``evaluation.match_image``), give every box its label id,
``eval`` / ``eval_id`` / ``eval_iou`` and every sample its ``eval_tp`` / ``eval_fp`` / ``eval_fn``
(and ``errors``), TIDE's ``error_type`` on every box and the per-sample ``error_counts``
(``metrics/error_types.py``, typed for the whole batch at once), and write them with the samples
in one bulk insert (``ingest.SampleWriter``).
Only small accumulators outlive a batch: the matches FiftyOne's results store go to a temporary
file (``match_store``) and from there into the run's results, and the mAP arrays take a few
dozen bytes per prediction (``evaluation.Accumulator``).
``finish`` registers the run as FiftyOne's own (``evaluation_run``), or, with a FiftyOne that
stores runs differently, runs ``evaluate_detections`` instead, with a warning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np

from yolo_tl.analysis.collect import EVAL_KEY, GT, PRED, RawBox
from yolo_tl.analysis.metrics.error_costs import ErrorAccumulator
from yolo_tl.analysis.metrics.error_types import ImageErrors, field_values, input_from_boxes, type_batch
from yolo_tl.analysis.metrics.evaluation import Accumulator, ImageBoxes, match_image
from yolo_tl.analysis.metrics.map_steps import confusion_image, ultralytics_matcher
from yolo_tl.analysis.store.match_store import MatchStore
from yolo_tl.analysis.store.registered_run import can_register, fiftyone_evaluate, register_evaluation
from yolo_tl.analysis.store.sample_insert import SampleRow, SampleWriter

log = logging.getLogger(__name__)


class Item(NamedTuple):
    """One image to add: path, GT and predicted boxes, (height, width), and which GT boxes are crowds."""

    filepath: str
    ground_truth: Sequence[RawBox]
    predictions: Sequence[RawBox]
    size: tuple[int, int] | None
    crowd: Sequence[bool] | None = None


def _attrs(key: str, oid: Any, outcome: str, other: Any, iou: float | None) -> dict:
    """A box's evaluation attributes as FiftyOne stores them (an unmatched box has no ``_iou``)."""
    out = {"_id": oid, key: outcome, f"{key}_id": str(other) if other is not None else ""}
    if iou is not None:
        out[f"{key}_iou"] = iou
    return out


class EvaluatedBuilder:
    """``add(batch)`` as often as needed, then ``finish()``; ``registered`` says which path was taken."""

    def __init__(self, ds: Any, names: list[str], *, iou: float = 0.5, high_conf: float = 0.5,
                 show_conf: float = 0.25, explain: bool = True, eval_key: str = EVAL_KEY,
                 gt_field: str = GT, pred_field: str = PRED) -> None:
        self.ds, self.names, self.iou, self.high_conf, self.show_conf = ds, list(names), iou, high_conf, show_conf
        self.eval_key, self.gt_field, self.pred_field = eval_key, gt_field, pred_field
        self.writer = SampleWriter(ds, gt_field=gt_field, pred_field=pred_field)
        self.acc = Accumulator(self.names)
        self.matches = MatchStore(self.names)
        nc = len(self.names)
        self.confusion = np.zeros((nc + 1, nc + 1), dtype=np.int64)
        self.counts = {k: np.zeros(nc, dtype=np.int64) for k in ("gt", "tp", "fp", "fn")}
        self.predictions = 0
        self.samples = 0
        self._ul = ultralytics_matcher() if explain else None
        self.registered: bool | None = None
        self.errors = ErrorAccumulator(self.names)  # TIDE's dAP: a few bytes per kept prediction
        self.error_seconds = 0.0  # typing + accumulating, timed on its own (report: seconds.error_types)

    def _row(self, item: Item, img: ImageBoxes, typed: ImageErrors) -> SampleRow:
        from bson import ObjectId

        k = self.eval_key
        res = match_image(img, self.acc, iou=self.iou, ul_match=self._ul)
        self.confusion += confusion_image(img, len(self.names), iou=self.iou, min_conf=self.show_conf)
        gt_ids = [ObjectId() for _ in item.ground_truth]
        pred_ids = [ObjectId() for _ in item.predictions]
        gt_attrs = [_attrs(k, gt_ids[i], res.gt_eval[i], pred_ids[res.gt_match[i]] if res.gt_match[i] >= 0 else None,
                           res.gt_iou[i]) for i in range(len(gt_ids))]
        if item.crowd is not None:
            for a, c in zip(gt_attrs, item.crowd):
                if c:
                    a["iscrowd"] = True
        pred_attrs = [_attrs(k, pred_ids[j], res.pred_eval[j],
                             gt_ids[res.pred_match[j]] if res.pred_match[j] >= 0 else None, res.pred_iou[j])
                      for j in range(len(pred_ids))]
        for attrs, values in ((gt_attrs, field_values(typed.gt_type)), (pred_attrs, field_values(typed.pred_type))):
            for a, v in zip(attrs, values):
                a["error_type"] = v
        if res.matches:
            gis, pjs, ious = zip(*res.matches)
            self.matches.add([int(img.gt_cls[i]) if i is not None else -1 for i in gis],
                             [int(img.pred_cls[j]) if j is not None else -1 for j in pjs], ious,
                             [item.predictions[j][2] if j is not None else None for j in pjs],
                             [gt_ids[i] if i is not None else None for i in gis],
                             [pred_ids[j] if j is not None else None for j in pjs])
        np.add.at(self.counts["gt"], img.gt_cls, 1)
        for j, e in enumerate(res.pred_eval):
            self.counts["tp" if e == "tp" else "fp"][img.pred_cls[j]] += 1
        for i, e in enumerate(res.gt_eval):
            if e == "fn":
                self.counts["fn"][img.gt_cls[i]] += 1
        errors = res.fn + sum(1 for j, e in enumerate(res.pred_eval)
                              if e == "fp" and img.pred_conf[j] >= self.high_conf)
        self.predictions += len(pred_ids)
        return SampleRow(item.filepath, item.ground_truth, item.predictions, item.size, gt_attrs, pred_attrs,
                         {f"{k}_tp": res.tp, f"{k}_fp": res.fp, f"{k}_fn": res.fn, "errors": int(errors),
                          "error_counts": typed.counts()})

    def add(self, batch: Iterable[Item]) -> None:
        """Match, type and insert one batch of images (one bulk insert)."""
        items = list(batch)
        imgs = [ImageBoxes.from_lists(it.ground_truth, it.predictions, self.names, it.size, it.crowd) for it in items]
        t = time.perf_counter()
        typed = type_batch([input_from_boxes(img) for img in imgs])
        self.errors.add(typed)
        self.error_seconds += time.perf_counter() - t
        rows = [self._row(item, img, typed.image(i)) for i, (item, img) in enumerate(zip(items, imgs))]
        self.samples += len(rows)
        self.writer.add(rows)

    def finish(self) -> Any:
        """Register the run (or evaluate with FiftyOne); returns FiftyOne's results object (registered:
        without its per-match lists, which ``load_evaluation_results`` reads from the database)."""
        self.writer.close()
        try:
            if self.samples == 0:
                return None
            if can_register(self.gt_field, self.pred_field, self.iou):
                self.registered = True
                return register_evaluation(self.ds, eval_key=self.eval_key, gt_field=self.gt_field,
                                           pred_field=self.pred_field, iou=self.iou, classes=self.names,
                                           matches=self.matches, curves=self.acc.pr_curves("all"))
        finally:
            self.matches.close()
        import fiftyone as fo

        log.warning("FiftyOne %s stores evaluation runs differently than yolo-tl expects: evaluating with "
                    "FiftyOne's evaluate_detections instead, which is slower", fo.__version__)
        self.registered = False
        return fiftyone_evaluate(self.ds, eval_key=self.eval_key, gt_field=self.gt_field,
                                 pred_field=self.pred_field, iou=self.iou, classes=self.names)
