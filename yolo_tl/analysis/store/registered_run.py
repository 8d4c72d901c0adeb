"""Register yolo-tl's own evaluation as FiftyOne's: ``list_evaluations``, ``load_evaluation_results``
(mAP, ``print_report``, PR curves, confusion matrix), ``load_evaluation_view``,
``to_evaluation_patches`` and the App's Model Evaluation panel all see a run of FiftyOne's COCO
method, as if ``evaluate_detections`` had made it.

The steps are those of ``fiftyone.utils.eval.detection.evaluate_detections`` with its per-sample
loop and its IoU sweep left out (``evaluation.py`` computed both, and the per-box fields went in
with the samples): build the config, ``register_run``, ``register_samples`` (the schema),
``COCODetectionResults`` from our precision arrays, the results file, the sidebar group.

The results file is what ``save_run_results`` writes (``json_util.dumps`` of
``results.serialize()`` into the run's GridFS file), except that the per-match lists are
streamed from a ``MatchStore`` a chunk at a time instead of built in memory first: the file's
bytes are the same, and memory no longer grows with the split. ``can_register`` checks the
pieces exist with the expected shape; when not, analyze falls back to ``evaluate_detections``
with a warning. FiftyOne's private pieces (the config parser, the run document, its GridFS file, the
results cache) are reached through ``yolo_tl._upstream.fiftyone``.
"""

from __future__ import annotations

import inspect
import logging
from functools import partial
from typing import Any

from yolo_tl._upstream import fiftyone as upstream_fo
from yolo_tl.analysis.metrics.evaluation import IOU_THRESHS, MAX_PREDS
from yolo_tl.analysis.store.match_store import FIELDS, MatchStore

log = logging.getLogger(__name__)


def can_register(gt_field: str = "ground_truth", pred_field: str = "predictions", iou: float = 0.5) -> bool:
    """FiftyOne's COCO evaluation has the config, results and run methods this module drives."""
    try:
        import fiftyone.utils.eval.coco as fouc

        config = upstream_fo.coco_eval_config(gt_field, pred_field, iou)
        params = list(inspect.signature(fouc.COCODetectionResults.__init__).parameters)
        method = config.build()
        fields = list(_empty_results(None, config, "eval", [], list(IOU_THRESHS)).serialize())
    except Exception as err:  # a FiftyOne that moved or renamed any of it
        log.debug("cannot register the evaluation as FiftyOne's: %s", err)
        return False
    return (type(config) is fouc.COCOEvaluationConfig and config.max_preds == MAX_PREDS
            and [round(t, 2) for t in config.iou_threshs] == IOU_THRESHS and config.iscrowd == "iscrowd"
            and params[:10] == ["self", "samples", "config", "eval_key", "matches", "precision", "recall",
                                "iou_threshs", "classes", "recall_sweep"]
            and set(FIELDS) <= set(fields) and "missing" in fields
            and upstream_fo.has_run_methods(method))


def _empty_results(ds: Any, config: Any, eval_key: str, classes: list[str], iou_threshs: list[float],
                   curves: dict | None = None, method: Any = None) -> Any:
    """FiftyOne's results object without matches (its mAP reads the precision arrays only)."""
    import fiftyone.utils.eval.coco as fouc
    import numpy as np

    nt, nc = len(iou_threshs), len(classes)
    c = curves or {"precision": -np.ones((nt, nc, 101)), "recall": np.linspace(0, 1, 101),
                   "recall_sweep": -np.ones((nt, nc)), "thresholds": -np.ones((nt, nc, 101))}
    return fouc.COCODetectionResults(ds, config, eval_key, [], c["precision"], c["recall"], iou_threshs, classes,
                                     recall_sweep=c["recall_sweep"], thresholds=c["thresholds"], missing=None,
                                     backend=method)


def _save_results(ds: Any, method: Any, eval_key: str, results: Any, matches: MatchStore) -> None:
    """``save_run_results(ds, eval_key, results)`` with ``matches`` streamed into the per-match lists."""
    matches.labels[-1] = results.missing  # FiftyOne's label for "no box" (its default "(none)")
    upstream_fo.write_run_results(ds, method, eval_key, results, {f: partial(matches.json_lists, f) for f in FIELDS})


def register_evaluation(ds: Any, *, eval_key: str, gt_field: str, pred_field: str, iou: float,
                        classes: list[str], matches: MatchStore, curves: dict) -> Any:
    """Record run ``eval_key`` on ``ds`` with our matches and PR arrays.

    Returns FiftyOne's results object without the per-match lists (``mAP`` works;
    ``ds.load_evaluation_results(eval_key)`` reads the whole run back from the database).
    """
    config = upstream_fo.coco_eval_config(gt_field, pred_field, iou)
    method = config.build()
    method.ensure_requirements()
    method.register_run(ds, eval_key)
    method.register_samples(ds, eval_key, dynamic=True)
    results = _empty_results(ds, config, eval_key, classes, config.iou_threshs, curves, method)
    method.compute_custom_metrics(ds, eval_key, results)
    _save_results(ds, method, eval_key, results, matches)
    method.add_fields_to_sidebar_group(ds, eval_key, omit_fields=(pred_field, gt_field))
    return results


def fiftyone_evaluate(ds: Any, *, eval_key: str, gt_field: str, pred_field: str, iou: float,
                      classes: list[str] | None) -> Any:
    """FiftyOne's own ``evaluate_detections`` (the fallback, and the reference in tests)."""
    return ds.evaluate_detections(pred_field, gt_field=gt_field, eval_key=eval_key, iou=iou, compute_mAP=True,
                                  classes=classes, progress=False)
