"""TIDE's error types and dAP (analysis/metrics/error_types.py) against tidecv 1.0.1 on the same boxes.

Every case goes through tidecv (in-memory ``Data``) and through ours: every box's type equal, the AP,
every dAP and every class's AP after each oracle fix within 0.1 AP points (in practice identical).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.analysis.tide_reference import assert_same, run_ours, run_tide
from yolo_tl.analysis.metrics import error_types as et
from yolo_tl.analysis.metrics.error_costs import ErrorAccumulator
from yolo_tl.analysis.metrics.error_report import reading, table
from yolo_tl.errors import AnnotationError, YoloTLError

pytest.importorskip("tidecv", reason="tidecv (the reference) is a test dependency: pip install tidecv")

NAMES = ["a", "b", "c"]
A = [0, 0, 100, 100]  # the ground-truth box of most cases


def image(gt=(), gt_cls=(), pred=(), pred_cls=(), conf=(), crowd=None) -> dict:
    im = {"gt": np.array(gt, float).reshape(-1, 4), "gt_cls": np.array(gt_cls, int),
          "pred": np.array(pred, float).reshape(-1, 4), "pred_cls": np.array(pred_cls, int),
          "conf": np.array(conf, float)}
    if crowd is not None:
        im["crowd"] = np.array(crowd, bool)
    return im


def shift(dx: float) -> list[float]:
    return [dx, 0, 100 + dx, 100]  # IoU with A: (100 - dx) / (100 + dx); 50 -> 0.33


# (name, images, expected prediction types per image, expected missed flags per image)
CASES = [
    ("tp", [image([A], [0], [A], [0], [0.9])], [["tp"]], [[False]]),
    ("loc", [image([A], [0], [shift(50)], [0], [0.9])], [["loc"]], [[False]]),
    ("cls", [image([A], [0], [A], [1], [0.9])], [["cls"]], [[False]]),
    ("dupe", [image([A], [0], [A, shift(2)], [0, 0], [0.9, 0.8])], [["tp", "dupe"]], [[False]]),
    ("bkg", [image([A], [0], [[300, 300, 400, 400]], [0], [0.9])], [["bkg"]], [[True]]),
    ("both", [image([A], [0], [shift(50)], [1], [0.9])], [["both"]], [[True]]),
    ("two loc errors on one GT", [image([A], [0], [shift(50), shift(40)], [0, 0], [0.8, 0.9])],
     [["loc", "loc"]], [[False]]),
    ("cls and loc errors on one GT", [image([A], [0], [A, shift(50)], [1, 0], [0.9, 0.8])],
     [["cls", "loc"]], [[False]]),
    ("loc error on an already matched GT", [image([A], [0], [A, shift(50)], [0, 0], [0.9, 0.8])],
     [["tp", "loc"]], [[False]]),
    ("IoU exactly 0.5 after a match is loc, not dupe",
     [image([A], [0], [A, [0, 0, 50, 100]], [0, 0], [0.9, 0.8])], [["tp", "loc"]], [[False]]),
    ("IoU exactly 0.5 alone matches", [image([A], [0], [[0, 0, 50, 100]], [0], [0.9])], [["tp"]], [[False]]),
    ("IoU exactly 0.1 is loc", [image([A], [0], [[0, 0, 10, 100]], [0], [0.9])], [["loc"]], [[False]]),
    ("IoU 0.05 is bkg", [image([A], [0], [[0, 0, 5, 100]], [0], [0.9])], [["bkg"]], [[True]]),
    ("crowd of the same class ignores, of another does not",
     [image([[0, 0, 200, 200], [300, 300, 400, 400]], [0, 0],
            [[10, 10, 60, 60], [10, 10, 60, 60], [300, 300, 400, 400]], [0, 1, 0], [0.5, 0.6, 0.7],
            crowd=[True, False])], [["bkg", "bkg", "tp"]], [[False, False]]),
    ("only a crowd", [image([[0, 0, 200, 200]], [0], [[10, 10, 60, 60]], [0], [0.5], crowd=[True]),
                      image([A], [1], [A], [1], [0.4])], [["bkg"], ["tp"]], [[False], [False]]),
    ("a loc error inside a crowd is fixed too",
     [image([[0, 0, 400, 400], A], [0, 0], [shift(50)], [0], [0.5], crowd=[True, False]),
      image([A], [1], [A], [1], [0.4])], [["loc"], ["tp"]], [[False, False], [False]]),
    ("empty images", [image([], [], [A], [0], [0.9]), image([A], [0]), image(), image([A], [1], [A], [1], [0.4])],
     [["bkg"], [], [], ["tp"]], [[], [True], [], [False]]),
    ("a class with predictions but no GT", [image([A], [0], [A, [300, 300, 400, 400]], [0, 2], [0.9, 0.95])],
     [["tp", "bkg"]], [[False]]),
    ("tied scores", [image([A, [200, 0, 300, 100]], [0, 0], [A, shift(50), [200, 0, 300, 100], shift(150)],
                           [0, 0, 0, 1], [0.5, 0.5, 0.5, 0.5])], [["tp", "loc", "tp", "both"]], [[False, False]]),
]


@pytest.mark.parametrize("name,images,types,missed", CASES, ids=[c[0] for c in CASES])
def test_generated_cases_match_tidecv(name, images, types, missed):
    ours, res = run_ours(images, NAMES)
    tide = run_tide(images)
    assert tide.pred_types == types and tide.missed == missed  # the case is what its name says
    assert_same(ours, tide)


def test_oracle_fixes_the_most_confident_error_on_a_gt():
    """Two loc errors on one GT: the 0.9 one is fixed, the 0.8 one removed; a cls at 0.95 beats both."""
    img = image([A], [0], [shift(50), shift(40), A], [0, 0, 1], [0.8, 0.9, 0.95])
    typed = et.type_errors(img["gt"], img["gt_cls"], img["pred"], img["pred_cls"], img["conf"])
    assert [et.TYPE_NAMES[t] for t in typed.pred_type] == ["loc", "loc", "cls"]
    assert typed.pred_fix.tolist() == [False, False, True]
    assert typed.gt_type.tolist() == [et.CLS] and typed.gt_pred.tolist() == [2]
    assert typed.pred_fix_cls.tolist() == [0, 0, 0] and typed.pred_gt.tolist() == [0, 0, 0]
    assert_same(run_ours([img], NAMES)[0], run_tide([img]))


def test_100_predictions_per_image_across_classes():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 500, (150, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(20, 80, (150, 2))], axis=1)
    img = image(boxes[:40], rng.integers(0, 3, 40), boxes + rng.normal(0, 5, boxes.shape), rng.integers(0, 3, 150),
                rng.random(150))
    typed = et.type_errors(img["gt"], img["gt_cls"], img["pred"], img["pred_cls"], img["conf"])
    capped = typed.pred_type == et.CAPPED
    assert capped.sum() == 50 and img["conf"][capped].max() < img["conf"][~capped].min()
    assert_same(run_ours([img], NAMES)[0], run_tide([img]))


def test_a_class_without_gt_counts_as_ap_0():
    img = CASES[17][1]
    ours, res = run_ours(img, NAMES)
    assert res.per_class["c"].ap == 0.0 and res.per_class["b"].ap is None
    assert res.overall.ap == pytest.approx((res.per_class["a"].ap + 0.0) / 2)
    assert_same(ours, run_tide(img))


grid_box = st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(1, 10), st.integers(1, 10)).map(
    lambda t: [t[0] * 10, t[1] * 10, (t[0] + t[2]) * 10, (t[1] + t[3]) * 10])  # a grid: exact IoUs of 0.5 and 0.1


@st.composite
def grid_image(draw) -> dict:
    gt = draw(st.lists(st.tuples(grid_box, st.integers(0, 2), st.booleans().map(lambda b: b and draw(
        st.booleans()))), max_size=5))
    near = [b for b, _, _ in gt] or [A]
    pred_box = st.one_of(grid_box, st.tuples(st.sampled_from(near), st.integers(-4, 4), st.integers(-4, 4)).map(
        lambda t: [t[0][0] + 10 * t[1], t[0][1] + 10 * t[2], t[0][2] + 10 * t[1], t[0][3]]))
    preds = draw(st.lists(st.tuples(pred_box, st.integers(0, 2), st.sampled_from([0.1, 0.3, 0.5, 0.7, 0.9])),
                          max_size=8))
    return image([b for b, _, _ in gt], [c for _, c, _ in gt], [b for b, _, _ in preds], [c for _, c, _ in preds],
                 [s for _, _, s in preds], crowd=[cr for _, _, cr in gt])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(grid_image(), min_size=1, max_size=4))
def test_property_same_as_tidecv_on_grid_boxes(images):
    images = [*images, image([A], [0], [A], [0], [0.2])]  # at least one class: tidecv divides by their number
    assert_same(run_ours(images, NAMES)[0], run_tide(images), tol=1e-9)


def sized_images(rng: np.random.Generator, size: str, n: int) -> list[dict]:
    """Images whose every box (GT, shifted, duplicated, swapped, background) lies in one COCO size."""
    lo, hi = {"small": (10, 25), "medium": (45, 80), "large": (120, 200)}[size]
    out = []
    for _ in range(n):
        g = int(rng.integers(0, 6))
        xy, wh = rng.uniform(0, 400, (g, 2)), rng.uniform(lo, hi, (g, 2))
        gt, gc = np.concatenate([xy, xy + wh], 1), rng.integers(0, 3, g)
        pred, pc = [], []
        for k in range(g):
            for _ in range(int(rng.integers(0, 3))):
                d = rng.normal(0, wh[k].mean() * 0.3, 2)
                pred.append(np.r_[gt[k, :2] + d, gt[k, 2:] + d])
                pc.append(gc[k] if rng.random() < 0.8 else int(rng.integers(0, 3)))
        for _ in range(int(rng.integers(0, 2))):
            b = rng.uniform(0, 400, 2)
            pred.append(np.r_[b, b + rng.uniform(lo, hi, 2)])
            pc.append(int(rng.integers(0, 3)))
        out.append(image(gt, gc, np.array(pred).reshape(-1, 4), pc, rng.random(len(pc)),
                         crowd=rng.random(g) < 0.1))
    return out


def test_per_size_equals_tidecv_on_the_images_of_that_size():
    """TIDE never shipped sizes: on images whose boxes all share one size, our slice is TIDE on them."""
    rng = np.random.default_rng(7)
    by_size = {s: sized_images(rng, s, 25) for s in et.SIZES}
    images = [im for trio in zip(*by_size.values()) for im in trio]
    _, res = run_ours(images, NAMES)
    for s in et.SIZES:
        tide = run_tide(by_size[s])
        sliced = res.per_size[s]
        assert sliced.ap == pytest.approx(tide.ap, abs=1e-9)
        for k, v in tide.dap.items():
            assert sliced.dap[k] == pytest.approx(v, abs=1e-9), (s, k)


def perturbed_fruits(fruits_json, seed: int) -> tuple[list[dict], list[str]]:
    """fruits' real GT boxes, and "predictions" made from them: shifts, class swaps, duplicates, drops,
    background boxes, seeded."""
    data = json.loads(fruits_json.read_text())
    cats = sorted(c["id"] for c in data["categories"])
    names = [next(c["name"] for c in data["categories"] if c["id"] == i) for i in cats]
    rng = np.random.default_rng(seed)
    images = []
    for img in data["images"]:
        anns = [a for a in data["annotations"] if a["image_id"] == img["id"]]
        gt = np.array([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)], float).reshape(-1, 4)
        gc = np.array([cats.index(a["category_id"]) for a in anns], int)
        pred, pc = [], []
        for b, c in zip(gt, gc):
            if rng.random() < 0.1:
                continue  # dropped: missed
            w, h = b[2] - b[0], b[3] - b[1]
            for _ in range(2 if rng.random() < 0.15 else 1):  # duplicates
                d = rng.normal(0, 0.15, 2) * [w, h] * (3 if rng.random() < 0.2 else 1)
                pred.append(b + np.r_[d, d] + rng.normal(0, 0.03 * w, 4))
                pc.append(int(rng.integers(0, len(names))) if rng.random() < 0.1 else int(c))
        for _ in range(int(rng.integers(0, 4))):  # background
            xy = rng.uniform(0, [img["width"] - 60, img["height"] - 60])
            pred.append(np.r_[xy, xy + rng.uniform(20, 150, 2)])
            pc.append(int(rng.integers(0, len(names))))
        images.append(image(gt, gc, np.array(pred).reshape(-1, 4), pc, rng.random(len(pc))))
    return images, names


@pytest.mark.parametrize("seed", range(5))
def test_fruits_perturbed_same_as_tidecv(fruits_json, seed):
    images, names = perturbed_fruits(fruits_json, seed)
    assert sum(len(im["gt_cls"]) for im in images) == 165  # SOURCE.md
    ours, res = run_ours(images, names)
    tide = run_tide(images)
    assert assert_same(ours, tide) <= 0.1
    assert {t for types in tide.pred_types for t in types} >= {"tp", "loc", "cls", "dupe", "bkg"}


def test_reading_and_table_are_built_from_the_numbers():
    images = [image([A], [0], [shift(50)], [0], [0.9]), image([A], [0], [A], [0], [0.8]),
              image([A], [1], [A], [1], [0.7]), image([A], [1], [[300, 300, 400, 400]], [1], [0.6])]
    tide = run_tide(images)
    _, res = run_ours(images, NAMES)
    worst = max(et.ERROR_TYPES, key=lambda t: tide.dap[t])
    assert worst == "loc"
    text = reading(res)
    assert text.startswith(f"localisation errors cost {tide.dap['loc']:.1f} AP50") and text.endswith("error_loc")
    lines = table(res).splitlines()
    assert max(len(line) for line in lines) <= 80
    row = lines[1].split()
    assert row[0] == "all" and float(row[1]) == round(tide.ap, 1) and float(row[3]) == round(tide.dap["loc"], 1)
    perfect = run_ours([image([A], [0], [A], [0], [0.9])], NAMES)[1]
    assert reading(perfect) == "no error type costs 0.1 AP50 or more (AP50 100.0)"


def test_relative_boxes_adapter_types_the_same_boxes():
    from yolo_tl.analysis.metrics.evaluation import ImageBoxes

    img = ImageBoxes(np.array([[0.0, 0.0, 0.2, 0.2]]), np.array([0]), np.array([[0.1, 0.0, 0.2, 0.2]]),
                     np.array([0]), np.array([0.9]), size=(400, 400))
    typed = et.type_image_boxes(img)
    assert typed.pred_type.tolist() == [et.LOC] and typed.gt_size.tolist() == [1]  # 80 x 80 px: medium; IoU 1/3
    assert et.field_values(typed.pred_type) == ["loc"] and typed.counts()["loc"] == 1


@pytest.mark.parametrize("kwargs,field", [({"gt_xyxy": [[0, 0, 1]]}, "gt_xyxy"), ({"pred_cls": [0, 1]}, "pred_cls")])
def test_bad_arrays_are_one_line_errors(kwargs, field):
    args = {"gt_xyxy": [A], "gt_cls": [0], "pred_xyxy": [A], "pred_cls": [0], "pred_conf": [0.5], **kwargs}
    with pytest.raises(AnnotationError) as err:
        et.type_errors(**args)
    assert err.value.field == field and "\n" not in str(err.value)


def test_class_outside_the_names_is_refused():
    acc = ErrorAccumulator(["a"])
    with pytest.raises(YoloTLError, match="pred_cls"):
        acc.add(et.type_errors([A], [0], [A], [3], [0.5]))


def test_memory_is_a_few_bytes_per_prediction():
    acc = ErrorAccumulator(NAMES)
    rng = np.random.default_rng(0)
    for im in sized_images(rng, "medium", 200):
        acc.add(et.type_errors(im["gt"], im["gt_cls"], im["pred"], im["pred_cls"], im["conf"]))
    n = len(acc.cols["conf"])
    per_box = sum(acc.cols[k].nbytes for k in ("conf", "cls", "fix_cls", "type", "flags", "size")) / n
    fixed = acc.num_gt.nbytes + acc.missed.nbytes + acc.unmatched.nbytes + acc.type_counts.nbytes
    assert per_box == 19 and fixed == (3 * 3 * 3 + 3 * 9 * 3) * 8  # no per-image or per-GT array


@pytest.mark.slow
def test_benchmark_runs_and_agrees_with_tidecv(tmp_path):
    """benchmarks/bench_error_types.py end to end on 12 images: its table rows, and both sides' dAP equal."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    out = tmp_path / "RESULTS_error_types.md"
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_error_types", "--images", "12", "--repeats", "1",
                           "--out", str(out)], cwd=repo, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    text = out.read_text()
    assert "| seconds: type every box + AP + 8 oracle runs |" in text
    assert "| largest difference in AP50 or any dAP (0-100) |" in text and "**pass** |\n\nyolo-tl's" in text
    runs = json.loads(out.with_suffix(".json").read_text())
    ours, tide = runs["ours"][0], runs["tide"][0]
    assert ours["dap"] == pytest.approx(tide["dap"], abs=1e-9) and ours["ap"] == pytest.approx(tide["ap"], abs=1e-9)
