"""Register yolo-tl's own evaluation as FiftyOne's: ``list_evaluations``, ``load_evaluation_results``
(mAP, ``print_report``, PR curves, confusion matrix), ``load_evaluation_view``,
``to_evaluation_patches`` and the App's Model Evaluation panel all see a run of FiftyOne's COCO
method, as if ``evaluate_detections`` had made it.

The steps are those of ``fiftyone.utils.eval.detection.evaluate_detections`` with its per-sample
loop and its IoU sweep left out (``evaluation.py`` computed both, and the per-box fields went in
with the samples): build the config, ``register_run``, ``register_samples`` (the schema),
``COCODetectionResults`` from our precision arrays, ``save_run_results``, the sidebar group.
``can_register`` checks the pieces exist with the expected shape; when not, analyze falls back to
``evaluate_detections`` with a warning.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Optional

from yolo_tl.analysis.evaluation import IOU_THRESHS, MAX_PREDS

log = logging.getLogger(__name__)


def _config(gt_field: str, pred_field: str, iou: float) -> Any:
    import fiftyone.utils.eval.detection as foud

    return foud._parse_config(pred_field, gt_field, None, False, iou=iou, classwise=True, custom_metrics=None,
                              use_masks=False, use_boxes=False, compute_mAP=True)


def can_register(gt_field: str = "ground_truth", pred_field: str = "predictions", iou: float = 0.5) -> bool:
    """FiftyOne's COCO evaluation has the config, results and run methods this module drives."""
    try:
        import fiftyone.utils.eval.coco as fouc

        config = _config(gt_field, pred_field, iou)
        params = list(inspect.signature(fouc.COCODetectionResults.__init__).parameters)
        method = config.build()
    except Exception as err:  # a FiftyOne that moved or renamed any of it
        log.debug("cannot register the evaluation as FiftyOne's: %s", err)
        return False
    return (type(config) is fouc.COCOEvaluationConfig and config.max_preds == MAX_PREDS
            and [round(t, 2) for t in config.iou_threshs] == IOU_THRESHS and config.iscrowd == "iscrowd"
            and params[:10] == ["self", "samples", "config", "eval_key", "matches", "precision", "recall",
                                "iou_threshs", "classes", "recall_sweep"]
            and all(hasattr(method, m) for m in ("register_run", "register_samples", "save_run_results",
                                                 "add_fields_to_sidebar_group")))


def register_evaluation(ds: Any, *, eval_key: str, gt_field: str, pred_field: str, iou: float,
                        classes: list[str], matches: list[tuple], curves: dict) -> Any:
    """Record run ``eval_key`` on ``ds`` with our matches and PR arrays; returns FiftyOne's results object."""
    import fiftyone.utils.eval.coco as fouc

    config = _config(gt_field, pred_field, iou)
    method = config.build()
    method.ensure_requirements()
    method.register_run(ds, eval_key)
    method.register_samples(ds, eval_key, dynamic=True)
    results = fouc.COCODetectionResults(
        ds, config, eval_key, matches, curves["precision"], curves["recall"], config.iou_threshs, classes,
        recall_sweep=curves["recall_sweep"], thresholds=curves["thresholds"], missing=None, backend=method)
    method.compute_custom_metrics(ds, eval_key, results)
    method.save_run_results(ds, eval_key, results)
    method.add_fields_to_sidebar_group(ds, eval_key, omit_fields=(pred_field, gt_field))
    return results


def fiftyone_evaluate(ds: Any, *, eval_key: str, gt_field: str, pred_field: str, iou: float,
                      classes: Optional[list[str]]) -> Any:
    """FiftyOne's own ``evaluate_detections`` (the fallback, and the reference in tests)."""
    return ds.evaluate_detections(pred_field, gt_field=gt_field, eval_key=eval_key, iou=iou, compute_mAP=True,
                                  classes=classes, progress=False)
