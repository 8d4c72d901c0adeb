"""Error analysis in FiftyOne: ground truth + predictions, COCO-style evaluation, saved views, App.

``analyze(data_yaml, weights=...)`` builds a persistent FiftyOne dataset (one sample per image of
the split) and evaluates it, batch by batch: predict, match (``metrics/evaluation.py``, FiftyOne's
rules in numpy), insert the samples with their evaluation fields (``store/evaluated_samples.py``),
then register the run as FiftyOne's own. It saves views that open on the errors, stores a colour
scheme by outcome (``app/views.py``), writes PR curves and the confusion matrix as PNGs and explains
the gap between FiftyOne's mAP and Ultralytics' by measurement (``metrics/map_steps.py``). With
``folds=K`` the predictions are out-of-fold (``folds.py``).

Each step below is a function from values to values: ``_prepare`` (inputs checked, model loaded),
``_evaluate_into`` (the predict -> match -> insert loop), ``_write_plots``, ``_save_views``,
``_find_suspects`` (likely label mistakes: ``store/label_suspects.py``), ``_ultralytics_pass`` and
``_report``. The options and the report are in ``report.py``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yolo_tl.analysis.app.views import DEFAULT_VIEW, save_views, style_app
from yolo_tl.analysis.collect import Timed
from yolo_tl.analysis.folds import fold_plan, train_fold_runs
from yolo_tl.analysis.report import AnalysisReport, AnalyzeOptions, ClassRow, Maps, SplitFacts, Totals, Views
from yolo_tl.analysis.store.dataset_swap import building
from yolo_tl.analysis.store.disk_guard import SpaceGuard
from yolo_tl.analysis.store.mongod import database_location
from yolo_tl.analysis.store.our_datasets import TAG, is_ours, open_fiftyone
from yolo_tl.errors import OutputError, YoloTLError, is_disk_full
from yolo_tl.model.class_names import ClassMatch, label_renames, match_classes

log = logging.getLogger(__name__)

NMS_IOU = 0.7  # Ultralytics' validation default; predictions use it too, so both mAPs see the same boxes
BATCH = 256  # images per predict -> match -> insert round: memory stays flat as the split grows

PathLike = str | Path
Progress = Callable[[str, int, int | None], None]  # (phase, images done in this call, total)

__all__ = ["AnalysisReport", "AnalyzeOptions", "ClassRow", "analyze", "default_name", "train_overlap"]


def default_name(data_yaml: PathLike, weights: PathLike, split: str) -> str:
    """Stable, readable name: data folder, split, weights (run name + file) and a short hash."""
    d, w = Path(data_yaml).expanduser().resolve(), Path(weights).expanduser().resolve()
    wname = w.stem
    if w.parent.name == "weights" and w.parent.parent.name:
        wname = f"{w.parent.parent.name}-{w.stem}"
    digest = hashlib.sha1(f"{d}\n{w}\n{split}".encode()).hexdigest()[:6]
    raw = f"{TAG}-{d.parent.name}-{split}-{wname}-{digest}"
    return re.sub(r"[^A-Za-z0-9_-]+", "-", raw).strip("-")


def _ultralytics_val(model: Any, data_yaml: Path, split: str, *, conf: float, imgsz: int,
                     batch: int, device: str | None, match: ClassMatch) -> Any:
    from yolo_tl.dataset.handoff import read_data_info, ultralytics_data_yaml

    with tempfile.TemporaryDirectory(prefix="yolo-tl-val-") as tmp:
        info = read_data_info(data_yaml, need=(split,))
        if not match.same_order:  # the model knows more classes: the same labels, re-indexed by name
            data_yaml = _by_name_data(info, split, model.names, match, Path(tmp) / "by_name")
        else:  # Ultralytics reads a relative path: against the current folder; we read it against the file's
            data_yaml = ultralytics_data_yaml(info, Path(tmp) / "data", (split,))
        kwargs: dict[str, Any] = {
            "data": str(data_yaml), "split": split, "conf": conf, "iou": NMS_IOU, "imgsz": imgsz, "batch": batch,
            "plots": False, "save_json": False, "verbose": False, "project": tmp, "name": "val", "exist_ok": True}
        if device is not None:
            kwargs["device"] = device
        try:
            return model.val(**kwargs)
        except Exception as err:
            raise YoloTLError(f"Ultralytics validation failed: {err}", path=data_yaml) from err


def _by_name_data(info: Any, split: str, model_names: dict[int, str], match: ClassMatch, out: Path) -> Path:
    from yolo_tl.dataset.relabel import write_by_name_dataset

    return write_by_name_dataset(info, out, dict(model_names), split, match.data_to_model)


def train_overlap(data_yaml: Path, split: str, images: list[Path]) -> float:
    """Share of ``images`` that the train split also lists (1.0: "val" is really the training split)."""
    from yolo_tl.dataset.formats.yolo import load_data_yaml, split_images

    if split == "train" or not images:
        return 1.0 if split == "train" else 0.0
    data = load_data_yaml(data_yaml)
    if "train" not in data.entries:
        return 0.0
    try:
        train = set(split_images(data, "train"))
    except YoloTLError:
        return 0.0
    return sum(1 for p in images if p in train) / len(images)


def analyze(
    data_yaml: PathLike | None = None,
    options: AnalyzeOptions | None = None,
    *,
    progress: Progress | None = None,
    **kwargs: Any,
) -> AnalysisReport:
    """Build (or replace) the FiftyOne dataset ``name`` for ``split`` and evaluate ``weights`` on it.

    The options are an ``AnalyzeOptions`` or its fields as keywords (keywords win, ``data_yaml`` over
    ``options.data``). ``conf`` is the lowest confidence kept (0.001 as Ultralytics validates); ``iou``
    the evaluation IoU for tp/fp/fn; ``high_conf`` the confidence above which a false positive is
    "confident" (view ``fp_high_conf``); ``show_conf`` the lowest confidence the saved views show.
    ``compare_ultralytics`` also runs Ultralytics' validator (a second inference pass); ``plots_dir``:
    where PR curves and the confusion matrix go as PNG (None: not written). ``folds=K``: the predictions
    come from K fine-tunes with the weights' recipe, each predicting the fold it did not train on (``folds.py``).
    ``progress`` is called with (phase, images done, total).
    """
    opts = (options or AnalyzeOptions()).replace(**kwargs)
    if data_yaml is not None:
        opts = opts.replace(data=data_yaml)
    for needed, what in (("data", "the data.yaml"), ("weights", "the weights to evaluate")):
        if getattr(opts, needed) is None:
            raise YoloTLError(f"missing: give {what}", field=needed)
    step = progress or (lambda phase, n, total: None)
    t0 = time.perf_counter()
    plan = fold_plan(opts, default_name) if opts.folds is not None else None  # before the database and training
    job = _prepare(opts)
    seconds = {"read": time.perf_counter() - t0}
    if plan is not None:
        job.folds = train_fold_runs(plan, opts, step, seconds)
    built = _build(job, step)
    seconds.update(built.seconds)
    ul = None
    if job.opts.compare_ultralytics:
        t = time.perf_counter()
        step("ultralytics val", 0, None)
        ul = _ultralytics_pass(job)
        seconds["ultralytics_val"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0
    return _report(job, built, ul, seconds)


@dataclass
class _Job:
    """Everything checked and loaded before the slow work starts."""

    opts: AnalyzeOptions  # data and weights resolved, name chosen
    fo: Any
    split_data: Any  # collect.SplitData
    model: Any
    match: ClassMatch
    rename: dict[str, str] | None
    overlap: float
    folds: Any = None  # folds.FoldPlan, trained: the predictions are out-of-fold

    @property
    def names(self) -> list[str]:
        return list(self.split_data.names)


@dataclass
class _Built:
    """What building the dataset produced."""

    ds: Any
    builder: Any  # EvaluatedBuilder: counts, confusion, accumulator
    results: Any  # FiftyOne's evaluation results (None for an empty split)
    unreadable: list[str]
    views: dict[str, int]
    plots: dict[str, str]
    errors: Any  # error_costs.ErrorBreakdown: TIDE's error types and their dAP
    seconds: dict[str, float] = field(default_factory=dict)
    suspects: dict[str, Any] = field(default_factory=dict)  # store.label_suspects' summary


def _prepare(opts: AnalyzeOptions) -> _Job:
    """Open the database (first: one that is down is reported before any slow work), read the split,
    load the model, match its classes to the data's by name, choose the dataset name."""
    from yolo_tl.analysis import collect as fio

    fo = open_fiftyone()
    data_yaml = Path(opts.data or "").expanduser().resolve()
    weights = Path(opts.weights or "").expanduser().resolve()
    split_data = fio.read_split(data_yaml, opts.split)
    model = fio.load_model(weights)
    names = list(split_data.names)
    match = match_classes(model.names, names, path=weights, data_yaml=data_yaml)
    name = opts.name or default_name(data_yaml, weights, opts.split)
    if fo.dataset_exists(name) and not is_ours(fo.load_dataset(name)):
        raise OutputError(f"FiftyOne dataset '{name}' exists and was not made by yolo-tl",
                          hint="choose another --name")
    plots_dir = str(Path(opts.plots_dir).expanduser().resolve()) if opts.plots_dir is not None else None
    resolved = opts.replace(data=str(data_yaml), weights=str(weights), name=name, plots_dir=plots_dir)
    return _Job(resolved, fo, split_data, model, match, label_renames(model.names, names, match),
                train_overlap(data_yaml, opts.split, split_data.images))


def _build(job: _Job, step: Progress) -> _Built:
    """Build the dataset under a temporary name and swap it in once complete (``store/dataset_swap.py``):
    an error or Ctrl-C leaves the earlier dataset of this name as it was."""
    try:
        with building(job.fo, job.opts.name or "", is_ours=is_ours) as ds:
            return _fill(ds, job, step)
    except OSError as err:
        if not is_disk_full(err):
            raise
        where = err.filename or f"a temporary file in {tempfile.gettempdir()}"
        raise OutputError(f"no space left on the device while writing {where}",
                          hint="free some space (or set TMPDIR / --out to another disk); the earlier dataset "
                               "of this name is unchanged") from None


def _fill(ds: Any, job: _Job, step: Progress) -> _Built:
    """Evaluate into ``ds``, then the figures and the saved views, each timed."""
    from yolo_tl.analysis.store.evaluated_samples import EvaluatedBuilder

    opts = job.opts
    builder = EvaluatedBuilder(ds, job.names, iou=opts.iou, high_conf=opts.high_conf, show_conf=opts.show_conf)
    try:
        seconds, unreadable = _evaluate_into(builder, ds, job, step)
        t = time.perf_counter()
        results = builder.finish()
        seconds["ingest_evaluate"] += time.perf_counter() - t
        t = time.perf_counter()
        step("error types", 0, 1)
        errors = builder.errors.result()
        # typing every box happened inside each batch: its own phase, not part of ingest_evaluate
        seconds["error_types"] = builder.error_seconds + time.perf_counter() - t
        seconds["ingest_evaluate"] -= builder.error_seconds
        step("error types", 1, 1)
        # before the swap: a figure that cannot be written leaves the old dataset
        plots = _write_plots(builder, job.names, opts, errors) if opts.plots_dir is not None else {}
        t = time.perf_counter()
        step("views", 0, 1)
        views = _save_views(ds, job)
        seconds["views"] = time.perf_counter() - t
        step("views", 1, 1)
        t = time.perf_counter()
        suspects = _find_suspects(ds, job, views, step)
        seconds["label_issues"] = time.perf_counter() - t
    finally:
        builder.matches.close()  # its temporary file, also when the build failed
    return _Built(ds, builder, results, unreadable, views, plots, errors, seconds, suspects)


def _evaluate_into(builder: Any, ds: Any, job: _Job, step: Progress) -> tuple[dict[str, float], list[str]]:
    """Predict, match and insert in rounds of ``BATCH`` images; returns the seconds spent predicting and
    evaluating + inserting, and the images left out because their pixels do not decode."""
    from yolo_tl.analysis import collect as fio
    from yolo_tl.analysis.store.evaluated_samples import Item

    opts, split_data, names = job.opts, job.split_data, job.names
    label_of = dict(zip(split_data.images, split_data.labels))
    total = len(split_data.images)
    space = SpaceGuard(ds, total, where=database_location(job.fo))
    space.check(0)
    predict = fio.predict_boxes if job.folds is None else job.folds.predict_boxes
    preds = Timed(iter(predict(job.model, split_data.images, conf=opts.conf, imgsz=opts.imgsz,
                               batch=opts.batch, device=opts.device)))
    t_work = 0.0
    unreadable: list[str] = []
    chunk: list[Item] = []
    for path, boxes, size in preds:
        step("predict", 1, total)
        if boxes is None:  # left out, as Ultralytics' validator leaves out an image it cannot read
            unreadable.append(str(path))
            continue
        t = time.perf_counter()
        gt = fio.read_yolo_boxes(label_of.get(Path(path), fio.label_path_for(Path(path))), names)
        chunk.append(Item(str(path), gt, fio.rename_boxes(boxes, job.rename), size))
        if len(chunk) >= BATCH:
            builder.add(chunk)
            step("evaluate + insert", len(chunk), total)
            space.check(builder.samples)
            chunk = []
        t_work += time.perf_counter() - t
    if len(unreadable) == total:
        raise YoloTLError(f"none of the {total} images of split '{opts.split}' could be read", path=opts.data)
    t = time.perf_counter()
    if chunk:
        builder.add(chunk)
        step("evaluate + insert", len(chunk), total)
    return {"predict": preds.seconds, "ingest_evaluate": t_work + time.perf_counter() - t}, unreadable


def _write_plots(builder: Any, names: list[str], opts: AnalyzeOptions, errors: Any) -> dict[str, str]:
    """PR curves, the confusion matrix and the error types' costs as PNG in ``opts.plots_dir``; figure -> path."""
    from yolo_tl.analysis.metrics.evaluation import mean_ap
    from yolo_tl.analysis.metrics.plots import write_figures

    curves = builder.acc.pr_curves("all")
    aps = [a if n else None for a, n in zip(mean_ap(curves["precision"])[1], builder.counts["gt"])]
    return write_figures(Path(opts.plots_dir or "."), names, curves, aps, builder.confusion, iou=opts.iou,
                         min_conf=opts.show_conf, errors=errors)


def _save_views(ds: Any, job: _Job) -> dict[str, int]:
    """The saved views, the App's colours, and what the dataset was made from (``ds.info``)."""
    opts = job.opts
    views = save_views(ds, job.names, opts.high_conf, opts.worst_k, opts.show_conf)
    style_app(ds)
    ds.tags = [TAG]
    ds.info["yolo_tl"] = {"data_yaml": opts.data, "weights": opts.weights, "split": opts.split,
                          "conf": opts.conf, "iou": opts.iou, "imgsz": opts.imgsz, "show_conf": opts.show_conf,
                          "default_view": DEFAULT_VIEW, "train_overlap": round(job.overlap, 4),
                          **({"folds": job.folds.summary()} if job.folds is not None else {})}
    ds.save()
    return views


def _find_suspects(ds: Any, job: _Job, views: dict[str, int], step: Progress) -> dict[str, Any]:
    """Likely label mistakes of the split: the ``label_issues`` field, the ``suspect`` tag, the
    ``label_suspects`` view (counted into ``views``) and the App's colours for the suggestions."""
    from yolo_tl.analysis.app.suspects_view import VIEW, save_suspects_view, style_suspects
    from yolo_tl.analysis.store.label_suspects import store_label_suspects

    total = len(ds)
    summary = store_label_suspects(ds, job.names, progress=lambda n: step("label suspects", n, total))
    views[VIEW] = save_suspects_view(ds)
    style_suspects(ds)
    if job.opts.folds is None and (job.opts.split == "train" or job.overlap >= 1.0):
        summary["note"] = ("the analysed split is the training split: the model learned these labels and "
                           "reproduces their mistakes, so its suspects miss those; out-of-sample predictions "
                           "need --folds K (K models, each predicting the images it did not train on), or "
                           "analyse a held-out split")
    return summary


def _ultralytics_pass(job: _Job) -> Any:
    """Ultralytics' own validation of the model on the split (its second inference pass)."""
    opts = job.opts
    return _ultralytics_val(job.model, Path(opts.data or ""), opts.split, conf=opts.conf, imgsz=opts.imgsz,
                            batch=opts.batch, device=opts.device, match=job.match)


def _report(job: _Job, built: _Built, ul: Any, seconds: dict[str, float]) -> AnalysisReport:
    """The figures of the built dataset as one report."""
    from yolo_tl.analysis.metrics.error_report import VIEWS, reading
    from yolo_tl.analysis.metrics.map_steps import ap_by_size, explain_maps

    opts, names, builder, results = job.opts, job.names, built.builder, built.results
    ul_ap: dict[int, float] = {}
    if ul is not None:
        # by class name: the validator's indices are the model's, the table's are the data's
        to_data = job.match.model_to_data
        ul_ap = {to_data[int(i)]: float(a) for i, a in zip(ul.box.ap_class_index, ul.box.ap) if int(i) in to_data}
    sizes = ap_by_size(builder.acc)
    rows = [_class_row(i, c, builder.counts, results, ul_ap.get(i), sizes) for i, c in enumerate(names)]
    steps = [s.to_dict() for s in explain_maps(builder.acc)]
    fo_map = float(results.mAP()) if results is not None else -1.0
    why = (f"measured on the same {builder.predictions} stored predictions: "
           + "; ".join(f"{s['rule']}: {s['map50_95']}" for s in steps)
           + ("" if ul is not None else "; Ultralytics' own validation pass was not run (--ultralytics-val)"))
    maps = Maps(fiftyone_map50_95=fo_map if fo_map >= 0 else None,
                ultralytics_map50_95=float(ul.box.map) if ul is not None else None,
                ultralytics_map50=float(ul.box.map50) if ul is not None else None,
                ultralytics_val_run=ul is not None, why_differ=why, steps=steps,
                by_size={k: v["mAP"] for k, v in sizes.items()})
    totals = Totals(samples=len(built.ds), gt_boxes=sum(r.gt for r in rows), predictions=builder.predictions,
                    tp=sum(r.tp for r in rows), fp=sum(r.fp for r in rows), fn=sum(r.fn for r in rows))
    confusion = {"labels": names, "rows": [*names, "background"], "columns": [*names, "missed"],
                 "iou": opts.iou, "min_conf": opts.show_conf, "matrix": builder.confusion.tolist()}
    return AnalysisReport(
        name=opts.name or "", url_path=f"/datasets/{built.ds.slug}", options=opts, totals=totals, maps=maps,
        classes=rows, confusion=confusion, views=Views(built.views, DEFAULT_VIEW), plots=built.plots,
        seconds={k: round(v, 3) for k, v in seconds.items()},
        error_types={**built.errors.to_dict(), "reading": reading(built.errors), "views": dict(VIEWS)},
        split=SplitFacts(is_train=job.overlap >= 1.0 and opts.split != "train",
                         train_overlap=round(job.overlap, 4), unreadable=built.unreadable),
        evaluation="yolo-tl" if builder.registered else "fiftyone", label_issues=built.suspects,
        folds=job.folds.to_dict() if job.folds is not None else None)


def _class_row(i: int, name: str, counts: dict[str, Any], results: Any, ul_ap: float | None,
               sizes: dict[str, Any]) -> ClassRow:
    tp, fp, fn, ngt = (int(counts[k][i]) for k in ("tp", "fp", "fn", "gt"))
    ap = float(results.mAP(classes=[name])) if ngt and results is not None else None
    return ClassRow(name, ngt, tp, fp, fn, precision=tp / (tp + fp) if tp + fp else 0.0,
                    recall=tp / (tp + fn) if tp + fn else 0.0, ap=ap if ap is None or ap >= 0 else None,
                    ultralytics_ap=ul_ap, ap_small=sizes["small"]["per_class"][i],
                    ap_medium=sizes["medium"]["per_class"][i], ap_large=sizes["large"]["per_class"][i])
