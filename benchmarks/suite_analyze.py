"""Analyze's comparisons: everything analyze does beyond inference vs FiftyOne's evaluation.

``analyze_eval``: ``--ingest-images`` images (default 2,000) x ~40 GT boxes, predictions given.
``analyze_eval_dense``: a tenth of that (200) with 300 predictions per image, as at conf 0.001.
Both sides: ours = ``payload_analyze.ours_analyze_steps`` (match + insert per batch, register the run,
views, colours); theirs = ``evaluate_detections(compute_mAP=True)`` alone (samples added untimed)
and ``add_samples`` + ``evaluate_detections``. Each case in its own process; peak RSS is its VmHWM.

    python -m benchmarks.run --only analyze_eval,analyze_eval_dense --no-profile \\
        --out benchmarks/RESULTS_analyze.md
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from benchmarks import datagen
from benchmarks.common import Ctx, Row, spread, verdict
from benchmarks.harness import Case, measure, worker_cmd

PER_IMAGE = 40
DENSE = 300


def _root(ctx: Ctx, n: int, dense: bool) -> str:
    root = ctx.data(f"analyze-{n}-{'dense' if dense else 'plain'}")
    if not root.exists():
        info = datagen.write_ingest(root, n, per_image=PER_IMAGE, seed=13)
        if dense:  # top every image up to 300 predictions with low-confidence boxes
            rng = random.Random(13)
            path = Path(info["predictions"])
            preds = json.loads(path.read_text())
            w, h = info["size"]
            for boxes in preds.values():
                while len(boxes) < DENSE:
                    x1, y1 = rng.uniform(0, w - 4), rng.uniform(0, h - 4)
                    boxes.append([rng.randrange(len(datagen.CLASSES)), round(rng.uniform(0.001, 0.05), 4),
                                  round(x1, 2), round(y1, 2), round(min(w, x1 + rng.uniform(2, w / 2)), 2),
                                  round(min(h, y1 + rng.uniform(2, h / 2)), 2)])
            path.write_text(json.dumps(preds))
    return str(root)


def _compare(ctx: Ctx, n: int, dense: bool) -> list[Row]:
    root = _root(ctx, n, dense)
    ours = Case("yolo-tl analyze steps", worker_cmd("ours_analyze_steps", root=root))
    alone = Case("evaluate_detections", worker_cmd("fo_evaluate_classes", root=root))
    both = Case("add_samples + evaluate_detections", worker_cmd("fo_add_evaluate", root=root))
    measure([ours], ctx.cfg.repeats_slow, ctx.env, log=ctx.log, timeout=3600)
    measure([alone, both], ctx.cfg.repeats_eval, ctx.env, log=ctx.log, timeout=3600)
    s_ours = ours.median("seconds")
    inner = ours.runs[0].inner
    boxes, preds = inner["boxes"], inner["predictions"]
    label = (f"analyze beyond inference, {n:,} images x ~{PER_IMAGE} GT"
             + (f", {DENSE} predictions per image (conf 0.001)" if dense else f", {preds:,} predictions"))
    common = [spread(ours, "seconds"), spread(alone, "seconds"), spread(both, "seconds"),
              f"yolo-tl: {boxes / s_ours:,.0f} boxes/s (GT + predictions), "
              f"match + insert + register {inner['ingest_evaluate_seconds']:.2f} s of {s_ours:.2f} s; "
              f"FiftyOne evaluate_detections: {boxes / alone.median('seconds'):,.0f} boxes/s",
              f"peak RSS: yolo-tl {ours.median('maxrss') / 2**20:.0f} MiB, evaluate_detections "
              f"{alone.median('maxrss') / 2**20:.0f} MiB, add_samples + evaluate "
              f"{both.median('maxrss') / 2**20:.0f} MiB",
              f"TIDE error types (typing + dAP) {inner['error_types_seconds']:.2f} s + error_* views "
              f"{inner['error_views_seconds']:.2f} s = {100 * inner['error_types_share']:.1f}% added to the rest "
              f"(target <= 20%)",
              f"mAP: yolo-tl {inner['mAP']:.6f}, FiftyOne {alone.runs[0].inner['mAP']:.6f} "
              f"(difference {abs(inner['mAP'] - alone.runs[0].inner['mAP']):.1e})"]
    r1 = alone.median("seconds") / s_ours
    r2 = both.median("seconds") / s_ours
    return [Row(label, "FiftyOne evaluate_detections(compute_mAP=True) alone", "inner", s_ours,
                alone.median("seconds"), r1, ">= 20x faster", verdict(r1 >= 20), common),
            Row(label, "FiftyOne add_samples + evaluate_detections(compute_mAP=True)", "inner", s_ours,
                both.median("seconds"), r2, ">= 30x faster", verdict(r2 >= 30), [])]


def analyze_eval(ctx: Ctx) -> list[Row]:
    return _compare(ctx, ctx.cfg.ingest_images, dense=False)


def analyze_eval_dense(ctx: Ctx) -> list[Row]:
    return _compare(ctx, max(20, ctx.cfg.ingest_images // 10), dense=True)


COMPARISONS = {"analyze_eval": analyze_eval, "analyze_eval_dense": analyze_eval_dense}
