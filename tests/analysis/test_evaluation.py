"""yolo-tl's own evaluation against FiftyOne's ``evaluate_detections`` and pycocotools' COCOeval.

Generated data with every hard case: crowd boxes, tied confidences, > 100 predictions per image
and class, empty images, images with only predictions or only ground truth, a class without any
ground truth. Our dataset is built by ``EvaluatedBuilder``; the reference is a copy of the same
samples evaluated by FiftyOne itself.
"""

from __future__ import annotations

import random
import uuid

import numpy as np
import pytest

from yolo_tl.analysis.metrics.evaluation import Accumulator, ImageBoxes, match_image
from yolo_tl.analysis.store.evaluated_samples import EvaluatedBuilder, Item

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

NAMES = ["cat", "dog", "bird", "fish"]  # "fish" is predicted but never in the ground truth
SIZE = (480, 640)  # (height, width)


def _items(n: int, seed: int, ties: bool = True, crowds: bool = True) -> list[Item]:
    rng = random.Random(seed)

    def box(lo=0.02, hi=0.4):
        x, y = rng.uniform(0, 0.55), rng.uniform(0, 0.55)
        return (x, y, rng.uniform(lo, hi), rng.uniform(lo, hi))

    def conf():
        return round(rng.uniform(0.001, 1.0), 1) if ties else rng.uniform(0.001, 1.0)

    out = []
    for i in range(n):
        kind = i % 7
        gt = [] if kind in (0, 5) else [(rng.choice(NAMES[:3]), box(), None) for _ in range(rng.choice([1, 3, 8]))]
        crowd = [crowds and rng.random() < 0.15 for _ in gt]
        preds = []
        for lab, b, _ in gt:  # near copies (true positives at some thresholds) and duplicates
            for _ in range(rng.choice([0, 1, 1, 2])):
                preds.append((lab, tuple(v + rng.uniform(-0.02, 0.02) for v in b), conf()))
        if kind == 5:  # predictions only
            preds += [(rng.choice(NAMES), box(), conf()) for _ in range(5)]
        if kind == 3:  # more than 100 predictions of one class in one image
            preds += [("cat", box(0.01, 0.2), conf()) for _ in range(130)]
        preds += [(rng.choice(NAMES), box(), conf()) for _ in range(rng.choice([0, 2, 4]))]
        if kind == 0:
            preds = []
        preds.sort(key=lambda p: -p[2])
        out.append(Item(f"/data/img_{i:04d}.jpg", gt, preds, SIZE, crowd if crowds else None))
    return out


def _reference(fo, items):
    """The same samples through FiftyOne's API, evaluated by FiftyOne."""
    ds = fo.Dataset(f"test-eval-ref-{uuid.uuid4().hex[:8]}")
    samples = []
    for it in items:
        gts = []
        for (lab, b, _), c in zip(it.ground_truth, it.crowd or [False] * len(it.ground_truth)):
            d = fo.Detection(label=lab, bounding_box=list(b))
            if c:
                d["iscrowd"] = True
            gts.append(d)
        preds = [fo.Detection(label=lab, bounding_box=list(b), confidence=s) for lab, b, s in it.predictions]
        samples.append(fo.Sample(filepath=it.filepath, ground_truth=fo.Detections(detections=gts),
                                 predictions=fo.Detections(detections=preds),
                                 metadata=fo.ImageMetadata(width=it.size[1], height=it.size[0])))
    ds.add_samples(samples, progress=False)
    res = ds.evaluate_detections("predictions", gt_field="ground_truth", eval_key="eval", iou=0.5,
                                 compute_mAP=True, classes=NAMES, progress=False)
    return ds, res


def _ours(fo, items, batch=16):
    ds = fo.Dataset(f"test-eval-ours-{uuid.uuid4().hex[:8]}")
    b = EvaluatedBuilder(ds, NAMES, iou=0.5, explain=False)
    for start in range(0, len(items), batch):
        b.add(items[start:start + batch])
    res = b.finish()
    assert b.registered and b.writer.path == "bulk"
    return ds, res, b


def _by_box(ds, field):
    """{(filepath, field, label, box): (stored keys, eval, matched box's key or '', eval_iou)} from the raw
    documents, label ids replaced by the box they name (ids differ between the datasets by nature); ours also
    has TIDE's ``error_type`` on every box (tests/analysis/test_analyze_error_types.py), left out here."""
    docs = list(ds._sample_collection.find({}))
    key_of = {d["_id"]: (s["filepath"], f, d["label"], tuple(d["bounding_box"]))
              for s in docs for f in ("ground_truth", "predictions") for d in s[f]["detections"]}
    by_str = {str(k): v for k, v in key_of.items()}
    keys = lambda d: sorted(k for k in d if k != "error_type")  # noqa: E731
    return {key_of[d["_id"]]: (keys(d), d["eval"], by_str[d["eval_id"]] if d["eval_id"] else "", d.get("eval_iou"))
            for s in docs for d in s[field]["detections"]}


@pytest.fixture(scope="module")
def fo():
    import fiftyone

    return fiftyone


@pytest.fixture(scope="module")
def pair(fo):
    items = _items(70, seed=3)
    ref, ref_res = _reference(fo, items)
    ours, res, builder = _ours(fo, items)
    yield items, ref, ref_res, ours, res, builder
    ref.delete()
    ours.delete()


def test_every_box_and_count_equals_evaluate_detections(pair):
    items, ref, _, ours, _, _ = pair
    assert sum(len(it.predictions) > 100 for it in items) and any(any(it.crowd or []) for it in items)
    for f in ("eval_tp", "eval_fp", "eval_fn"):
        assert ours.values(f) == ref.values(f), f
    assert sum(ref.values("eval_tp")) > 0 and sum(ref.values("eval_fn")) > 0
    for field in ("predictions", "ground_truth"):
        assert _by_box(ours, field) == _by_box(ref, field), field


def test_map_and_curves_equal_fiftyone(pair, fo):
    _, ref, ref_res, ours, res, _ = pair
    assert res.mAP() == pytest.approx(ref_res.mAP(), abs=1e-6) and 0 < ref_res.mAP() < 1
    for c in NAMES[:3]:
        assert res.mAP([c]) == pytest.approx(ref_res.mAP([c]), abs=1e-6)
    assert np.allclose(res.precision, ref_res.precision, atol=1e-9)
    assert np.allclose(res.recall_sweep, ref_res.recall_sweep, atol=1e-9)
    # FiftyOne treats the run as its own: listed, reloaded from the database, views and patches work
    ours.reload()
    assert ours.list_evaluations() == ["eval"]
    loaded = fo.load_dataset(ours.name).load_evaluation_results("eval", cache=False)
    assert loaded.mAP() == pytest.approx(ref_res.mAP(), abs=1e-6)
    assert loaded.report() == ref_res.report()
    assert np.array_equal(loaded.confusion_matrix(), ref_res.confusion_matrix())
    patches = ours.to_evaluation_patches("eval")
    assert patches.count_values("type") == ref.to_evaluation_patches("eval").count_values("type")
    assert len(ours.load_evaluation_view("eval")) == len(ours)
    info = ours.get_evaluation_info("eval").serialize()
    assert info["config"]["method"] == "coco" and info["config"]["compute_mAP"] is True
    ours_only = {"errors", "error_counts"}  # ours: + errors and TIDE's counts per sample
    schema = {k: str(v) for k, v in ours.get_field_schema(flat=True).items() if k not in ours_only}
    assert schema == {k: str(v) for k, v in ref.get_field_schema(flat=True).items()}


def test_map_equals_pycocotools(fo):
    """COCOeval on the same boxes (pixels), without ties (COCOeval orders tied scores differently)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    items = _items(40, seed=5, ties=False)
    ours, res, builder = _ours(fo, items)
    try:
        h, w = SIZE
        images, anns, dets = [], [], []
        for i, it in enumerate(items):
            images.append({"id": i, "width": w, "height": h})
            for (lab, (x, y, bw, bh), _), c in zip(it.ground_truth, it.crowd):
                anns.append({"id": len(anns) + 1, "image_id": i, "category_id": NAMES.index(lab) + 1,
                             "bbox": [x * w, y * h, bw * w, bh * h], "area": bw * w * bh * h, "iscrowd": int(c)})
            dets += [{"image_id": i, "category_id": NAMES.index(lab) + 1, "bbox": [x * w, y * h, bw * w, bh * h],
                      "score": s} for lab, (x, y, bw, bh), s in it.predictions]
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns,
                      "categories": [{"id": i + 1, "name": n} for i, n in enumerate(NAMES)]}
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(dets), "bbox")
        ev.params.catIds = [1, 2, 3]  # classes with ground truth (FiftyOne leaves the others out too)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        assert res.mAP() == pytest.approx(ev.stats[0], abs=1e-3)
        from yolo_tl.analysis.metrics.map_steps import ap_by_size

        sizes = ap_by_size(builder.acc)
        for k, area in ((3, "small"), (4, "medium"), (5, "large")):
            if ev.stats[k] >= 0:
                assert sizes[area]["mAP"] == pytest.approx(ev.stats[k], abs=1e-3), area
        assert sizes["all"]["mAP"] == pytest.approx(res.mAP(), abs=1e-12)
    finally:
        ours.delete()


def test_confusion_matrix_equals_fiftyone_classwise_false(pair, fo):
    items, ref, _, _, _, builder = pair
    view = ref.filter_labels("predictions", fo.ViewField("confidence") >= builder.show_conf, only_matches=False)
    cw = view.evaluate_detections("predictions", gt_field="ground_truth", eval_key="cw", iou=0.5,
                                  classwise=False, classes=NAMES, progress=False)
    # rows: truth (+ "(none)"), columns: predicted (+ "(none)")
    theirs = cw.confusion_matrix(classes=NAMES, include_missing=True)
    mine = builder.confusion
    assert mine[:4, :4].tolist() == theirs[:4, :4].tolist()
    assert mine[4, :4].tolist() == theirs[4, :4].tolist()  # background: predictions that match nothing
    assert mine[:4, 4].tolist() == theirs[:4, 4].tolist()  # missed
    assert mine[:3, :3].sum() - np.trace(mine[:3, :3]) > 0  # the data does confuse classes
    ref.delete_evaluation("cw")


def test_unfamiliar_fiftyone_runs_fall_back_to_evaluate_detections(fo, monkeypatch, caplog):
    """As if FiftyOne stored runs differently: a warning, and FiftyOne's own evaluation (same fields)."""
    import logging

    import yolo_tl.analysis.store.evaluated_samples as build

    items = _items(21, seed=7)
    ref, ref_res = _reference(fo, items)
    monkeypatch.setattr(build, "can_register", lambda *a: False)
    ds = fo.Dataset(f"test-eval-fallback-{uuid.uuid4().hex[:8]}")
    try:
        b = EvaluatedBuilder(ds, NAMES, explain=False)
        b.add(items)
        with caplog.at_level(logging.WARNING, logger="yolo_tl.analysis.store.evaluated_samples"):
            res = b.finish()
        assert b.registered is False and "evaluate_detections instead" in caplog.text
        assert res.mAP() == pytest.approx(ref_res.mAP(), abs=1e-12)
        for field in ("predictions", "ground_truth"):
            assert _by_box(ds, field) == _by_box(ref, field), field
        assert ds.list_evaluations() == ["eval"]
    finally:
        ds.delete()
        ref.delete()


def test_stored_results_are_fiftyone_own_byte_for_byte(pair):
    """The results file streamed from the match store is what FiftyOne's own run wrote: every key,
    every per-match list in the same order (label ids compared by the box they name)."""
    import json

    _, ref, _, ours, _, _ = pair

    def stored(ds):
        docs = list(ds._sample_collection.find({}))
        box = {str(d["_id"]): (s["filepath"], f, d["label"], tuple(d["bounding_box"]))
               for s in docs for f in ("ground_truth", "predictions") for d in s[f]["detections"]}
        ds.reload()
        d = json.loads(ds._doc.evaluations["eval"].results.read())
        for k in ("ytrue_ids", "ypred_ids"):
            d[k] = [box[i] if i is not None else None for i in d[k]]
        return d

    mine, theirs = stored(ours), stored(ref)
    assert list(mine) == list(theirs) and len(mine["ytrue"]) > 1000
    for k in theirs:
        assert mine[k] == theirs[k], k


def test_ultralytics_steps_equal_ap_per_class(fo):
    """explain's lean per-class, per-column AP equals Ultralytics' ap_per_class on the whole arrays."""
    from ultralytics.utils.metrics import ap_per_class

    from yolo_tl.analysis.metrics.evaluation import _bits
    from yolo_tl.analysis.metrics.map_steps import _ul_map, ultralytics_matcher

    items = _items(30, seed=11, ties=False)
    acc = Accumulator(NAMES)
    ul = ultralytics_matcher()
    for it in items:
        match_image(ImageBoxes.from_lists(it.ground_truth, it.predictions, NAMES, it.size, it.crowd), acc,
                    ul_match=ul)
    conf, cls = acc.cols["conf"], acc.cols["cls"]
    target = np.concatenate([np.full(n, c) for c, n in enumerate(acc.gt_per_class)])
    for ul_matching, packed in ((False, acc.cols["tp"]), (True, acc.cols["tp_ul"])):
        tp = np.stack([_bits(packed, r) for r in range(10)], axis=1)
        expected = float(ap_per_class(tp.astype(float), conf, cls, target)[5].mean())
        assert 0 < expected < 1
        assert _ul_map(acc, ul_matching) == pytest.approx(expected, abs=1e-12)
