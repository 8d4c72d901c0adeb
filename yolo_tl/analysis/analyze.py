"""Error analysis in FiftyOne: ground truth + predictions, COCO-style evaluation, saved views, App.

``analyze(data_yaml, weights=...)`` builds a persistent FiftyOne dataset (one sample per image of
the split), evaluates it, saves views that answer "what went wrong" at a glance and compares
FiftyOne's COCO-style mAP with Ultralytics' own mAP50-95 for the same weights and split.

Saved views are made in ``views.py``, the App is served by ``app.py``, dataset listing and
deletion are in ``datasets.py``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Union

from yolo_tl.analysis.labels import EVAL_KEY, GT, PRED
from yolo_tl.analysis.building import building
from yolo_tl.analysis.datasets import TAG, is_ours, open_fiftyone
from yolo_tl.analysis.views import save_views
from yolo_tl.errors import OutputError, YoloTLError

log = logging.getLogger(__name__)

NMS_IOU = 0.7  # Ultralytics' validation default; predictions use it too, so both mAPs see the same boxes

WHY_MAPS_DIFFER = (
    "The two mAPs differ because FiftyOne's COCO-style mAP keeps at most 100 predictions per image, "
    "matches boxes greedily by confidence and reads precision at 101 recall steps, while "
    "Ultralytics keeps up to 300 per image, matches by IoU, integrates an interpolated PR curve "
    "and runs its own rectangular-batch inference; both use the same confidence threshold."
)

PathLike = Union[str, Path]


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
    ultralytics_ap: float | None = None  # Ultralytics AP50-95 for the class


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
                     batch: int, device: str | None, rename: dict[str, str] | None = None) -> Any:
    with tempfile.TemporaryDirectory(prefix="yolo-tl-val-") as tmp:
        if rename is not None:  # the model knows more classes: the same labels, re-indexed by name
            data_yaml = _by_name_data(data_yaml, split, model.names, Path(tmp) / "by_name")
        kwargs: dict[str, Any] = {
            "data": str(data_yaml), "split": split, "conf": conf, "iou": NMS_IOU, "imgsz": imgsz, "batch": batch,
            "plots": False, "save_json": False, "verbose": False, "project": tmp, "name": "val", "exist_ok": True}
        if device is not None:
            kwargs["device"] = device
        try:
            return model.val(**kwargs)
        except Exception as err:
            raise YoloTLError(f"Ultralytics validation failed: {err}", path=data_yaml) from err


def _by_name_data(data_yaml: Path, split: str, model_names: dict[int, str], out: Path) -> Path:
    from yolo_tl.training.derived_data import write_derived_dataset
    from yolo_tl.training.evaluate import match_classes_by_name
    from yolo_tl.training.ultralytics_compat import read_data_info

    info = read_data_info(data_yaml, need=(split,))
    class_map = match_classes_by_name(info.names_dict, dict(model_names)) or {i: i for i in info.names_dict}
    names = [str(model_names[i]) for i in sorted(model_names)]
    return write_derived_dataset(info, out, names, lambda _s, _i, boxes: [(class_map[c], *b) for c, *b in boxes],
                                 splits=(split,), aliases=("train", "val"))


def _count(values: list[list[str | None]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for per_sample in values:
        for v in per_sample or []:
            out[v] = out.get(v, 0) + 1
    return out


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
    worst_k: int = 50,
    device: str | None = None,
    compare_ultralytics: bool = True,
) -> AnalysisReport:
    """Build (or replace) the FiftyOne dataset ``name`` for ``split`` and evaluate ``weights`` on it.

    ``conf`` is the lowest confidence kept (0.001 as Ultralytics validates); ``iou`` is the
    evaluation IoU for tp/fp/fn; ``high_conf`` is the confidence above which a false positive is
    "confident" (view ``fp_high_conf``).
    """
    from yolo_tl.analysis import labels as fio
    from yolo_tl.analysis.ingest import SampleRow, add_detection_samples

    if not 0.0 <= conf < 1.0 or not 0.0 < iou < 1.0:
        raise YoloTLError("--conf must be in [0, 1) and --iou in (0, 1)", field="conf/iou")
    t0 = time.perf_counter()
    fo = open_fiftyone()  # first: a database that is down is reported before any slow work
    data_yaml = Path(data_yaml).expanduser().resolve()
    weights = Path(weights).expanduser().resolve()
    split_data = fio.read_split(data_yaml, split)
    gts = [fio.read_yolo_boxes(lbl, split_data.names) for lbl in split_data.labels]
    model = fio.load_model(weights)
    rename = fio.check_class_names(model.names, split_data.names, weights)
    name = name or default_name(data_yaml, weights, split)
    if fo.dataset_exists(name) and not is_ours(fo.load_dataset(name)):
        raise OutputError(f"FiftyOne dataset '{name}' exists and was not made by yolo-tl",
                          hint="choose another --name")
    seconds: dict[str, float] = {"read": time.perf_counter() - t0}

    # Built under a temporary name and swapped in once complete (building.py): an error or Ctrl-C
    # leaves the earlier dataset of this name as it was.
    with building(fo, name, is_ours=is_ours) as ds:
        t = time.perf_counter()
        rows, unreadable = [], []
        for gt, (path, boxes, size) in zip(gts, fio.predict_boxes(
                model, split_data.images, conf=conf, imgsz=imgsz, batch=batch, device=device)):
            if boxes is None:  # left out, as Ultralytics' validator leaves out an image it cannot read
                unreadable.append(str(path))
            else:
                rows.append(SampleRow(str(path), gt, fio.rename_boxes(boxes, rename), size))
        if not rows:
            raise YoloTLError(f"none of the {len(unreadable)} images of split '{split}' could be read",
                              path=data_yaml)
        seconds["predict"] = time.perf_counter() - t
        t = time.perf_counter()
        add_detection_samples(ds, rows, gt_field=GT, pred_field=PRED)
        del rows
        seconds["add_samples"] = time.perf_counter() - t

        t = time.perf_counter()
        results = ds.evaluate_detections(PRED, gt_field=GT, eval_key=EVAL_KEY, iou=iou,
                                         compute_mAP=True, classes=split_data.names,
                                         progress=False)
        # errors per image = missed objects + confident false positives (low-confidence
        # false positives are expected at conf=0.001 and would drown the signal)
        pred_evals = ds.values(f"{PRED}.detections.eval")
        pred_confs = ds.values(f"{PRED}.detections.confidence")
        fns = ds.values("eval_fn")
        errors = [int(fn) + sum(1 for e, c in zip(ev or [], cf or []) if e == "fp" and c >= high_conf)
                  for fn, ev, cf in zip(fns, pred_evals, pred_confs)]
        ds.set_values("errors", errors)
        seconds["evaluate"] = time.perf_counter() - t
        views = save_views(ds, split_data.names, high_conf, worst_k)
        ds.tags = [TAG]
        ds.info["yolo_tl"] = {"data_yaml": str(data_yaml), "weights": str(weights), "split": split,
                              "conf": conf, "iou": iou, "imgsz": imgsz}
        ds.save()

    # per-class table
    gt_labels = ds.values(f"{GT}.detections.label")
    gt_evals = ds.values(f"{GT}.detections.eval")
    pred_labels = ds.values(f"{PRED}.detections.label")
    pairs_gt = [[f"{lab}|{ev}" for lab, ev in zip(ls or [], es or [])]
                for ls, es in zip(gt_labels, gt_evals)]
    pairs_pred = [[f"{lab}|{ev}" for lab, ev in zip(ls or [], es or [])]
                  for ls, es in zip(pred_labels, pred_evals)]
    cg, cp = _count(pairs_gt), _count(pairs_pred)
    ul = None
    if compare_ultralytics:
        t = time.perf_counter()
        ul = _ultralytics_val(model, data_yaml, split, conf=conf, imgsz=imgsz, batch=batch,
                              device=device, rename=rename)
        seconds["ultralytics_val"] = time.perf_counter() - t
    ul_ap: dict[int, float] = {}
    if ul is not None:
        # by class name: the validator's indices are the model's, the table's are the data's
        model_index = {str(n): int(k) for k, n in model.names.items()}
        to_data = ({model_index[m]: split_data.names.index(d) for m, d in rename.items()} if rename
                   else {i: i for i in range(len(split_data.names))})
        ul_ap = {to_data[int(i)]: float(a) for i, a in zip(ul.box.ap_class_index, ul.box.ap) if int(i) in to_data}
    rows = []
    for i, c in enumerate(split_data.names):
        tp, fp = cp.get(f"{c}|tp", 0), cp.get(f"{c}|fp", 0)
        fn = cg.get(f"{c}|fn", 0)
        ngt = sum(v for k, v in cg.items() if k.split("|", 1)[0] == c)
        ap = float(results.mAP(classes=[c])) if ngt else None
        rows.append(ClassRow(
            c, ngt, tp, fp, fn,
            precision=tp / (tp + fp) if tp + fp else 0.0,
            recall=tp / (tp + fn) if tp + fn else 0.0,
            ap=ap if ap is None or ap >= 0 else None,
            ultralytics_ap=ul_ap.get(i)))
    fo_map = float(results.mAP())
    seconds["total"] = time.perf_counter() - t0
    return AnalysisReport(
        name=name, url_path=f"/datasets/{ds.slug}", data_yaml=str(data_yaml), weights=str(weights),
        split=split, conf=conf, iou=iou, high_conf=high_conf, samples=len(ds),
        gt_boxes=sum(r.gt for r in rows), predictions=sum(len(v or []) for v in pred_labels),
        tp=sum(r.tp for r in rows), fp=sum(r.fp for r in rows), fn=sum(r.fn for r in rows),
        fiftyone_map=fo_map if fo_map >= 0 else None,
        ultralytics_map50_95=float(ul.box.map) if ul is not None else None,
        ultralytics_map50=float(ul.box.map50) if ul is not None else None,
        why_maps_differ=WHY_MAPS_DIFFER, classes=rows, views=views,
        seconds={k: round(v, 3) for k, v in seconds.items()}, unreadable=unreadable,
    )
