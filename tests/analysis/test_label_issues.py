"""The label-mistake scorer on generated images: every kind injected is found, with its fix."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.label_issues_compare import simulate
from yolo_tl.analysis.metrics.label_issues import (
    KINDS,
    calibrated,
    find_label_issues,
    iou_matrix,
    ranking_ap,
    recall_at,
    reliability_table,
)

W, H = 640, 480


def _scene(rng: np.random.Generator, n: int = 6):
    """Non-overlapping boxes on a 4x3 grid (class ids 0..2) and a model that sees them (IoU ~0.9)."""
    cells = rng.choice(12, size=n, replace=False)
    boxes, classes = [], []
    for c in cells:
        gx, gy = c % 4, c // 4
        x1, y1 = gx * 160 + rng.uniform(10, 40), gy * 160 + rng.uniform(10, 40)
        boxes.append([x1, y1, x1 + rng.uniform(70, 100), y1 + rng.uniform(70, 100)])
        classes.append(int(rng.integers(0, 3)))
    gt = np.array(boxes)
    pred = gt + rng.uniform(-2, 2, size=gt.shape)
    return gt, np.array(classes), pred, np.array(classes), rng.uniform(0.75, 0.95, size=len(gt))


def _found(issues, kind, **where):
    return [s for s in issues if s.kind == kind and all(getattr(s, k) == v for k, v in where.items())]


@pytest.mark.parametrize("seed", range(5))
def test_every_injected_kind_is_found_with_its_fix(seed):
    rng = np.random.default_rng(seed)
    gt, gtc, pred, predc, conf = _scene(rng)
    clean_box = gt.copy()
    # inject: box 0 dropped, box 1 swapped, box 2 shifted by half its width, a box on background added
    labels = [list(b) for b in gt[1:]]
    classes = list(gtc[1:])
    classes[0] = (classes[0] + 1) % 3  # was box 1
    w = labels[1][2] - labels[1][0]
    labels[1] = [labels[1][0] + 0.45 * w, labels[1][1], labels[1][2] + 0.45 * w, labels[1][3]]  # was box 2
    free = next(c for c in range(12) if not iou_matrix(
        [[c % 4 * 160 + 20, c // 4 * 160 + 20, c % 4 * 160 + 120, c // 4 * 160 + 120]], gt).any())
    labels.append([free % 4 * 160 + 20, free // 4 * 160 + 20, free % 4 * 160 + 120, free // 4 * 160 + 120])
    classes.append(0)
    issues = find_label_issues(np.array(labels), np.array(classes), pred, predc, conf)

    missing = _found(issues, "missing", pred_index=0)
    assert missing and missing[0].fix_class == int(gtc[0])
    np.testing.assert_allclose(missing[0].fix_box, pred[0])
    swapped = _found(issues, "wrong_class", label_index=0)
    assert swapped and swapped[0].fix_class == int(gtc[1]) and swapped[0].pred_index == 1
    np.testing.assert_allclose(swapped[0].fix_box, labels[0])  # the box stays, only its class changes
    shifted = _found(issues, "badly_placed", label_index=1)
    assert shifted and iou_matrix([shifted[0].fix_box], [clean_box[2]])[0, 0] > 0.9
    spurious = _found(issues, "spurious", label_index=len(labels) - 1)
    assert spurious and spurious[0].fix_box is None
    for s in issues:
        assert 0.0 <= s.score <= 1.0 and s.kind in KINDS
    # each injected mistake scores above every suspect on a box that is right
    injected = {id(missing[0]), id(swapped[0]), id(shifted[0]), id(spurious[0])}
    right = [s.score for s in issues if id(s) not in injected and s.kind in ("wrong_class", "spurious")
             and s.label_index not in (0, 1, len(labels) - 1)]
    assert all(r < min(missing[0].score, swapped[0].score, spurious[0].score) for r in right)


def test_an_unlabelled_neighbour_is_a_missing_box_not_a_reason_to_move_a_placed_one():
    """BCCD's pattern: a red cell labelled and predicted in place (IoU ~0.9, conf 0.4), an unlabelled cell
    beside it predicted more confidently that overlaps the label a little. The label stays; the neighbour
    is a missing box. Without the prediction on the label, the same loose one does suggest moving it."""
    label = np.array([[100, 100, 200, 200.0]])
    on_box, beside = [103, 101, 202, 201.0], [170, 110, 270, 210.0]
    assert iou_matrix([on_box], label)[0, 0] > 0.9 and 0.1 < iou_matrix([beside], label)[0, 0] < 0.3
    issues = find_label_issues(label, [1], np.array([on_box, beside]), [1, 1], [0.4, 0.6])
    assert not _found(issues, "badly_placed")
    assert _found(issues, "missing", pred_index=1)
    moved = find_label_issues(label, [1], np.array([beside]), [1], [0.6])
    assert _found(moved, "badly_placed", label_index=0, pred_index=0)


def test_a_clean_image_has_no_likely_suspect():
    rng = np.random.default_rng(7)
    for _ in range(20):
        gt, gtc, pred, predc, conf = _scene(rng)
        issues = find_label_issues(gt, gtc, pred, predc, conf)
        assert all(s.score < 0.5 for s in issues), issues[:1]


def test_an_images_scores_do_not_depend_on_other_images():
    """cleanlab's pooled minimum moves an image's score with the batch; ours is a function of the image."""
    from cleanlab.object_detection.rank import get_label_quality_scores

    gt, gtc = np.array([[10, 10, 110, 110.0]]), np.array([0])
    pred, predc, conf = np.array([[12, 10, 112, 110], [300, 300, 400, 400.0]]), np.array([0, 1]), np.array([.9, .99])

    def cl_pred(p, c, s):
        return [np.c_[p[c == k], s[c == k]].reshape(-1, 5) for k in range(2)]

    image = ({"bboxes": gt, "labels": gtc}, cl_pred(pred, predc, conf))
    other = ({"bboxes": np.array([[0, 0, 10, 10.0]]), "labels": np.array([0])},
             cl_pred(np.array([[5, 0, 15, 10.0]]), np.array([0]), np.array([0.9])))
    alone = get_label_quality_scores([image[0]], [image[1]])[0]
    batch = get_label_quality_scores([image[0], other[0]], [image[1], other[1]])[0]
    assert alone != pytest.approx(batch, rel=1e-3)  # the reference's score of the same image moved
    ours = find_label_issues(gt, gtc, pred, predc, conf)
    assert [s.kind for s in ours][:1] == ["missing"] and ours[0].pred_index == 1
    assert ours == find_label_issues(gt, gtc, pred, predc, conf)


def test_ranking_ap_matches_scikit_learn_when_every_mistake_is_a_candidate():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(0)
    scores = np.round(rng.uniform(size=200), 2)  # with ties
    hits = rng.uniform(size=200) < scores
    assert ranking_ap(scores, hits, int(hits.sum())) == pytest.approx(average_precision_score(hits, scores))
    # a real mistake that no candidate names halves the best possible recall
    assert ranking_ap([0.9], [True], 2) == pytest.approx(0.5)


def test_recall_at_k_splits_ties_evenly():
    assert recall_at([1, 1, 1, 1], [True, False, False, False], 1) == pytest.approx(0.25)
    assert recall_at([0.9, 0.5, 0.1], [True, False, True], 2) == pytest.approx(0.5)


def test_reliability_table_counts_each_bin():
    rows = reliability_table([0.05, 0.2, 0.25, 0.95, 1.0], [False, True, False, True, True])
    by_bin = {r["bin"]: r for r in rows}
    assert by_bin["0.0-0.1"]["n"] == 1 and by_bin["0.1-0.3"]["share_real"] == 0.5
    assert by_bin["0.9-1.0"]["n"] == 2 and by_bin["0.5-0.7"]["n"] == 0


def test_on_a_simulated_detector_each_kind_ranks_at_least_as_well_as_cleanlab():
    """The benchmark's machinery end to end (injection, both scorers, hit matching) on simulated predictions;
    cleanlab's own per-box subtype scores are the reference."""
    from benchmarks import label_issues_compare as cmp

    images = simulate(5)
    ours, _ = cmp.ours(images)
    rows = cmp.table({"ours": ours, **cmp.cleanlab_scores(images, 3)}, images)
    ap = {(r["method"], r["kind"]): r["ap"] for r in rows}
    assert all(r["injected"] > 20 for r in rows)
    for kind in KINDS:
        assert ap[("ours", kind)] >= ap[("cleanlab", kind)], kind


@pytest.mark.parametrize("kind, features, stronger", [
    ("missing", (0.6, 0.1), (0.9, 0.1)),  # a more confident unexplained prediction
    ("missing", (0.8, 0.25), (0.8, 0.0)),  # ... that overlaps the labels less
    ("wrong_class", (0.6, 0.4), (0.9, 0.4)),  # the other class more confident
    ("wrong_class", (0.8, 0.5), (0.8, 0.1)),  # the label's own class less so
    ("badly_placed", (0.6, 0.5), (0.9, 0.5)),  # the own-class prediction more confident
    ("badly_placed", (0.8, 0.7), (0.8, 0.3)),  # ... and overlapping the label less
    ("spurious", (0.3, 0.3), (0.05, 0.3)),  # less support at IoU >= 0.5
    ("spurious", (0.05, 0.5), (0.05, 0.05)),  # and at IoU >= 0.1
])
def test_the_shipped_calibration_rises_with_the_evidence(kind, features, stronger):
    """The score of each kind grows with the evidence for that mistake, whatever the fitted constants (their
    reliability on real data is measured by benchmarks/bench_label_issues.py, RESULTS_label_issues.md)."""
    from yolo_tl.analysis.metrics.label_issues import _logit

    def raw(values):
        conf_like = {"missing": (True, False), "wrong_class": (True, True), "badly_placed": (True, False),
                     "spurious": (True, True)}[kind]
        return [_logit(v) if is_conf else v for v, is_conf in zip(values, conf_like)]

    weak, strong = calibrated(kind, raw(features)), calibrated(kind, raw(stronger))
    assert 0.0 < weak < strong < 1.0


def test_the_benchmarks_injection_is_what_it_says():
    """Every injected kind is present; moved boxes overlap their true box at IoU 0.15-0.6, added ones lie on
    background, swapped ones keep their box; untouched boxes are unchanged."""
    images = simulate(2)  # label_issues_compare.inject runs inside, at rate 0.08
    again = simulate(2)
    assert [img["labels"] for img in images] == [img["labels"] for img in again]  # seeded
    counts = {k: 0 for k in KINDS}
    for img in images:
        counts["missing"] += len(img["dropped"])
        true = {tuple(b[1:]): b[0] for b in img["boxes"]}
        for (cls, *box), tag in zip(img["labels"], img["tags"]):
            if tag is None:
                assert true[tuple(box)] == cls
                continue
            counts[tag] += 1
            best = iou_matrix([box], [b[1:] for b in img["boxes"]]).max()
            if tag == "wrong_class":
                assert tuple(box) in true and true[tuple(box)] != cls
            elif tag == "badly_placed":
                assert 0.15 <= best <= 0.6
            else:
                assert best < 0.05
    assert all(n >= 15 for n in counts.values()), counts
    n_boxes = sum(len(img["boxes"]) for img in images)
    assert abs(counts["spurious"] - round(0.08 * n_boxes)) <= 2  # a few may find no background
