"""Injected label mistakes and the three scorers that look for them (helpers of bench_label_issues).

Injection (seeded): each box is dropped, given another class, or shifted / scaled (IoU with the true
box between 0.15 and 0.6) with the given rates, at most one change per box; then boxes of the
dataset's own sizes are added on background (IoU under 0.05 with every true box). What was injected
is recorded per image: ``tags[i]`` names the kind of label box ``i`` (or None), ``dropped`` holds
the removed boxes.

Scorers, all on the same predictions: ours (``yolo_tl.analysis.metrics.label_issues``), cleanlab's
ObjectLab per-box subtype scores (overlooked -> missing, swap -> wrong class, badloc -> badly placed;
it has no spurious score, so its image score ``1 - get_label_quality_scores`` ranks every label box
for that kind, and is also reported for every kind as "cleanlab image score"), and FiftyOne Brain's
``compute_mistakenness`` (``possible_missing`` predictions ranked by confidence, ``mistakenness``
and ``mistakenness_loc`` per label box, ``possible_spurious`` as a flag).
"""

from __future__ import annotations

from typing import Any

import numpy as np

KINDS = ("missing", "wrong_class", "badly_placed", "spurious")
Box = tuple[float, float, float, float]


def _iou(a, b) -> float:
    from yolo_tl.analysis.metrics.label_issues import iou_matrix

    return float(iou_matrix([a], [b])[0, 0])


def _moved(rng: np.random.Generator, box: Box, width: int, height: int) -> Box | None:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    for _ in range(20):
        if rng.random() < 0.5:  # shift along one axis (mostly) by 30-55 % of the box
            along, across = rng.uniform(0.3, 0.55), rng.uniform(0.0, 0.25)
            if rng.random() < 0.5:
                along, across = across, along
            dx = rng.choice([-1, 1]) * along * w
            dy = rng.choice([-1, 1]) * across * h
            new = (x1 + dx, y1 + dy, x2 + dx, y2 + dy)
        else:  # scale about the centre
            f = rng.uniform(1.5, 1.9) if rng.random() < 0.5 else rng.uniform(0.5, 0.65)
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            new = (cx - f * w / 2, cy - f * h / 2, cx + f * w / 2, cy + f * h / 2)
        new = (max(new[0], 0.0), max(new[1], 0.0), min(new[2], width), min(new[3], height))
        if new[2] - new[0] > 2 and new[3] - new[1] > 2 and 0.15 <= _iou(new, box) <= 0.6:
            return new
    return None


def inject(images: list[dict], nc: int, *, seed: int, rate: float) -> None:
    """Add ``labels``, ``tags``, ``truth`` and ``dropped`` to each image dict (which holds its true ``boxes``);
    ``truth[i]`` is the true box that label i was made from (None for a box added on background)."""
    rng = np.random.default_rng(seed)
    sizes = [(b[3] - b[1], b[4] - b[2]) for img in images for b in img["boxes"]]
    for img in images:
        labels, tags, truth, dropped = [], [], [], []
        for cls, *box in img["boxes"]:
            truth.append((cls, *box))  # popped again when the box is dropped
            u = rng.random()
            if u < rate:
                dropped.append(truth.pop())
                continue
            if u < 2 * rate and nc > 1:
                other = int(rng.choice([k for k in range(nc) if k != cls]))
                labels.append((other, *box))
                tags.append("wrong_class")
                continue
            if u < 3 * rate:
                new = _moved(rng, tuple(box), img["width"], img["height"])
                if new is not None:
                    labels.append((cls, *new))
                    tags.append("badly_placed")
                    continue
            labels.append((cls, *box))
            tags.append(None)
        img["labels"], img["tags"], img["truth"], img["dropped"] = labels, tags, truth, dropped
    for _ in range(int(round(rate * len(sizes)))):
        img = images[int(rng.integers(len(images)))]
        for _ in range(100):
            w, h = sizes[int(rng.integers(len(sizes)))]
            if w >= img["width"] or h >= img["height"]:
                continue
            x1, y1 = rng.uniform(0, img["width"] - w), rng.uniform(0, img["height"] - h)
            box = (x1, y1, x1 + w, y1 + h)
            if all(_iou(box, b[1:]) < 0.05 for b in img["boxes"]):
                img["labels"].append((int(rng.integers(nc)), *box))
                img["tags"].append("spurious")
                img["truth"].append(None)
                break


def simulate(seed: int, n_images: int = 60, width: int = 640, height: int = 480) -> list[dict]:
    """Images with injected mistakes and a simulated detector: 90 % of the true boxes found (4 px jitter,
    7 % with a random class), confidences ~ Beta(5, 1.5), about one false positive per image."""
    rng = np.random.default_rng(seed)
    images = []
    for n in range(n_images):
        boxes = []
        for c in rng.choice(12, size=8, replace=False):
            x1, y1 = c % 4 * 160 + rng.uniform(5, 40), c // 4 * 160 + rng.uniform(5, 40)
            boxes.append((int(rng.integers(3)), x1, y1, x1 + rng.uniform(60, 110), y1 + rng.uniform(60, 110)))
        images.append({"path": f"{n}.jpg", "width": width, "height": height, "boxes": boxes})
    inject(images, 3, seed=seed, rate=0.08)
    for img in images:
        preds = []
        for c, *b in img["boxes"]:
            if rng.random() < 0.9:
                conf = float(np.clip(rng.beta(5, 1.5), 0.05, 0.999))
                cls = c if rng.random() < 0.93 else int(rng.integers(3))
                preds.append((cls, *(np.array(b) + rng.normal(0, 4, 4)).tolist(), conf))
        for _ in range(rng.poisson(1.0)):
            x1, y1 = rng.uniform(0, width - 80), rng.uniform(0, height - 80)
            preds.append((int(rng.integers(3)), x1, y1, x1 + 60, y1 + 60, float(rng.uniform(0.05, 0.5))))
        img["preds"] = preds
    return images


def _arrays(img: dict) -> tuple:
    lab = np.array([b[1:] for b in img["labels"]], dtype=float).reshape(-1, 4)
    labc = np.array([b[0] for b in img["labels"]], dtype=int)
    pr = np.array([p[1:5] for p in img["preds"]], dtype=float).reshape(-1, 4)
    prc = np.array([p[0] for p in img["preds"]], dtype=int)
    prs = np.array([p[5] for p in img["preds"]], dtype=float)
    return lab, labc, pr, prc, prs


# A candidate: (kind, image index, "label" or "pred", box index, score)
Candidate = tuple[str, int, str, int, float]


def ours(images: list[dict], calibration=None) -> tuple[list[Candidate], list[tuple]]:
    """Our candidates, and (kind, features, image, target, index) for fitting the calibration."""
    from yolo_tl.analysis.metrics.label_issues import find_label_issues

    cands, feats = [], []
    for n, img in enumerate(images):
        for s in find_label_issues(*_arrays(img), calibration=calibration):
            target, idx = ("pred", s.pred_index) if s.kind == "missing" else ("label", s.label_index)
            cands.append((s.kind, n, target, idx, s.score))
            feats.append((s.kind, s.features, n, target, idx))
    return cands, feats


def cleanlab_scores(images: list[dict], nc: int) -> dict[str, list[Candidate]]:
    """cleanlab's per-box subtype scores, and its image score given to every box (lower = worse there)."""
    from cleanlab.object_detection import rank

    labels, preds = [], []
    for img in images:
        lab, labc, pr, prc, prs = _arrays(img)
        labels.append({"bboxes": lab, "labels": labc})
        preds.append([np.c_[pr[prc == k], prs[prc == k]].reshape(-1, 5) for k in range(nc)])
    over = rank.compute_overlooked_box_scores(labels=labels, predictions=preds)
    swap = rank.compute_swap_box_scores(labels=labels, predictions=preds)
    badloc = rank.compute_badloc_box_scores(labels=labels, predictions=preds)
    image = rank.get_label_quality_scores(labels, preds)
    out: dict[str, list[Candidate]] = {"cleanlab": [], "cleanlab image score": []}
    for n, img in enumerate(images):
        # cleanlab groups predictions by class: map its (class, row) back to our prediction order
        order = [j for k in range(nc) for j in range(len(img["preds"])) if img["preds"][j][0] == k]
        for r, v in enumerate(over[n]):
            if not np.isnan(v):
                out["cleanlab"].append(("missing", n, "pred", order[r], 1.0 - float(v)))
        for i in range(len(img["labels"])):
            out["cleanlab"].append(("wrong_class", n, "label", i, 1.0 - float(swap[n][i])))
            out["cleanlab"].append(("badly_placed", n, "label", i, 1.0 - float(badloc[n][i])))
            out["cleanlab"].append(("spurious", n, "label", i, 1.0 - float(image[n])))
            for kind in ("wrong_class", "badly_placed", "spurious"):
                out["cleanlab image score"].append((kind, n, "label", i, 1.0 - float(image[n])))
        for j in range(len(img["preds"])):
            out["cleanlab image score"].append(("missing", n, "pred", j, 1.0 - float(image[n])))
    return out


def fiftyone_scores(images: list[dict], names: list[str]) -> list[Candidate]:
    """FiftyOne Brain's compute_mistakenness on a throw-away dataset of the same labels and predictions."""
    import fiftyone as fo
    import fiftyone.brain as fob

    def det(cls, box, w, h, conf=None, **attrs):
        x1, y1, x2, y2 = box
        d = fo.Detection(label=names[cls], bounding_box=[x1 / w, y1 / h, (x2 - x1) / w, (y2 - y1) / h], **attrs)
        if conf is not None:
            d.confidence = conf
        return d

    ds = fo.Dataset()
    samples = []
    for n, img in enumerate(images):
        w, h = img["width"], img["height"]
        samples.append(fo.Sample(
            filepath=img["path"], index=n,
            ground_truth=fo.Detections(detections=[det(b[0], b[1:], w, h, idx=i) for i, b in enumerate(img["labels"])]),
            predictions=fo.Detections(detections=[det(p[0], p[1:5], w, h, conf=p[5], idx=j)
                                                  for j, p in enumerate(img["preds"])])))
    ds.add_samples(samples, progress=False)
    try:
        fob.compute_mistakenness(ds, "predictions", label_field="ground_truth", progress=False)
        cands: list[Candidate] = []
        for sample in ds.iter_samples():
            n = sample["index"]
            for d in sample["ground_truth"].detections:
                m, loc = d.get_field("mistakenness") if d.has_field("mistakenness") else None, None
                if d.has_field("mistakenness_loc"):
                    loc = d.get_field("mistakenness_loc")
                if m is not None:
                    cands.append(("wrong_class", n, "label", d["idx"], float(m)))
                if loc is not None:
                    cands.append(("badly_placed", n, "label", d["idx"], float(loc)))
                if d.has_field("possible_spurious") and d["possible_spurious"]:
                    cands.append(("spurious", n, "label", d["idx"], 1.0))
            for d in sample["predictions"].detections:
                if d.has_field("possible_missing") and d["possible_missing"]:
                    cands.append(("missing", n, "pred", d["idx"], float(d.confidence)))
        return cands
    finally:
        ds.delete()


def hits(cands: list[Candidate], images: list[dict], kind: str) -> tuple[list[float], list[bool], int]:
    """Scores and hit flags of one kind's candidates, and how many mistakes of that kind were injected.

    A label-box candidate hits when that box was injected as this kind; a prediction hits a dropped
    box it covers (IoU >= 0.5), each dropped box once (the best-scored candidate takes it).
    """
    mine = sorted((c for c in cands if c[0] == kind), key=lambda c: -c[4])
    if kind == "missing":
        n_real = sum(len(img["dropped"]) for img in images)
        taken: set = set()
        flags = []
        for _, n, _, j, _ in mine:
            box = images[n]["preds"][j][1:5]
            free = [(k, _iou(box, d[1:])) for k, d in enumerate(images[n]["dropped"]) if (n, k) not in taken]
            best = max(free, key=lambda t: t[1], default=(None, 0.0))
            flags.append(best[1] >= 0.5)
            if best[1] >= 0.5:
                taken.add((n, best[0]))
    else:
        n_real = sum(t == kind for img in images for t in img["tags"])
        flags = [images[n]["tags"][i] == kind for _, n, _, i, _ in mine]
    return [c[4] for c in mine], flags, n_real


def table(methods: dict[str, list[Candidate]], images: list[dict]) -> list[dict[str, Any]]:
    """Per method and kind: AP of the ranking and recall at K = number injected."""
    from yolo_tl.analysis.metrics.label_issues import ranking_ap, recall_at

    rows = []
    for method, cands in methods.items():
        for kind in KINDS:
            scores, flags, n_real = hits(cands, images, kind)
            rows.append({"method": method, "kind": kind, "injected": n_real, "candidates": len(scores),
                         "ap": ranking_ap(scores, flags, n_real), "recall_at_k": recall_at(scores, flags, n_real)})
    return rows


def fit_calibration(feats: list[tuple], images: list[dict], l2: float = 1e-2) -> dict[str, tuple]:
    """Logistic regression per kind (Newton steps, a little L2) of 'real mistake' on our raw features."""
    fitted = {}
    for kind in KINDS:
        rows = [(f, n, t, i) for k, f, n, t, i in feats if k == kind]
        if not rows:
            continue
        cands = [(kind, n, t, i, float(-r)) for r, (_, n, t, i) in enumerate(rows)]  # keep row order
        _, flags, _ = hits(cands, images, kind)
        x = np.c_[np.ones(len(rows)), np.array([r[0] for r in rows], dtype=float)]
        y = np.array(flags, dtype=float)
        w = np.zeros(x.shape[1])
        for _ in range(50):
            p = 1 / (1 + np.exp(-x @ w))
            grad = x.T @ (p - y) + l2 * np.r_[0, w[1:]]
            hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(len(w))
            w -= np.linalg.solve(hess, grad)
        fitted[kind] = (round(float(w[0]), 3), tuple(round(float(v), 3) for v in w[1:]))
    return fitted


def real_flags(cands: list[Candidate], images: list[dict]) -> tuple[list[float], list[bool]]:
    """Every candidate's score and whether it was a real (injected) mistake of its kind."""
    scores, flags = [], []
    for kind in KINDS:
        s, f, _ = hits(cands, images, kind)
        scores += s
        flags += f
    return scores, flags
