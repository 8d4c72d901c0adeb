"""Add many image samples with detections to a FiftyOne dataset, fast.

FiftyOne's ``add_samples`` builds every label as a mongoengine document, validates it field by
field, serialises it, and rebuilds it from the inserted dict: 90% of the ingest time (see
benchmarks/RESULTS.md), ~20 ms per sample of 40 boxes on 2 cores. The documents that end up in
the database are plain: here we write those same documents with one ``insert_many`` per batch,
the way FiftyOne itself writes frame samples in bulk (``fiftyone.core.video``).

Nothing is guessed: the first sample goes in through FiftyOne's public API (which sets the
dataset's media type and field schema), and the bulk path is taken only when the stored first
sample and FiftyOne's own serialisation of a probe Detection, Detections and ImageMetadata have
exactly the structure the fast builders produce. Any difference (a future FiftyOne that stores
more) and the rest goes through ``add_samples`` too, with a warning. tests/analysis/test_sample_insert.py
compares both paths field by field and through ``evaluate_detections``. The document layout and
the raw collection are ``yolo_tl._upstream.fiftyone``'s.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

from yolo_tl._upstream import fiftyone as upstream_fo
from yolo_tl.analysis.collect import RawBox, to_detections

log = logging.getLogger(__name__)

BATCH = 1000  # samples per insert_many: bounded BSON messages, steady memory


class SampleRow(NamedTuple):
    """One image: its path, ground truth and predicted boxes, and its (height, width) if known.

    ``gt_attrs`` / ``pred_attrs``: per box, extra attributes stored on the Detection (an ``_id``
    ObjectId among them fixes the label id); ``fields``: extra sample fields (evaluation counts).
    """

    filepath: str
    ground_truth: Sequence[RawBox]
    predictions: Sequence[RawBox] | None
    size: tuple[int, int] | None
    gt_attrs: Sequence[dict] | None = None
    pred_attrs: Sequence[dict] | None = None
    fields: dict | None = None


def _probes_agree(fo: Any) -> bool:
    """FiftyOne serialises labels the way the bulk builders write them (``_upstream.fiftyone.probes_agree``)."""
    return upstream_fo.probes_agree(fo)


def _api_detections(fo: Any, boxes: Sequence[RawBox], attrs: Sequence[dict] | None) -> Any:
    if attrs is None:
        return to_detections(boxes)
    dets = []
    for (label, box, score), a in zip(boxes, attrs):
        a = dict(a)
        oid = a.pop("_id", None)
        det = fo.Detection(label=label, bounding_box=list(box), **({} if score is None else {"confidence": score}), **a)
        if oid is not None:
            upstream_fo.set_label_id(det, oid)
        dets.append(det)
    return fo.Detections(detections=dets)


def _api_sample(fo: Any, row: SampleRow, gt_field: str, pred_field: str) -> Any:
    fields: dict[str, Any] = {gt_field: _api_detections(fo, row.ground_truth, row.gt_attrs)}
    if row.predictions is not None:
        fields[pred_field] = _api_detections(fo, row.predictions, row.pred_attrs)
    if row.size is not None:
        fields["metadata"] = fo.ImageMetadata(width=row.size[1], height=row.size[0])
    fields.update(row.fields or {})
    return fo.Sample(filepath=row.filepath, **fields)


class SampleWriter:
    """Adds rows to an image dataset in batches: the first sample through FiftyOne's API, then, when
    the stored template and the probes agree with the bulk builders, raw documents in ``insert_many``.

    Every row must have predictions, or none may, and the same extra fields (one schema).
    """

    def __init__(self, ds: Any, *, gt_field: str = "ground_truth", pred_field: str = "predictions") -> None:
        self.ds, self.gt_field, self.pred_field = ds, gt_field, pred_field
        self.path: str | None = None  # "bulk" or "api" once decided
        self._dataset_id: Any = None
        self._kind: tuple | None = None

    def add(self, rows: Sequence[SampleRow]) -> None:
        import fiftyone as fo

        if not rows:
            return
        kinds = {(r.predictions is None, r.size is None, tuple(sorted(r.fields or {}))) for r in rows}
        if self._kind is not None:
            kinds.add(self._kind)
        if len(kinds) > 1:
            raise ValueError("add_detection_samples: rows must all have, or all lack, predictions, sizes and "
                             "the same extra fields")
        self._kind = next(iter(kinds))
        if self.path is None:
            self.ds.add_samples([_api_sample(fo, rows[0], self.gt_field, self.pred_field)], progress=False)
            self.path = self._choose(fo, rows[0])
            rows = rows[1:]
        if not rows:
            return
        if self.path == "api":
            self.ds.add_samples([_api_sample(fo, r, self.gt_field, self.pred_field) for r in rows], progress=False)
            return
        for start in range(0, len(rows), BATCH):
            self._insert(rows[start:start + BATCH])

    def _choose(self, fo: Any, first: SampleRow) -> str:
        template = upstream_fo.sample_collection(self.ds).find_one({"filepath": first.filepath})
        fields = {self.gt_field} | set(first.fields or {})
        if first.predictions is not None:
            fields.add(self.pred_field)
        if not upstream_fo.template_fits(template, fields) or not _probes_agree(fo):
            log.warning("FiftyOne stores samples differently than yolo-tl's bulk writer expects "
                        "(fiftyone %s): adding samples one by one, which is slower", fo.__version__)
            return "api"
        self._dataset_id = template["_dataset_id"]
        return "bulk"

    def _insert(self, rows: Sequence[SampleRow]) -> None:
        created = upstream_fo.now()
        docs = []
        for row in rows:
            labels = {self.gt_field: upstream_fo.detections_doc(row.ground_truth, row.gt_attrs)}
            if row.predictions is not None:
                labels[self.pred_field] = upstream_fo.detections_doc(row.predictions, row.pred_attrs)
            docs.append(upstream_fo.image_sample_doc(row.filepath, upstream_fo.image_metadata_doc(row.size),
                                                     self._dataset_id, created, {**labels, **(row.fields or {})}))
        upstream_fo.sample_collection(self.ds).insert_many(docs, ordered=True)

    def close(self) -> None:
        if self.path == "bulk":
            self.ds.reload()


def add_detection_samples(ds: Any, rows: Sequence[SampleRow], *, gt_field: str = "ground_truth",
                          pred_field: str = "predictions") -> str:
    """Add ``rows`` to the (empty) image dataset ``ds``; returns the path taken: "bulk" or "api"."""
    writer = SampleWriter(ds, gt_field=gt_field, pred_field=pred_field)
    writer.add(rows)
    writer.close()
    return writer.path if writer.path == "bulk" and len(rows) > 1 else "api"
