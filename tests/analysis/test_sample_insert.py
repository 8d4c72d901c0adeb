"""fiftyone_bulk writes sample documents itself: they must be the documents FiftyOne would write.

The reference is FiftyOne's own ``add_samples`` on the same rows: schema, every stored value,
label ids, and what ``evaluate_detections`` makes of both datasets.
"""

from __future__ import annotations

import logging
import random
import uuid

import pytest

from yolo_tl.analysis.store import sample_insert as fb

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

NAMES = ["cat", "dog", "bird"]


def _rows(n: int, seed: int = 0) -> list[fb.SampleRow]:
    rng = random.Random(seed)

    def boxes(k: int, scored: bool):
        out = []
        for _ in range(k):
            x, y = rng.uniform(0, 0.7), rng.uniform(0, 0.7)
            box = (x, y, rng.uniform(0.01, 0.3), rng.uniform(0.01, 0.3))
            out.append((rng.choice(NAMES), box, rng.uniform(0.001, 1.0) if scored else None))
        return out

    rows = []
    for i in range(n):
        gt = boxes(rng.choice([0, 1, 5, 12]), False)
        # predictions: jittered copies of some ground truth (true positives) plus noise
        pred = [(lab, tuple(v + rng.uniform(-0.01, 0.01) for v in box), rng.uniform(0.3, 1.0))
                for lab, box, _ in gt if rng.random() < 0.7] + boxes(rng.choice([0, 2, 6]), True)
        rows.append(fb.SampleRow(f"/data/img_{i:04d}.jpg", gt, pred, (480 + i % 3, 640)))
    return rows


def _api_dataset(fo, rows):
    ds = fo.Dataset(f"test-bulk-api-{uuid.uuid4().hex[:8]}")
    ds.add_samples([fb._api_sample(fo, r, "ground_truth", "predictions") for r in rows], progress=False)
    return ds


def _stored(ds) -> list[dict]:
    """Every sample's stored document without ids, times and _rand (they differ by nature)."""
    out = []
    for doc in ds._sample_collection.find({}, sort=[("filepath", 1)]):
        doc = {k: v for k, v in doc.items() if k not in ("_id", "_dataset_id", "created_at",
                                                         "last_modified_at", "_rand")}
        for field in ("ground_truth", "predictions"):
            if doc.get(field):
                doc[field]["detections"] = [{k: v for k, v in d.items() if k != "_id"}
                                            for d in doc[field]["detections"]]
        out.append(doc)
    return out


@pytest.fixture(scope="module")
def fo():
    import fiftyone

    return fiftyone


def test_bulk_documents_equal_fiftyone_add_samples(fo):
    rows = _rows(60)
    bulk = fo.Dataset(f"test-bulk-{uuid.uuid4().hex[:8]}")
    api = _api_dataset(fo, rows)
    try:
        assert fb.add_detection_samples(bulk, rows) == "bulk"
        assert len(bulk) == len(api) == 60
        assert bulk.media_type == api.media_type == "image"
        schema = {k: str(v) for k, v in bulk.get_field_schema(flat=True).items()}
        assert schema == {k: str(v) for k, v in api.get_field_schema(flat=True).items()}
        assert _stored(bulk) == _stored(api)
        # the values FiftyOne reads back (through its own field machinery), and label ids
        for path in ("filepath", "metadata.width", "metadata.height", "ground_truth.detections.label",
                     "ground_truth.detections.bounding_box", "predictions.detections.confidence"):
            assert bulk.values(path) == api.values(path), path
        ids = [i for per in bulk.values("predictions.detections.id") + bulk.values("ground_truth.detections.id")
               for i in per]
        assert len(ids) == len(set(ids)) == sum(len(r.predictions) + len(r.ground_truth) for r in rows)
        sample = bulk.first()  # a Sample object built from a bulk document
        assert isinstance(sample.ground_truth, fo.Detections) and sample.metadata.width == 640
        rand = [d["_rand"] for d in bulk._sample_collection.find({}, {"_rand": 1})]
        assert len(set(rand)) == 60 and all(0.999 <= r < 1.0 for r in rand)  # as FiftyOne draws it
    finally:
        bulk.delete()
        api.delete()


def test_evaluation_is_the_same_on_bulk_and_api_datasets(fo):
    rows = _rows(40, seed=1)
    bulk = fo.Dataset(f"test-bulk-{uuid.uuid4().hex[:8]}")
    api = _api_dataset(fo, rows)
    try:
        fb.add_detection_samples(bulk, rows)
        results = [ds.evaluate_detections("predictions", gt_field="ground_truth", eval_key="ev", iou=0.5,
                                          compute_mAP=True, classes=NAMES, progress=False)
                   for ds in (bulk, api)]
        assert results[0].mAP() == pytest.approx(results[1].mAP()) and results[0].mAP() > 0
        for path in ("ev_tp", "ev_fp", "ev_fn", "predictions.detections.ev", "ground_truth.detections.ev",
                     "predictions.detections.ev_iou"):
            assert bulk.values(path) == api.values(path), path
        assert sum(bulk.values("ev_tp")) > 0 and sum(bulk.values("ev_fn")) > 0
    finally:
        bulk.delete()
        api.delete()


def test_unfamiliar_fiftyone_storage_falls_back_to_add_samples(fo, monkeypatch, caplog):
    rows = _rows(10, seed=2)
    monkeypatch.setattr(fb, "_probes_agree", lambda fo: False)  # as if FiftyOne stored labels differently
    ds = fo.Dataset(f"test-bulk-{uuid.uuid4().hex[:8]}")
    api = _api_dataset(fo, rows)
    try:
        with caplog.at_level(logging.WARNING, logger="yolo_tl.analysis.store.sample_insert"):
            assert fb.add_detection_samples(ds, rows) == "api"
        assert "one by one" in caplog.text
        assert _stored(ds) == _stored(api)
    finally:
        ds.delete()
        api.delete()


def test_probes_agree_with_this_fiftyone(fo):
    # the bulk path is only worth having if it is taken with the FiftyOne we install
    assert fb._probes_agree(fo)


def test_rows_without_predictions(fo):
    rows = [r._replace(predictions=None) for r in _rows(5, seed=3)]
    ds = fo.Dataset(f"test-bulk-{uuid.uuid4().hex[:8]}")
    api = _api_dataset(fo, rows)
    try:
        assert fb.add_detection_samples(ds, rows) == "bulk"
        assert "predictions" not in ds.get_field_schema()
        assert _stored(ds) == _stored(api)
    finally:
        ds.delete()
        api.delete()
