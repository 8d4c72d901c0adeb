"""TIDE's error types inside `analyze`: every stored box's ``error_type`` against tidecv 1.0.1 typing the
same stored GT and predictions, the per-sample counts, the ``error_*`` views and the JSON's dAP.

The reference is tidecv itself (tests/analysis/tide_reference.py), fed the boxes read back from FiftyOne's
database, so nothing here compares our output with itself.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.analysis.tide_reference import assert_same, run_ours, run_tide

pytestmark = pytest.mark.slow

TYPES = ("loc", "cls", "dupe", "bkg", "both", "missed")


def _stored(name: str, names: list[str]) -> tuple[list[dict], list[dict]]:
    """Every sample's boxes as stored: tidecv input (xyxy pixels, by the metadata's size) and the
    stored ``error_type`` / confidence / id of each box, in the stored order."""
    import fiftyone as fo

    ds = fo.load_dataset(name)
    index = {n: i for i, n in enumerate(names)}
    images, stored = [], []
    for s in ds.select_fields(["ground_truth", "predictions", "metadata", "error_counts"]).iter_samples():
        scale = np.array([s.metadata.width, s.metadata.height] * 2, dtype=np.float64)

        def boxes(dets: list, scale: np.ndarray = scale) -> np.ndarray:
            b = np.array([d.bounding_box for d in dets], dtype=np.float64).reshape(-1, 4) * scale
            return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)

        gts = s.ground_truth.detections if s.ground_truth else []
        preds = s.predictions.detections if s.predictions else []
        images.append({"gt": boxes(gts), "gt_cls": np.array([index[d.label] for d in gts], np.int64),
                       "pred": boxes(preds), "pred_cls": np.array([index[d.label] for d in preds], np.int64),
                       "conf": np.array([d.confidence for d in preds], np.float64)})
        stored.append({"id": s.id, "counts": s.error_counts,
                       "gt": [(d.id, d["error_type"]) for d in gts],
                       "pred": [(d.id, d["error_type"], d.confidence) for d in preds]})
    return images, stored


@pytest.fixture(scope="module")
def stored_bccd(bccd_analysis):
    names = [c.name for c in bccd_analysis.classes]
    images, stored = _stored(bccd_analysis.name, names)
    return bccd_analysis, names, images, stored


def test_every_stored_box_is_typed_as_tidecv_types_it(stored_bccd):
    rep, names, images, stored = stored_bccd
    tide = run_tide(images)
    n_typed = 0
    for i, s in enumerate(stored):
        for (_, mine, _), ref in zip(s["pred"], tide.pred_types[i]):
            assert mine == (None if ref in ("tp", "capped") else ref), (i, mine, ref)
            n_typed += mine is not None
        for k, (_, mine) in enumerate(s["gt"]):
            assert (mine == "missed") == tide.missed[i][k], (i, k, mine)
            if mine in ("loc", "cls"):  # a GT that such an error points at: tidecv typed one on this image
                assert mine in tide.pred_types[i]
    assert n_typed > 100  # a 2-epoch model makes plenty of errors: the comparison covers many boxes
    kinds = {t for s in stored for _, t, _ in s["pred"]}
    assert {"loc", "bkg"} <= kinds, kinds


def test_json_dap_equals_tidecv_and_error_costs_on_the_stored_boxes(stored_bccd):
    rep, names, images, _ = stored_bccd
    ours, res = run_ours(images, names)
    worst = assert_same(ours, run_tide(images))  # error_costs on these boxes == tidecv, within 0.1 AP
    assert worst <= 0.1
    got = {k: v for k, v in rep.error_types.items() if k not in ("reading", "views")}
    assert got == res.to_dict()  # the report's JSON is error_costs on exactly the stored boxes
    assert rep.to_dict()["error_types"]["overall"]["dap"].keys() == {*TYPES, "false_pos", "false_neg"}
    assert rep.error_types["views"] == {t: f"error_{t}" for t in TYPES}
    assert rep.error_types["reading"].endswith(tuple(f"open view error_{t}" for t in TYPES)) or \
        rep.error_types["reading"].startswith("no error type")
    assert "error_types" in rep.seconds and rep.seconds["error_types"] >= 0


def test_counts_per_sample_add_up(stored_bccd):
    rep, _, _, stored = stored_bccd
    total = dict.fromkeys(TYPES, 0)
    for s in stored:
        preds = [t for _, t, _ in s["pred"]]
        gts = [t for _, t in s["gt"]]
        want = {t: preds.count(t) for t in TYPES if t != "missed"} | {"missed": gts.count("missed")}
        assert s["counts"] == want, s["id"]
        for t in TYPES:
            total[t] += want[t]
    assert rep.error_types["overall"]["counts"] == total


def test_error_views_hold_exactly_their_boxes_above_show_conf(stored_bccd):
    """The saved views at --show-conf, and the same views built at 0 (a 2-epoch model has few boxes >= 0.25)."""
    import fiftyone as fo

    from yolo_tl.analysis.app.views import error_view

    rep, _, _, stored = stored_bccd
    ds = fo.load_dataset(rep.name)
    shown_preds = 0
    for show in (rep.options.show_conf, 0.0):
        for t in TYPES:
            want_pred = {d for s in stored for d, e, c in s["pred"] if e == t and c >= show}
            want_gt = {d for s in stored for d, e in s["gt"] if e == t}
            want_samples = {s["id"] for s in stored
                            if any(d in want_pred for d, _, _ in s["pred"]) or any(d in want_gt for d, _ in s["gt"])}
            view = ds.load_saved_view(f"error_{t}") if show else error_view(ds, t, show)
            assert set(view.values("id")) == want_samples, t
            assert set(view.values("predictions.detections.id", unwind=True)) == want_pred, t
            assert set(view.values("ground_truth.detections.id", unwind=True)) == want_gt, t
            if show:
                assert rep.views.counts[f"error_{t}"] == len(want_samples)
            else:
                shown_preds += len(want_pred)
    assert rep.views.counts["error_missed"] > 0 and shown_preds > 100


def test_error_types_png_beside_the_confusion_matrix(bccd_analysis):
    from pathlib import Path

    from PIL import Image

    png = Path(bccd_analysis.plots["error_types"])
    assert png.parent == Path(bccd_analysis.plots["confusion_matrix"]).parent
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size == (1200, 450)
        px = np.asarray(im.convert("RGB")).reshape(-1, 3)
    assert (np.abs(px - [0xD5, 0x5E, 0x00]).sum(axis=1) < 10).sum() > 50  # the bkg bars, in their colour
