"""``fix_labels``: write a corrected YOLO dataset from the suggestions of an analysis that the user accepted.

The suggestions are the ``label_issues`` Detections that ``analyze`` stored (``store/label_suspects.py``).
A suggestion tagged ``accept`` in the App (a label tag) is applied, one tagged ``reject`` never; with
``accept_above`` the untagged ones scored at or above it are accepted too, one per label box (its best
scored) and no added box over another accepted one, so the automatic choice never conflicts. Each
suggestion is checked against the dataset as it is now: the ground-truth box and the prediction it names
must still exist. The corrected dataset is written by ``dataset.fixes.write_fixed_dataset``, which checks
every fix against the label files on disk before anything is written; the source is only read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yolo_tl.analysis.metrics.label_issues import MATCH_IOU, iou_matrix
from yolo_tl.analysis.store.label_suspects import FIELD, to_pixels
from yolo_tl.analysis.store.our_datasets import is_ours, open_fiftyone
from yolo_tl.dataset.fixes import LabelFix, write_fixed_dataset
from yolo_tl.dataset.output import LINK_MODES
from yolo_tl.errors import FixError, OutputError, YoloTLError

log = logging.getLogger(__name__)

ACCEPT, REJECT = "accept", "reject"
BATCH = 256


@dataclass
class FixLabelsReport:
    """What ``fix_labels`` wrote: the output folder and how each suggestion was decided."""

    name: str
    out: Path
    data_yaml: str
    applied: list[dict] = field(default_factory=list)  # fixes.json's entries
    accepted_by_tag: int = 0
    accepted_above: int = 0
    rejected: int = 0
    untouched: int = 0  # neither tagged nor above --accept-above (or left out so as not to conflict)
    images: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "out": str(self.out), "data_yaml": self.data_yaml, "images": self.images,
                "accepted_by_tag": self.accepted_by_tag, "accepted_above": self.accepted_above,
                "rejected": self.rejected, "untouched": self.untouched, "applied": self.applied}


def _load(name: str) -> tuple[Any, str]:
    fo = open_fiftyone()
    if not fo.dataset_exists(name):
        raise OutputError(f"no FiftyOne dataset named '{name}'", hint="see: yolo-tl datasets list")
    ds = fo.load_dataset(name)
    info = (ds.info or {}).get("yolo_tl") or {}
    if not is_ours(ds) or not info.get("data_yaml") or not ds.has_sample_field(FIELD):
        raise YoloTLError(f"FiftyOne dataset '{name}' is not a yolo-tl analysis with label suggestions "
                          f"(no '{FIELD}' field)", hint="make one with: yolo-tl analyze DATA_YAML --weights W")
    return ds, str(info["data_yaml"])


def _decision(det: Any, accept_above: float | None, where: str, automatic: str) -> str | None:
    tags = set(det.tags or [])
    if ACCEPT in tags and REJECT in tags:
        raise FixError(f"suggestion {det.id} ({det.kind}) is tagged both '{ACCEPT}' and '{REJECT}'", path=where)
    if REJECT in tags:
        return REJECT
    if ACCEPT in tags:
        return f"tag {ACCEPT}"
    if accept_above is not None and float(det.score) >= accept_above:
        return automatic
    return None


def _fix(det: Any, how: str, sample: dict, names: list[str], where: str) -> LabelFix:
    """The LabelFix of one suggestion, its boxes in pixels; the GT box and prediction it names must exist."""
    width, height = sample["size"]
    gt = sample["gt"]
    before, box = None, None
    if det.gt_id is not None:
        if det.gt_id not in gt:
            raise FixError(f"suggestion {det.id} ({det.kind}) is for ground-truth box {det.gt_id}, which no longer "
                           f"exists in the dataset", path=where)
        box, (label, rel) = gt[det.gt_id]
        if label not in names:
            raise FixError(f"ground-truth box {det.gt_id} has class '{label}', which is not in data.yaml names",
                           path=where)
        before = (names.index(label), *to_pixels(rel, width, height))
    if det.pred_id is not None and det.pred_id not in sample["preds"]:
        raise FixError(f"suggestion {det.id} ({det.kind}) is for prediction {det.pred_id}, which no longer exists "
                       "in the dataset", path=where)
    if det.label not in names:
        raise FixError(f"suggestion {det.id} ({det.kind}): class '{det.label}' is not in data.yaml names", path=where)
    after = None if det.fix == "remove" else (names.index(det.label), *to_pixels(det.bounding_box, width, height))
    if det.fix == "relabel" and before is not None:
        after = (names.index(det.label), *before[1:])
    return LabelFix(image=sample["filepath"], kind=det.fix, box=box, before=before, after=after,
                    score=float(det.score), accepted=how, issue=det.kind)


def _samples(ds: Any):
    """(sample dict, its suggestions) for every sample with a suggestion, read in batches."""
    from fiftyone import ViewField as F

    view = ds.match(F(f"{FIELD}.detections").length() > 0).sort_by("filepath")
    ids = view.values("id")
    for start in range(0, len(ids), BATCH):
        chunk = ds.select(ids[start:start + BATCH], ordered=True)
        rows = chunk.values(["filepath", "metadata.width", "metadata.height", "ground_truth.detections",
                             "predictions.detections.id", f"{FIELD}.detections"])
        for path, w, h, gts, pred_ids, dets in zip(*rows):
            gt = {d.id: (i, (d.label, d.bounding_box)) for i, d in enumerate(gts or [])}
            yield {"filepath": path, "size": (w, h), "gt": gt, "preds": set(pred_ids or [])}, dets or []


def fix_labels(name: str, out: str | Path, *, accept_above: float | None = None, accept_top: int | None = None,
               link: str = "hardlink") -> FixLabelsReport:
    """Write the analysed dataset of ``name`` with its accepted suggestions applied to ``out`` (a new folder).

    ``accept_above``: also accept the untagged suggestions scored at or above it. ``accept_top``: of the
    untagged suggestions (those at or above ``accept_above`` when both are given), accept the
    ``accept_top`` best scored, after the one-per-box rule (ties broken by image, then suggestion id).
    Nothing is written when a suggestion is refused (see the module docstring) or ``out`` exists.
    """
    if accept_above is not None and not 0.0 <= accept_above <= 1.0:
        raise YoloTLError(f"must be in [0, 1], got {accept_above}", field="accept_above")
    if accept_top is not None and accept_top < 0:
        raise YoloTLError(f"must be 0 or more, got {accept_top}", field="accept_top")
    threshold = 0.0 if accept_top is not None and accept_above is None else accept_above
    automatic_how = " ".join(([f"--accept-top {accept_top}"] if accept_top is not None else [])
                             + ([f"--accept-above {accept_above:g}"] if accept_above is not None else []))
    if link not in LINK_MODES:
        raise YoloTLError(f"use one of {', '.join(LINK_MODES)}, got {link!r}", field="link")
    out = Path(out).expanduser().absolute()
    if out.exists() or out.is_symlink():
        raise OutputError("output already exists; choose a new folder", path=out)
    ds, data_yaml = _load(name)
    from yolo_tl.dataset.formats.yolo import load_data_yaml

    names = list(load_data_yaml(Path(data_yaml)).names)
    report = FixLabelsReport(name=name, out=out, data_yaml=data_yaml)
    fixes: list[LabelFix] = []
    automatic: list[tuple[float, str, int, LabelFix]] = []  # (score, image, order, fix) for accept_top
    for sample, dets in _samples(ds):
        where = f"{name}: {sample['filepath']}"
        tagged, auto = [], []
        for det in sorted(dets, key=lambda d: (-float(d.score), d.id)):
            how = _decision(det, threshold, where, automatic_how)
            if how == REJECT:
                report.rejected += 1
            elif how is None:
                report.untouched += 1
            else:
                (tagged if how.startswith("tag") else auto).append(_fix(det, how, sample, names, where))
        boxes_done = {f.box for f in tagged if f.box is not None}
        added = [f.after[1:] for f in tagged if f.kind == "add" and f.after is not None]
        for f in auto:  # best first: one fix per box, no added box over an accepted one
            if f.box is not None and f.box in boxes_done:
                report.untouched += 1
                continue
            if f.kind == "add" and added and iou_matrix([f.after[1:]], added).max() >= MATCH_IOU:  # type: ignore
                report.untouched += 1
                continue
            if f.box is not None:
                boxes_done.add(f.box)
            if f.kind == "add":
                added.append(f.after[1:])  # type: ignore[index]
            automatic.append((f.score, f.image, len(automatic), f))
        fixes += tagged
    automatic.sort(key=lambda t: (-t[0], t[1], t[2]))
    keep = len(automatic) if accept_top is None else min(accept_top, len(automatic))
    fixes += [f for *_, f in automatic[:keep]]
    report.untouched += len(automatic) - keep
    report.accepted_by_tag = sum(f.accepted.startswith("tag") for f in fixes)
    report.accepted_above = len(fixes) - report.accepted_by_tag
    written = write_fixed_dataset(data_yaml, fixes, out, link=link)
    report.applied, report.images = written.applied, written.images
    log.info("%s: %d fixes applied (%d tagged, %d above the score) into %s", name, len(fixes),
             report.accepted_by_tag, report.accepted_above, out)
    return report
