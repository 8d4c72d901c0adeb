"""Error analysis in FiftyOne: ground truth + predictions, COCO-style evaluation, saved views, App.

``analyze(data_yaml, weights=...)`` builds a persistent FiftyOne dataset (one sample per image of
the split) and evaluates it, batch by batch: predict, match (``evaluation.py``, FiftyOne's rules
in numpy), insert the samples with their evaluation fields (``build.py``), then register the run
as FiftyOne's own (``evaluation_run.py``). It saves views that open on the errors, stores a
colour scheme by outcome (``views.py``), writes PR curves and the confusion matrix as PNGs
(``plots.py``) and explains the gap between FiftyOne's mAP and Ultralytics' by measurement
(``explain.py``). The App is served by ``app.py``, datasets are listed / deleted in ``datasets.py``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

from yolo_tl.analysis.store.mongod import database_location
from yolo_tl.analysis.store.disk_guard import SpaceGuard
from yolo_tl.analysis.store.dataset_swap import building
from yolo_tl.analysis.store.our_datasets import TAG, is_ours, open_fiftyone
from yolo_tl.analysis.app.views import DEFAULT_VIEW, save_views, style_app
from yolo_tl.model.class_names import ClassMatch, label_renames, match_classes
from yolo_tl.errors import OutputError, YoloTLError, is_disk_full

log = logging.getLogger(__name__)

NMS_IOU = 0.7  # Ultralytics' validation default; predictions use it too, so both mAPs see the same boxes
BATCH = 256  # images per predict -> match -> insert round: memory stays flat as the split grows

PathLike = Union[str, Path]
Progress = Callable[[str, int, Optional[int]], None]  # (phase, images done in this call, total)


@dataclass
class ClassRow:
    """Per-class figures. Precision / recall count every prediction above ``conf``."""

    name: str
    gt: int
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    ap: float | None  # FiftyOne COCO-style AP@[.5:.95], None when the class has no GT
    ultralytics_ap: float | None = None  # Ultralytics AP50-95 for the class (--ultralytics-val)
    ap_small: float | None = None  # COCO sizes: area < 32^2, 32^2..96^2, > 96^2 pixels
    ap_medium: float | None = None
    ap_large: float | None = None


@dataclass
class AnalysisReport:
    name: str
    url_path: str
    data_yaml: str
    weights: str
    split: str
    conf: float
    iou: float
    high_conf: float
    samples: int
    gt_boxes: int
    predictions: int
    tp: int
    fp: int
    fn: int
    fiftyone_map: float | None
    ultralytics_map50_95: float | None
    ultralytics_map50: float | None
    why_maps_differ: str
    classes: list[ClassRow] = field(default_factory=list)
    views: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    show_conf: float = 0.25
    default_view: str = DEFAULT_VIEW
    ap_by_size: dict[str, float | None] = field(default_factory=dict)
    map_steps: list[dict] = field(default_factory=list)  # explain.Step: FiftyOne's mAP -> Ultralytics'
    ultralytics_val_run: bool = False
    confusion: dict[str, Any] = field(default_factory=dict)  # {"labels", "rows", "columns", "matrix"}
    plots: dict[str, str] = field(default_factory=dict)
    evaluation: str = "yolo-tl"  # "yolo-tl" (registered as FiftyOne's run) or "fiftyone" (fallback)
    split_is_train: bool = False  # every image of the split is also a training image
    train_overlap: float = 0.0  # share of the split's images that are in the train split
    unreadable: list[str] = field(default_factory=list)  # images left out: their pixels do not decode

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def _timed(it: Iterator, seconds: dict[str, float], key: str) -> Iterator:
    """Yield from ``it``, adding the time spent inside ``next()`` to ``seconds[key]``."""
    while True:
        t = time.perf_counter()
        try:
            item = next(it)
        except StopIteration:
            seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - t
            return
        seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - t
        yield item


def analyze(
    data_yaml: PathLike,
    *,
    weights: PathLike,
    split: str = "val",
    name: str | None = None,
    conf: float = 0.001,
    iou: float = 0.5,
    imgsz: int = 640,
    batch: int = 16,
    high_conf: float = 0.5,
    show_conf: float = 0.25,
    worst_k: int = 50,
    device: str | None = None,
    compare_ultralytics: bool = False,
    plots_dir: PathLike | None = None,
    progress: Progress | None = None,
) -> AnalysisReport:
    """Build (or replace) the FiftyOne dataset ``name`` for ``split`` and evaluate ``weights`` on it.

    ``conf`` is the lowest confidence kept (0.001 as Ultralytics validates); ``iou`` is the
    evaluation IoU for tp/fp/fn; ``high_conf`` is the confidence above which a false positive is
    "confident" (view ``fp_high_conf``); ``show_conf`` the lowest confidence the saved views show.
    ``compare_ultralytics`` also runs Ultralytics' validator (a second inference pass);
    ``plots_dir``: where PR curves and the confusion matrix go as PNG (None: not written).
    """
    from yolo_tl.analysis import collect as fio
    from yolo_tl.analysis.store.evaluated_samples import EvaluatedBuilder, Item
    from yolo_tl.analysis.metrics.map_steps import ap_by_size, explain_maps

    if not 0.0 <= conf < 1.0 or not 0.0 < iou < 1.0 or not 0.0 <= show_conf <= 1.0:
        raise YoloTLError("--conf must be in [0, 1), --iou in (0, 1) and --show-conf in [0, 1]",
                          field="conf/iou/show-conf")
    t0 = time.perf_counter()
    fo = open_fiftyone()  # first: a database that is down is reported before any slow work
    step = progress or (lambda phase, n, total: None)
    data_yaml = Path(data_yaml).expanduser().resolve()
    weights = Path(weights).expanduser().resolve()
    split_data = fio.read_split(data_yaml, split)
    names = list(split_data.names)
    label_of = dict(zip(split_data.images, split_data.labels))
    model = fio.load_model(weights)
    match = match_classes(model.names, names, path=weights, data_yaml=data_yaml)
    rename = label_renames(model.names, names, match)
    name = name or default_name(data_yaml, weights, split)
    if fo.dataset_exists(name) and not is_ours(fo.load_dataset(name)):
        raise OutputError(f"FiftyOne dataset '{name}' exists and was not made by yolo-tl",
                          hint="choose another --name")
    overlap = train_overlap(data_yaml, split, split_data.images)
    seconds: dict[str, float] = {"read": time.perf_counter() - t0}
    total = len(split_data.images)
    state: dict[str, Any] = {}

    def fill(ds: Any) -> Any:
        builder = EvaluatedBuilder(ds, names, iou=iou, high_conf=high_conf, show_conf=show_conf)
        state["builder"] = builder
        space = SpaceGuard(ds, total, where=database_location(fo))
        space.check(0)
        preds = _timed(iter(fio.predict_boxes(model, split_data.images, conf=conf, imgsz=imgsz, batch=batch,
                                              device=device)), seconds, "predict")
        t_work = 0.0
        chunk: list[Item] = []
        for path, boxes, size in preds:
            step("predict", 1, total)
            if boxes is None:  # left out, as Ultralytics' validator leaves out an image it cannot read
                unreadable.append(str(path))
                continue
            t = time.perf_counter()
            gt = fio.read_yolo_boxes(label_of.get(Path(path), fio.label_path_for(Path(path))), names)
            chunk.append(Item(str(path), gt, fio.rename_boxes(boxes, rename), size))
            if len(chunk) >= BATCH:
                builder.add(chunk)
                step("evaluate + insert", len(chunk), total)
                space.check(builder.samples)
                chunk = []
            t_work += time.perf_counter() - t
        if len(unreadable) == total:
            raise YoloTLError(f"none of the {total} images of split '{split}' could be read", path=data_yaml)
        t = time.perf_counter()
        if chunk:
            builder.add(chunk)
            step("evaluate + insert", len(chunk), total)
        results = builder.finish()
        seconds["ingest_evaluate"] = t_work + time.perf_counter() - t
        if plots_dir is not None:  # before the swap: a figure that cannot be written leaves the old dataset
            from yolo_tl.analysis.metrics.evaluation import mean_ap
            from yolo_tl.analysis.metrics.plots import write_figures

            curves = builder.acc.pr_curves("all")
            aps = [a if n else None for a, n in zip(mean_ap(curves["precision"])[1], builder.counts["gt"])]
            state["plots"] = write_figures(Path(plots_dir).expanduser().resolve(), names, curves, aps,
                                           builder.confusion, iou=iou, min_conf=show_conf)
        t = time.perf_counter()
        step("views", 0, 1)
        state["views"] = save_views(ds, names, high_conf, worst_k, show_conf)
        style_app(ds)
        ds.tags = [TAG]
        ds.info["yolo_tl"] = {"data_yaml": str(data_yaml), "weights": str(weights), "split": split,
                              "conf": conf, "iou": iou, "imgsz": imgsz, "show_conf": show_conf,
                              "default_view": DEFAULT_VIEW, "train_overlap": round(overlap, 4)}
        ds.save()
        seconds["views"] = time.perf_counter() - t
        step("views", 1, 1)
        return results

    # Built under a temporary name and swapped in once complete (swap.py): an error or Ctrl-C
    # leaves the earlier dataset of this name as it was.
    unreadable: list[str] = []
    try:
        with building(fo, name, is_ours=is_ours) as ds:
            results = fill(ds)
    except OSError as err:
        if not is_disk_full(err):
            raise
        where = err.filename or f"a temporary file in {tempfile.gettempdir()}"
        raise OutputError(f"no space left on the device while writing {where}",
                          hint="free some space (or set TMPDIR / --out to another disk); the earlier dataset "
                               "of this name is unchanged") from None
    finally:
        if "builder" in state:  # its temporary file, also when the build failed
            state["builder"].matches.close()
    builder = state["builder"]
    ul = None
    if compare_ultralytics:
        t = time.perf_counter()
        step("ultralytics val", 0, None)
        ul = _ultralytics_val(model, data_yaml, split, conf=conf, imgsz=imgsz, batch=batch,
                              device=device, match=match)
        seconds["ultralytics_val"] = time.perf_counter() - t
    ul_ap: dict[int, float] = {}
    if ul is not None:
        # by class name: the validator's indices are the model's, the table's are the data's
        to_data = match.model_to_data
        ul_ap = {to_data[int(i)]: float(a) for i, a in zip(ul.box.ap_class_index, ul.box.ap) if int(i) in to_data}
    sizes = ap_by_size(builder.acc)
    fo_map = float(results.mAP()) if results is not None else -1.0
    rows = []
    for i, c in enumerate(names):
        tp, fp, fn, ngt = (int(builder.counts[k][i]) for k in ("tp", "fp", "fn", "gt"))
        ap = float(results.mAP(classes=[c])) if ngt and results is not None else None
        rows.append(ClassRow(
            c, ngt, tp, fp, fn, precision=tp / (tp + fp) if tp + fp else 0.0,
            recall=tp / (tp + fn) if tp + fn else 0.0, ap=ap if ap is None or ap >= 0 else None,
            ultralytics_ap=ul_ap.get(i), ap_small=sizes["small"]["per_class"][i],
            ap_medium=sizes["medium"]["per_class"][i], ap_large=sizes["large"]["per_class"][i]))
    steps = [s.to_dict() for s in explain_maps(builder.acc)]
    confusion = {"labels": names, "rows": [*names, "background"], "columns": [*names, "missed"],
                 "iou": iou, "min_conf": show_conf, "matrix": builder.confusion.tolist()}
    plots: dict[str, str] = state.get("plots", {})
    seconds["total"] = time.perf_counter() - t0
    why = (f"measured on the same {builder.predictions} stored predictions: "
           + "; ".join(f"{s['rule']}: {s['map50_95']}" for s in steps)
           + ("" if ul is not None else "; Ultralytics' own validation pass was not run (--ultralytics-val)"))
    return AnalysisReport(
        name=name, url_path=f"/datasets/{ds.slug}", data_yaml=str(data_yaml), weights=str(weights),
        split=split, conf=conf, iou=iou, high_conf=high_conf, samples=len(ds),
        gt_boxes=sum(r.gt for r in rows), predictions=builder.predictions,
        tp=sum(r.tp for r in rows), fp=sum(r.fp for r in rows), fn=sum(r.fn for r in rows),
        fiftyone_map=fo_map if fo_map >= 0 else None,
        ultralytics_map50_95=float(ul.box.map) if ul is not None else None,
        ultralytics_map50=float(ul.box.map50) if ul is not None else None,
        why_maps_differ=why, classes=rows, views=state["views"],
        seconds={k: round(v, 3) for k, v in seconds.items()}, show_conf=show_conf,
        ap_by_size={k: v["mAP"] for k, v in sizes.items()}, map_steps=steps, ultralytics_val_run=ul is not None,
        confusion=confusion, plots=plots, evaluation="yolo-tl" if builder.registered else "fiftyone",
        split_is_train=overlap >= 1.0 and split != "train", train_overlap=round(overlap, 4),
        unreadable=unreadable,
    )
