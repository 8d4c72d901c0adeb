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
more) and the rest goes through ``add_samples`` too, with a warning. tests/test_fiftyone_bulk.py
compares both paths field by field and through ``evaluate_detections``.
"""

from __future__ import annotations

import datetime
import logging
import random
from collections.abc import Sequence
from typing import Any, NamedTuple, Optional

from yolo_tl.analysis.labels import RawBox, to_detections

log = logging.getLogger(__name__)

BATCH = 1000  # samples per insert_many: bounded BSON messages, steady memory


class SampleRow(NamedTuple):
    """One image: its path, ground truth and predicted boxes, and its (height, width) if known."""

    filepath: str
    ground_truth: Sequence[RawBox]
    predictions: Optional[Sequence[RawBox]]
    size: Optional[tuple[int, int]]


def _detection(label: str, box: Sequence[float], score: Optional[float]) -> dict:
    from bson import ObjectId

    doc = {"_id": ObjectId(), "_cls": "Detection", "attributes": {}, "tags": [], "label": label,
           "bounding_box": [float(v) for v in box]}
    if score is not None:
        doc["confidence"] = float(score)
    return doc


def _detections(boxes: Sequence[RawBox]) -> dict:
    return {"_cls": "Detections", "detections": [_detection(*b) for b in boxes]}


def _metadata(size: Optional[tuple[int, int]]) -> Optional[dict]:
    if size is None:
        return None
    height, width = size
    return {"_cls": "ImageMetadata", "width": int(width), "height": int(height)}


def _shape(value: Any) -> Any:
    """A document's structure: keys and value types, recursively; ids and numbers by kind only."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items() if k != "_id"}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "number"
    return type(value).__name__ if not isinstance(value, str) else value


def _probes_agree(fo: Any) -> bool:
    """FiftyOne's own serialisation of one label of each kind has our builders' structure."""
    theirs = [
        dict(fo.Detection(label="a", bounding_box=[0.1, 0.2, 0.3, 0.4], confidence=0.5).to_mongo()),
        dict(fo.Detection(label="a", bounding_box=[0.1, 0.2, 0.3, 0.4]).to_mongo()),
        dict(fo.Detections(detections=[]).to_mongo()),
        dict(fo.ImageMetadata(width=3, height=4).to_mongo()),
    ]
    ours = [_detection("a", (0.1, 0.2, 0.3, 0.4), 0.5), _detection("a", (0.1, 0.2, 0.3, 0.4), None),
            _detections([]), _metadata((4, 3))]
    return all(_shape(a) == _shape(b) and list(a) == list(b) for a, b in zip(theirs, ours))


def _api_sample(fo: Any, row: SampleRow, gt_field: str, pred_field: str) -> Any:
    fields: dict[str, Any] = {gt_field: to_detections(row.ground_truth)}
    if row.predictions is not None:
        fields[pred_field] = to_detections(row.predictions)
    if row.size is not None:
        fields["metadata"] = fo.ImageMetadata(width=row.size[1], height=row.size[0])
    return fo.Sample(filepath=row.filepath, **fields)


def _now() -> datetime.datetime:
    """What FiftyOne stores for created_at / last_modified_at: naive UTC, millisecond precision."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _rand() -> float:
    try:  # FiftyOne's own generator (a private Random, values in [0.999, 1))
        from fiftyone.core.odm.sample import _generate_rand

        return _generate_rand()
    except ImportError:
        return random.random() * 0.001 + 0.999


def add_detection_samples(ds: Any, rows: Sequence[SampleRow], *, gt_field: str = "ground_truth",
                          pred_field: str = "predictions") -> str:
    """Add ``rows`` to the (empty) image dataset ``ds``; returns the path taken: "bulk" or "api".

    Every row must have predictions, or none may (a field is either in the schema or not).
    """
    import fiftyone as fo

    if not rows:
        return "api"
    if len({r.predictions is None for r in rows}) > 1 or len({r.size is None for r in rows}) > 1:
        raise ValueError("add_detection_samples: rows must all have, or all lack, predictions and sizes")
    ds.add_samples([_api_sample(fo, rows[0], gt_field, pred_field)], progress=False)
    rest = rows[1:]
    if not rest:
        return "api"
    template = ds._sample_collection.find_one({"filepath": rows[0].filepath})
    expected = {"_id", "filepath", "tags", "metadata", "created_at", "last_modified_at", "_media_type",
                "_rand", "_dataset_id", gt_field} | ({pred_field} if rows[0].predictions is not None else set())
    if template is None or set(template) != expected or template.get("_media_type") != "image" \
            or not _probes_agree(fo):
        log.warning("FiftyOne stores samples differently than yolo-tl's bulk writer expects "
                    "(fiftyone %s): adding samples one by one, which is slower", fo.__version__)
        ds.add_samples([_api_sample(fo, r, gt_field, pred_field) for r in rest], progress=False)
        return "api"

    from bson import ObjectId

    dataset_id = template["_dataset_id"]
    for start in range(0, len(rest), BATCH):
        now = _now()
        docs = []
        for row in rest[start:start + BATCH]:
            doc = {"_id": ObjectId(), "filepath": row.filepath, "tags": [], "metadata": _metadata(row.size),
                   "created_at": now, "last_modified_at": now, "_media_type": "image", "_rand": _rand(),
                   "_dataset_id": dataset_id, gt_field: _detections(row.ground_truth)}
            if row.predictions is not None:
                doc[pred_field] = _detections(row.predictions)
            docs.append(doc)
        ds._sample_collection.insert_many(docs, ordered=True)
    ds.reload()
    return "bulk"
