"""Likely label mistakes stored with an analysis: a ``label_issues`` field of suggested fixes per sample.

After the samples are evaluated, the split is read back from the dataset in batches of ``BATCH``
samples (ids, sizes, labels and predictions only: memory stays flat), each image's suspects are found by
``metrics.label_issues.find_label_issues`` (pixels, the image's own boxes: a score never depends on the
other images), and the suggestions are written as Detections:

- ``label``: the class the box should have (a ``remove`` suggestion: the class it has);
- ``bounding_box``: the box to write (``remove``: the box to delete), relative as FiftyOne stores boxes;
- ``score`` (calibrated, reads as a probability), ``kind`` (missing, wrong_class, badly_placed, spurious),
  ``fix`` (add, relabel, move, remove), ``label_index`` (the box's line in the label file), ``gt_id`` /
  ``pred_id`` (the ids of the ground-truth box and the prediction involved), ``pred_conf``.

Each sample with a suggestion also gets ``suspect_score`` (its best score) and the sample tag ``suspect``;
``fix_labels`` reads the suggestions back (with the user's ``accept`` / ``reject`` label tags).
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Sequence
from typing import Any

from yolo_tl.analysis.collect import GT, PRED
from yolo_tl.analysis.metrics.label_issues import (
    FIX_FOR_KIND,
    KINDS,
    LabelIssue,
    best_per_box,
    find_label_issues,
)

log = logging.getLogger(__name__)

FIELD = "label_issues"
SCORE_FIELD = "suspect_score"
SAMPLE_TAG = "suspect"
MIN_STORED = 0.1  # suggestions scored under this are not stored (every stray box would be one)
BATCH = 256
TOP = 10  # suspects listed in the report

_VALUES = ("id", "filepath", "metadata.width", "metadata.height", f"{GT}.detections.id", f"{GT}.detections.label",
           f"{GT}.detections.bounding_box", f"{PRED}.detections.id", f"{PRED}.detections.label",
           f"{PRED}.detections.bounding_box", f"{PRED}.detections.confidence")


def to_pixels(box: Sequence[float], width: int, height: int) -> tuple[float, float, float, float]:
    """FiftyOne relative ``[x, y, w, h]`` -> ``x1, y1, x2, y2`` in pixels."""
    x, y, w, h = box
    return (x * width, y * height, (x + w) * width, (y + h) * height)


def to_relative(box: Sequence[float], width: int, height: int) -> list[float]:
    """``x1, y1, x2, y2`` in pixels -> FiftyOne relative ``[x, y, w, h]``."""
    x1, y1, x2, y2 = box
    return [x1 / width, y1 / height, (x2 - x1) / width, (y2 - y1) / height]


def image_issues(names: Sequence[str], width: int, height: int, gt_labels: Sequence[str],
                 gt_boxes: Sequence[Sequence[float]], pred_labels: Sequence[str],
                 pred_boxes: Sequence[Sequence[float]], pred_confs: Sequence[float],
                 *, min_score: float = MIN_STORED) -> list[LabelIssue]:
    """One image's suspects from its stored boxes (relative, class names), found in pixels; one per label box
    (``best_per_box``: the App shows one suggested fix for a box, its most likely)."""
    index = {n: i for i, n in enumerate(names)}
    found = find_label_issues([to_pixels(b, width, height) for b in gt_boxes], [index[n] for n in gt_labels],
                              [to_pixels(b, width, height) for b in pred_boxes], [index[n] for n in pred_labels],
                              [float(c) for c in pred_confs], min_score=min_score)
    return best_per_box(found)


def _detection(fo: Any, issue: LabelIssue, names: Sequence[str], size: tuple[int, int],
               gt_ids: Sequence[str], pred_ids: Sequence[str]) -> Any:
    box = issue.fix_box if issue.fix_box is not None else issue.label_box
    cls = issue.fix_class if issue.fix_class is not None else issue.label_class
    return fo.Detection(
        label=names[cls], bounding_box=to_relative(box, *size), score=round(issue.score, 4), kind=issue.kind,
        fix=FIX_FOR_KIND[issue.kind], label_index=issue.label_index,
        gt_id=None if issue.label_index is None else gt_ids[issue.label_index],
        pred_id=None if issue.pred_index is None else pred_ids[issue.pred_index],
        pred_conf=None if issue.pred_conf is None else round(issue.pred_conf, 4))


def _top_entry(filepath: str, issue: LabelIssue, names: Sequence[str]) -> dict[str, Any]:
    return {"image": filepath, "kind": issue.kind, "fix": FIX_FOR_KIND[issue.kind], "score": round(issue.score, 4),
            "label": None if issue.label_class is None else names[issue.label_class],
            "suggested": None if issue.fix_class is None else names[issue.fix_class],
            "label_index": issue.label_index,
            "pred_conf": None if issue.pred_conf is None else round(issue.pred_conf, 4)}


def store_label_suspects(ds: Any, names: Sequence[str], *, min_score: float = MIN_STORED, batch: int = BATCH,
                         progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Find and store every sample's suggestions (see the module docstring); returns the report's summary.

    The summary: ``counts`` and ``likely`` (score >= 0.5) per kind, ``samples`` with a suggestion,
    ``min_score`` stored, and the ``top`` suspects of the split, best first.
    """
    import fiftyone as fo

    counts = dict.fromkeys(KINDS, 0)
    likely = dict.fromkeys(KINDS, 0)
    top: list[tuple[float, int, dict]] = []  # a min-heap of the best TOP
    if not ds.has_sample_field(FIELD):  # declared first: a split without a suspect has only empty values
        ds.add_sample_field(FIELD, fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)
    if ds.get_field(f"{FIELD}.detections.kind") is None:  # the App colours only by a declared attribute
        ds.add_sample_field(f"{FIELD}.detections.kind", fo.StringField)
    if not ds.has_sample_field(SCORE_FIELD):
        ds.add_sample_field(SCORE_FIELD, fo.FloatField)
    ids = ds.values("id")
    suspects, seen = 0, 0
    for start in range(0, len(ids), batch):
        chunk = ds.select(ids[start:start + batch], ordered=True)
        issues_of: dict[str, Any] = {}
        best_of: dict[str, float | None] = {}
        for sid, path, w, h, gids, glabels, gboxes, pids, plabels, pboxes, pconfs in zip(*chunk.values(list(_VALUES))):
            found: list[LabelIssue] = []
            if w and h:
                found = image_issues(names, w, h, glabels or [], gboxes or [], plabels or [], pboxes or [],
                                     pconfs or [], min_score=min_score)
            issues_of[sid] = fo.Detections(detections=[_detection(fo, s, names, (w, h), gids or [], pids or [])
                                                       for s in found])
            best_of[sid] = round(found[0].score, 4) if found else None
            suspects += bool(found)
            for s in found:
                counts[s.kind] += 1
                likely[s.kind] += s.score >= 0.5
                seen += 1
                item = (s.score, -seen, _top_entry(path, s, names))
                if len(top) < TOP:
                    heapq.heappush(top, item)
                elif item[:2] > top[0][:2]:
                    heapq.heapreplace(top, item)
        chunk.set_values(FIELD, issues_of, key_field="id")
        chunk.set_values(SCORE_FIELD, best_of, key_field="id")
        if progress is not None:
            progress(len(issues_of))
    log.info("label suspects: %d suggestions on %d images", sum(counts.values()), suspects)
    return {"counts": counts, "likely": likely, "samples": suspects, "min_score": min_score,
            "top": [entry for _, _, entry in sorted(top, key=lambda t: t[:2], reverse=True)]}
