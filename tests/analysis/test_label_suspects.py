"""Label suspects stored by analyze: the ``label_issues`` field, the ``suspect`` tag, the ``label_suspects``
view, the App colours, the report section and the terminal table.

Two sources of truth: injected mistakes on generated data (tests/helpers/suspects_data.py: each kind
injected once, so each must be found with the fix that undoes it), and, on the BCCD analysis, the label
files read from disk with image sizes from Pillow, run through ``find_label_issues`` directly.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from tests.helpers.suspects_data import IMAGES, INJECTED, NAMES, stored_analysis, write_injected_dataset
from yolo_tl.analysis.metrics.label_issues import FIX_FOR_KIND, best_per_box, find_label_issues
from yolo_tl.analysis.store.label_suspects import MIN_STORED

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def injected(tmp_path):
    ds = stored_analysis(write_injected_dataset(tmp_path / "src"))
    yield ds
    ds.delete()


@pytest.mark.slow
def test_every_injected_kind_is_found_with_its_evidence(injected):
    from yolo_tl.analysis.app.views import OUTCOME_COLORS

    ds = injected
    for sample in ds:
        image = Path(sample.filepath).name
        (det,) = sample.label_issues.detections  # the one mistake, nothing else
        (w, h), clean, _ = IMAGES[image]
        assert det.kind == INJECTED[image] and det.fix == FIX_FOR_KIND[det.kind]
        gt_ids = [d.id for d in sample.ground_truth.detections]
        pred = {d.id: d for d in sample.predictions.detections}
        if det.kind == "missing":  # the unlabelled dog, evidenced by its prediction
            assert det.gt_id is None and det.label_index is None
            assert pred[det.pred_id].bounding_box == pytest.approx(det.bounding_box)
            assert det.label == "dog"
        else:
            assert det.gt_id == gt_ids[det.label_index]
        if det.kind == "wrong_class":
            assert det.label_index == 1 and det.label == "dog" and pred[det.pred_id].label == "dog"
        if det.kind == "badly_placed":  # moved onto the clean box
            c, x1, y1, x2, y2 = clean[0]
            assert det.bounding_box == pytest.approx([x1 / w, y1 / h, (x2 - x1) / w, (y2 - y1) / h])
        if det.kind == "spurious":
            assert det.label_index == 1 and det.pred_id is None
        assert sample.suspect_score == det.score and "suspect" in sample.tags
    view = ds.load_saved_view("label_suspects")
    scores = view.values("suspect_score")
    assert len(view) == 4 and scores == sorted(scores, reverse=True)
    # the labels and the suggestions over them; the predictions (the suggestions' evidence) stay elsewhere
    shown = set(view.get_field_schema())
    assert {"ground_truth", "label_issues"} <= shown and "predictions" not in shown
    # a suggestion drawn on its own label box (wrong class, spurious) replaces it there; others keep theirs
    for sample in view:
        (det,) = sample.label_issues.detections
        full = ds[sample.id].ground_truth.detections
        kept = [d.id for d in sample.ground_truth.detections]
        assert kept == [d.id for d in full if not (det.kind in ("wrong_class", "spurious") and d.id == det.gt_id)]
        assert len(kept) == len(full) - (det.kind in ("wrong_class", "spurious")), det.kind
    entry = next(f for f in ds.app_config.color_scheme.fields if f["path"] == "label_issues")
    colours = {v["color"] for v in entry["valueColors"]}
    assert len(colours) == 4 and not colours & set(OUTCOME_COLORS.values())
    # the App colours by an attribute only where the schema declares it (FiftyOne's own schema here)
    import fiftyone as fo

    assert isinstance(ds.get_field("label_issues.detections.kind"), fo.StringField)
    # and the App is opened with a scheme per view: each keeps the suggestions' entry, as stored
    from yolo_tl.analysis.app.views import scheme_for

    for view in ("label_suspects", "worst_samples", "error_loc"):
        opened = {f["path"]: f for f in scheme_for(ds, view).fields}
        assert opened["label_issues"] == entry, view


@pytest.mark.slow
def test_train_split_says_its_suspects_need_folds(injected):
    from yolo_tl.analysis.analyze import _find_suspects

    job = SimpleNamespace(names=NAMES, opts=SimpleNamespace(show_conf=0.25, split="val", folds=None), overlap=1.0)
    views: dict = {}
    summary = _find_suspects(injected, job, views, lambda *a: None)
    assert "--folds K" in summary["note"] and "not built yet" not in summary["note"]
    assert views == {"label_suspects": 4}
    assert summary["counts"] == {k: 1 for k in INJECTED.values()}
    job.overlap = 0.0
    assert "note" not in _find_suspects(injected, job, {}, lambda *a: None)
    job.overlap, job.opts.folds = 1.0, 2  # out-of-fold predictions: nothing to warn about
    assert "note" not in _find_suspects(injected, job, {}, lambda *a: None)


@pytest.mark.slow
def test_terminal_table_fits_80_columns(injected):
    from yolo_tl.analysis.analyze import _find_suspects
    from yolo_tl.cli._common import console
    from yolo_tl.cli._suspects import render_suspects

    job = SimpleNamespace(names=NAMES, opts=SimpleNamespace(show_conf=0.25, split="train", folds=None), overlap=1.0)
    summary = _find_suspects(injected, job, {}, lambda *a: None)
    summary["top"][0]["image"] = "/data/" + "x" * 120 + ".jpg"  # long names are cut, not wrapped
    with console.capture() as cap:
        render_suspects(summary, injected.name)
    text = cap.get()
    table = text.split("Suggestions:")[0]
    assert all(len(line) <= 80 for line in table.splitlines())
    for kind in INJECTED.values():
        assert kind in table
    assert "add dog" in table and "cat -> dog" in table and "--folds" in text


def _pixels(cx, cy, w, h, width, height):
    return ((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height)


def test_bccd_field_tag_and_view_hold_what_find_label_issues_says(bccd_analysis):
    import fiftyone as fo

    from yolo_tl.dataset.formats.yolo import label_path_for, read_yolo_labels

    rep = bccd_analysis
    ds = fo.load_dataset(rep.name)
    names = [c.name for c in rep.classes]
    counts = dict.fromkeys(INJECTED.values(), 0)
    with_issues = set()
    for sample in ds.select_fields(["ground_truth", "predictions", "label_issues", "suspect_score"]):
        with Image.open(sample.filepath) as im:
            width, height = im.size
        gt = read_yolo_labels(label_path_for(Path(sample.filepath)), nc=len(names))
        preds = sample.predictions.detections if sample.predictions else []
        pboxes = [_pixels(x + w / 2, y + h / 2, w, h, width, height) for x, y, w, h in
                  (d.bounding_box for d in preds)]
        want = best_per_box(find_label_issues([_pixels(*b[1:], width, height) for b in gt], [b[0] for b in gt],
                                              pboxes, [names.index(d.label) for d in preds],
                                              [d.confidence for d in preds], min_score=MIN_STORED))
        got = sample.label_issues.detections if sample.label_issues else []
        assert [(d.kind, d.score, d.label_index) for d in got] == \
               [(s.kind, round(s.score, 4), s.label_index) for s in want]
        gt_ids = [d.id for d in sample.ground_truth.detections]
        pred_ids = [d.id for d in preds]
        for d, s in zip(got, want):
            assert d.gt_id == (None if s.label_index is None else gt_ids[s.label_index])
            assert d.pred_id == (None if s.pred_index is None else pred_ids[s.pred_index])
            counts[s.kind] += 1
        if want:
            with_issues.add(sample.id)
            assert sample.suspect_score == round(want[0].score, 4)
    assert set(ds.match_tags("suspect").values("id")) == with_issues
    view = ds.load_saved_view("label_suspects")
    assert set(view.values("id")) == with_issues and rep.views.counts["label_suspects"] == len(with_issues)
    scores = view.values("suspect_score")
    assert scores == sorted(scores, reverse=True)
    assert rep.label_issues["counts"] == counts and rep.label_issues["samples"] == len(with_issues)
    assert "note" not in rep.label_issues  # val is not the training split of the BCCD data
    top = [t["score"] for t in rep.label_issues["top"]]
    assert top == sorted(top, reverse=True)[:len(top)] and (not top or top[0] == max(scores))
