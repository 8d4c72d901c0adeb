"""Analyze cases: ingest (ground truth + precomputed predictions) and evaluation in FiftyOne.

Baseline ingest is the pattern of FiftyOne's tutorials: ``add_samples`` with the ground truth,
then a per-sample loop that sets the predictions and calls ``sample.save()``. Loading the label
files and the predictions JSON into Python lists is untimed on both sides.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.profiling import region


def load_ingest(root: str, limit: int | None = None
                ) -> tuple[list[str], list[str], dict, dict, tuple[int, int]]:
    """(image paths, class names, gt by path, predictions by path, (w, h)); boxes as FiftyOne's
    relative [x, y, w, h] from the top-left; predictions carry a confidence. ``limit``: the first
    N images only (for profiling runs)."""
    import yaml

    root_p = Path(root)
    names_map = yaml.safe_load((root_p / "data.yaml").read_text())["names"]
    names = [names_map[k] for k in sorted(names_map)]
    preds_px = json.loads((root_p / "predictions.json").read_text())
    w, h = 64, 48
    paths = sorted(preds_px)[:limit]
    gt, preds = {}, {}
    for p in paths:
        rows = []
        label = root_p / "labels" / "val" / (Path(p).stem + ".txt")
        for line in label.read_text().splitlines():
            c, cx, cy, bw, bh = line.split()
            cx, cy, bw, bh = float(cx), float(cy), float(bw), float(bh)
            rows.append((names[int(c)], [cx - bw / 2, cy - bh / 2, bw, bh]))
        gt[p] = rows
        preds[p] = [(names[int(c)], conf, [x1 / w, y1 / h, (x2 - x1) / w, (y2 - y1) / h])
                    for c, conf, x1, y1, x2, y2 in preds_px[p]]
    return paths, names, gt, preds, (w, h)


class _Phases:
    """Accumulate seconds per phase: ``with ph("build"): ...``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t


def fo_tutorial_ingest(root: str, limit: int | None = None) -> dict:
    """The tutorial's way; phases: label objects built, written to the database, iteration."""
    import fiftyone as fo

    paths, _, gt, preds, _ = load_ingest(root, limit)
    ph = _Phases()
    t0 = time.perf_counter()
    with region():
        ds = fo.Dataset(f"bench-ingest-{uuid.uuid4().hex[:8]}")
        with ph("build"):
            samples = []
            for p in paths:
                sample = fo.Sample(filepath=p)
                sample["ground_truth"] = fo.Detections(detections=[
                    fo.Detection(label=lab, bounding_box=box) for lab, box in gt[p]])
                samples.append(sample)
        with ph("write"):
            ds.add_samples(samples, progress=False)
        for sample in ds.iter_samples(progress=False):
            with ph("build"):
                sample["predictions"] = fo.Detections(detections=[
                    fo.Detection(label=lab, confidence=conf, bounding_box=box)
                    for lab, conf, box in preds[sample.filepath]])
            with ph("write"):
                sample.save()
    seconds, done_at = time.perf_counter() - t0, time.time()
    del samples, sample  # else delete() deep-copies every in-memory Sample (untimed, but slow)
    ds.delete()
    return _ingest_result(seconds, done_at, ph, paths, gt, preds)


def _ingest_result(seconds: float, done_at: float, ph: _Phases, paths: list, gt: dict,
                   preds: dict) -> dict:
    n_labels = sum(len(v) for v in gt.values()) + sum(len(v) for v in preds.values())
    return {"seconds": seconds, "build_seconds": ph.seconds.get("build", 0.0),
            "write_seconds": ph.seconds.get("write", 0.0), "samples": len(paths),
            "labels": n_labels, "done_at": done_at}


def ours_ingest(root: str, limit: int | None = None) -> dict:
    """yolo-tl's ingest, as ``yolo_tl.analysis.analyze`` does it (model inference left out): one
    ``fiftyone_bulk.add_detection_samples`` call with ground truth, predictions and image sizes
    (the first sample through FiftyOne's API, the rest as raw documents in ``insert_many`` batches).
    Phases: building the documents vs writing them is not separable here; all counts as write."""
    import fiftyone as fo

    from yolo_tl.analysis.collect import GT, PRED
    from yolo_tl.analysis.store.sample_insert import SampleRow, add_detection_samples

    paths, _, gt, preds, (w, h) = load_ingest(root, limit)
    rows = [SampleRow(p, [(lab, tuple(box), None) for lab, box in gt[p]],
                      [(lab, tuple(box), conf) for lab, conf, box in preds[p]], (h, w)) for p in paths]
    ph = _Phases()
    t0 = time.perf_counter()
    with region():
        ds = fo.Dataset(f"bench-ingest-{uuid.uuid4().hex[:8]}")
        with ph("write"):
            path = add_detection_samples(ds, rows, gt_field=GT, pred_field=PRED)
    seconds, done_at = time.perf_counter() - t0, time.time()
    assert path == "bulk", "the bulk path was not taken: this bench would measure the API path"
    assert len(ds) == len(paths)
    ds.delete()
    return _ingest_result(seconds, done_at, ph, paths, gt, preds)


def _bulk_dataset(root: str, limit: int | None = None):
    """Untimed setup for evaluation: one dataset with both fields, added in one batch."""
    import fiftyone as fo

    paths, _, gt, preds, _ = load_ingest(root, limit)
    ds = fo.Dataset(f"bench-eval-{uuid.uuid4().hex[:8]}")
    ds.add_samples([fo.Sample(
        filepath=p,
        ground_truth=fo.Detections(detections=[fo.Detection(label=lab, bounding_box=box)
                                               for lab, box in gt[p]]),
        predictions=fo.Detections(detections=[fo.Detection(label=lab, confidence=c,
                                                           bounding_box=box)
                                              for lab, c, box in preds[p]]))
        for p in paths], progress=False)
    return ds


def _fiftyone_result(t0: float, ds, results) -> dict:
    """The figures of a FiftyOne evaluation timed from ``t0``; the dataset is deleted afterwards."""
    seconds, done_at = time.perf_counter() - t0, time.time()
    out = {"seconds": seconds, "samples": len(ds), "mAP": results.mAP(), "done_at": done_at}
    ds.delete()
    return out


def fo_evaluate(root: str, limit: int | None = None) -> dict:
    """FiftyOne's ``evaluate_detections(compute_mAP=True)`` alone (COCO-style, defaults)."""
    ds = _bulk_dataset(root, limit)
    t0 = time.perf_counter()
    with region():
        results = ds.evaluate_detections("predictions", gt_field="ground_truth",
                                         eval_key="eval", compute_mAP=True, progress=False)
    return _fiftyone_result(t0, ds, results)


def ours_evaluate(root: str, limit: int | None = None) -> dict:
    """yolo-tl's evaluation as ``analyze`` runs it: its own COCO matching (FiftyOne's
    rules) while the samples are in memory, written with them in the bulk insert, the run registered
    as FiftyOne's (``EvaluatedBuilder``). The insert is inside the timed region, so this is ingest +
    evaluation, against FiftyOne's evaluation alone."""
    out = ours_analyze_steps(root, limit, views=False)
    out["evaluate_seconds"] = out["ingest_evaluate_seconds"]
    return out


# --- everything analyze does beyond inference, vs FiftyOne's evaluation ---------------
def _rows_for_builder(root: str, limit: int | None):
    from yolo_tl.analysis.store.evaluated_samples import Item

    paths, names, gt, preds, (w, h) = load_ingest(root, limit)
    items = [Item(p, [(lab, tuple(box), None) for lab, box in gt[p]],
                  [(lab, tuple(box), conf) for lab, conf, box in preds[p]], (h, w)) for p in paths]
    boxes = sum(len(it.ground_truth) + len(it.predictions) for it in items)
    return items, names, boxes, sum(len(it.predictions) for it in items)


def ours_analyze_steps(root: str, limit: int | None = None, views: bool = True) -> dict:
    """What ``analyze`` does after inference, as it does it: per batch of 256 images match, type
    (TIDE's error types), build and insert (``EvaluatedBuilder``), then register the run, TIDE's dAP,
    save the views, store the colours. ``error_types_seconds``: typing + dAP (as analyze's
    ``seconds.error_types``), ``error_views_seconds``: saving the six ``error_*`` views."""
    import fiftyone as fo

    from yolo_tl.analysis.app.views import save_views, style_app
    from yolo_tl.analysis.store.evaluated_samples import EvaluatedBuilder

    items, names, boxes, n_pred = _rows_for_builder(root, limit)
    # analyze has Ultralytics and torch loaded for inference by now: their import is not this step's cost
    import ultralytics.engine.validator  # noqa: F401
    import ultralytics.utils.metrics  # noqa: F401

    t0 = time.perf_counter()
    with region():
        ds = fo.Dataset(f"bench-steps-{uuid.uuid4().hex[:8]}")
        builder = EvaluatedBuilder(ds, names, iou=0.5)
        for start in range(0, len(items), 256):
            builder.add(items[start:start + 256])
        results = builder.finish()
        t_eval = time.perf_counter() - t0
        t = time.perf_counter()
        errors = builder.errors.result()
        t_errors = builder.error_seconds + time.perf_counter() - t
        t_err_views = 0.0
        if views:
            save_views(ds, names, 0.5, 50, 0.25)
            style_app(ds)
            t = time.perf_counter()
            for v in [v for v in ds.list_saved_views() if v.startswith("error_")]:
                len(ds.load_saved_view(v))  # what save_views spent on them: build + count each view
            t_err_views = time.perf_counter() - t
    seconds, done_at = time.perf_counter() - t0, time.time()
    assert builder.registered and builder.writer.path == "bulk"
    out = {"seconds": seconds, "ingest_evaluate_seconds": t_eval - builder.error_seconds, "samples": len(ds),
           "boxes": boxes, "predictions": n_pred, "mAP": results.mAP(), "done_at": done_at,
           "error_types_seconds": t_errors, "error_views_seconds": t_err_views,
           "error_types_share": (t_errors + t_err_views) / max(seconds - t_errors - t_err_views, 1e-9),
           "ap50_tide": errors.overall.ap}
    ds.delete()
    return out


def fo_add_evaluate(root: str, limit: int | None = None) -> dict:
    """FiftyOne's way end to end: build the samples, ``add_samples``, ``evaluate_detections(compute_mAP)``."""
    import fiftyone as fo

    paths, names, gt, preds, (w, h) = load_ingest(root, limit)
    t0 = time.perf_counter()
    with region():
        ds = fo.Dataset(f"bench-fo-{uuid.uuid4().hex[:8]}")
        ds.add_samples([fo.Sample(
            filepath=p, metadata=fo.ImageMetadata(width=w, height=h),
            ground_truth=fo.Detections(detections=[fo.Detection(label=lab, bounding_box=box) for lab, box in gt[p]]),
            predictions=fo.Detections(detections=[fo.Detection(label=lab, confidence=c, bounding_box=box)
                                                  for lab, c, box in preds[p]])) for p in paths], progress=False)
        results = ds.evaluate_detections("predictions", gt_field="ground_truth", eval_key="eval", iou=0.5,
                                         compute_mAP=True, classes=names, progress=False)
    return _fiftyone_result(t0, ds, results)


def fo_evaluate_classes(root: str, limit: int | None = None) -> dict:
    """``evaluate_detections(compute_mAP=True)`` alone (samples added untimed), with the class list."""
    paths, names, _, _, _ = load_ingest(root, limit)
    ds = _bulk_dataset(root, limit)
    t0 = time.perf_counter()
    with region():
        results = ds.evaluate_detections("predictions", gt_field="ground_truth", eval_key="eval", iou=0.5,
                                         compute_mAP=True, classes=names, progress=False)
    return _fiftyone_result(t0, ds, results)
