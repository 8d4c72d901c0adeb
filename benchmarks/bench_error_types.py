"""TIDE's error types: ``analysis/metrics/error_types.py`` against tidecv 1.0.1 on the same boxes.

``python -m benchmarks.bench_error_types [--images 2000] [--repeats 3] [--out FILE]`` writes
``benchmarks/RESULTS_error_types.md``. Synthetic, seeded: ``--images`` images of 640 x 640 with ~40
ground-truth boxes each (6 classes, all three COCO sizes, 2% crowds) and ~40 "predictions" made from
them (shifts, class swaps, duplicates, drops, background boxes), made once in each worker process.

Each side runs in a fresh process (``--worker ours|tide|match``), sides alternating, and reports the
seconds of the timed call and its peak memory (VmHWM after the call, reset with /proc/self/clear_refs
just before it, minus VmRSS before it). Ours: type every image, accumulate, and compute the AP and the
8 oracle runs overall, per class and per size. tidecv: build its ``Data`` from the same arrays, then
``evaluate`` + ``fix_main_errors`` + ``fix_special_errors`` (overall only: it has no per class or size).
``match`` times evaluation.py's ``match_image`` (analyze's COCO matching) on the same boxes, for scale.
Targets: ours >= 10x faster than tidecv; every dAP within 0.1 AP points of tidecv's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BATCH = 256  # images typed at once
NAMES = ["c0", "c1", "c2", "c3", "c4", "c5"]
ANALYZE_BEYOND_INFERENCE_S = 17.0  # RESULTS_analyze.md: analyze beyond inference, 2,000 images x ~40 GT


def make_images(n: int, seed: int = 0) -> list[dict]:
    """``n`` synthetic images as arrays (xyxy pixels), seeded."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        g = int(rng.integers(30, 51))
        side = rng.choice([rng.uniform(12, 30), rng.uniform(35, 90), rng.uniform(100, 220)], size=g, p=[.3, .5, .2])
        wh = side[:, None] * rng.uniform(0.7, 1.3, (g, 2))
        xy = rng.uniform(0, 640 - wh)
        gt, gc = np.concatenate([xy, xy + wh], 1), rng.integers(0, len(NAMES), g)
        keep = rng.random(g) >= 0.1  # 10% dropped: missed
        dup = rng.random(g) < 0.1  # 10% twice: duplicates
        src = np.concatenate([np.flatnonzero(keep), np.flatnonzero(keep & dup)])
        d = rng.normal(0, 0.12, (len(src), 2)) * wh[src] * np.where(rng.random((len(src), 1)) < 0.15, 4, 1)
        pred = gt[src] + np.concatenate([d, d], 1) + rng.normal(0, 0.03, (len(src), 4)) * wh[src].repeat(2, 1)
        pc = np.where(rng.random(len(src)) < 0.08, rng.integers(0, len(NAMES), len(src)), gc[src])
        nb = int(rng.integers(1, 6))  # background boxes
        bxy, bwh = rng.uniform(0, 560, (nb, 2)), rng.uniform(15, 80, (nb, 2))
        pred = np.concatenate([pred, np.concatenate([bxy, bxy + bwh], 1)])
        pred[:, 2:] = np.maximum(pred[:, 2:], pred[:, :2] + 1)
        pc = np.concatenate([pc, rng.integers(0, len(NAMES), nb)])
        conf = np.round(rng.beta(2, 2, len(pc)), 4)  # 4 decimals: some tied scores, as exported JSON has
        out.append({"gt": gt, "gt_cls": gc, "crowd": rng.random(g) < 0.02, "pred": pred, "pred_cls": pc,
                    "conf": conf})
    return out


def _vm(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _ours(images: list[dict]) -> dict:
    from yolo_tl.analysis.metrics.error_costs import ErrorAccumulator
    from yolo_tl.analysis.metrics.error_types import ImageInput, type_batch

    acc = ErrorAccumulator(NAMES)
    for start in range(0, len(images), BATCH):  # as analyze works: a batch of images at a time
        acc.add(type_batch([ImageInput(im["gt"], im["gt_cls"], im["pred"], im["pred_cls"], im["conf"], im["crowd"])
                            for im in images[start:start + BATCH]]))
    res = acc.result()
    return {"ap": res.overall.ap, "dap": res.overall.dap, "predictions": len(acc.cols["conf"])}


def _tide(images: list[dict]) -> dict:
    import numpy as np
    from tidecv import TIDE, Data

    gt, preds = Data("gt"), Data("preds")
    for i, im in enumerate(images):
        gt.add_image(i, str(i))
        for box, c, cr in zip(np.concatenate([im["gt"][:, :2], im["gt"][:, 2:] - im["gt"][:, :2]], 1).tolist(),
                              im["gt_cls"].tolist(), im["crowd"].tolist()):
            (gt.add_ignore_region if cr else gt.add_ground_truth)(i, c, box)
        pxywh = np.concatenate([im["pred"][:, :2], im["pred"][:, 2:] - im["pred"][:, :2]], 1)
        for box, c, s in zip(pxywh.tolist(), im["pred_cls"].tolist(), im["conf"].tolist()):
            preds.add_detection(i, c, s, box)
    run = TIDE().evaluate(gt, preds, mode=TIDE.BOX)
    main = {e.short_name: v for e, v in run.fix_main_errors().items()}
    special = {e.short_name: v for e, v in run.fix_special_errors().items()}
    names = {"Cls": "cls", "Loc": "loc", "Both": "both", "Dupe": "dupe", "Bkg": "bkg", "Miss": "missed",
             "FalsePos": "false_pos", "FalseNeg": "false_neg"}
    return {"ap": run.ap, "dap": {names[k]: v for k, v in {**main, **special}.items()}}


def _match(images: list[dict]) -> dict:
    import numpy as np

    from yolo_tl.analysis.metrics.evaluation import Accumulator, ImageBoxes, match_image

    acc = Accumulator(NAMES)
    for im in images:
        to_xywh = np.array([1 / 640] * 4)
        img = ImageBoxes(np.concatenate([im["gt"][:, :2], im["gt"][:, 2:] - im["gt"][:, :2]], 1) * to_xywh,
                         im["gt_cls"], np.concatenate([im["pred"][:, :2], im["pred"][:, 2:] - im["pred"][:, :2]], 1)
                         * to_xywh, im["pred_cls"], im["conf"], size=(640, 640), gt_crowd=im["crowd"])
        match_image(img, acc)
    acc.pr_curves()
    return {}


def worker(side: str, n: int, seed: int) -> dict:
    """One side in this process: make the images (untimed), then time the call and its peak memory."""
    images = make_images(n, seed)
    fn = {"ours": _ours, "tide": _tide, "match": _match}[side]
    if side == "tide":
        import tidecv  # noqa: F401  (imports untimed on both sides)
    else:
        import yolo_tl.analysis.metrics.error_types  # noqa: F401
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    rss0, t0 = _vm("VmRSS"), time.perf_counter()
    out = fn(images)
    seconds = time.perf_counter() - t0
    return {**out, "side": side, "seconds": seconds, "peak_mib": _vm("VmHWM") - rss0,
            "boxes": sum(len(im["gt_cls"]) + len(im["pred_cls"]) for im in images)}


def _spawn(side: str, n: int, seed: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "benchmarks.bench_error_types", "--worker", side, "--images", str(n),
           "--seed", str(seed)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"worker {side} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "RESULTS_error_types.md")
    ap.add_argument("--worker", choices=["ours", "tide", "match"])
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.images, args.seed)))
        return
    runs: dict[str, list[dict]] = {"ours": [], "tide": [], "match": []}
    for r in range(args.repeats):
        for side in ("ours", "tide", "match"):
            runs[side].append(_spawn(side, args.images, args.seed))
            print(f"repeat {r + 1}/{args.repeats} {side}: {runs[side][-1]['seconds']:.2f} s, "
                  f"peak +{runs[side][-1]['peak_mib']:.0f} MiB", file=sys.stderr)
    scale = {n: _spawn("ours", n, args.seed) for n in (max(args.images // 4, 1), args.images * 2)}
    scale[args.images] = runs["ours"][0]
    args.out.write_text(report(runs, args, scale))
    args.out.with_suffix(".json").write_text(json.dumps(runs, indent=1))  # the raw runs, to check the table
    print(f"wrote {args.out}", file=sys.stderr)


def _secs(runs: list[dict]) -> str:
    return ", ".join(f"{r['seconds']:.2f}" for r in runs)


def report(runs: dict[str, list[dict]], args: argparse.Namespace, scale: dict[int, dict]) -> str:
    """The markdown of RESULTS_error_types.md."""
    med = {s: statistics.median(r["seconds"] for r in v) for s, v in runs.items()}
    mem = {s: statistics.median(r["peak_mib"] for r in v) for s, v in runs.items()}
    ours, tide = runs["ours"][0], runs["tide"][0]
    diffs = {k: abs(ours["dap"][k] - tide["dap"][k]) for k in tide["dap"]}
    worst = max([abs(ours["ap"] - tide["ap"]), *diffs.values()])
    speed = med["tide"] / med["ours"]
    try:
        import numpy
        import tidecv

        versions = f"numpy {numpy.__version__}, tidecv {tidecv.__version__}"
    except ImportError:
        versions = ""
    rows = "\n".join(f"| {k} | {ours['dap'][k]:.4f} | {tide['dap'][k]:.4f} | {diffs[k]:.1e} |" for k in tide["dap"])
    return f"""# TIDE error types: yolo-tl against tidecv

Written by `python -m benchmarks.bench_error_types --images {args.images} --repeats {args.repeats}` \
(see the module's docstring for what each side does). {args.images:,} synthetic images, {ours['boxes']:,} boxes \
(GT + predictions, {ours['predictions']:,} predictions kept by the 100-per-image cap); each side in a fresh process, \
sides alternating, medians of {args.repeats}.

- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {platform.processor() or platform.machine()}, \
{os.cpu_count()} cores (shared); Python {platform.python_version()}; {versions}

| what | yolo-tl (median) | tidecv (median) | ratio | target | result |
|---|---|---|---|---|---|
| seconds: type every box + AP + 8 oracle runs | {med['ours']:.2f} | {med['tide']:.2f} | {speed:.1f}x faster | \
>= 10x faster | **{'pass' if speed >= 10 else 'FAIL'}** |
| peak memory of the call, MiB (VmHWM - VmRSS before) | {mem['ours']:.0f} | {mem['tide']:.0f} | \
{mem['tide'] / max(mem['ours'], 1e-9):.1f}x less | - | - |
| largest difference in AP50 or any dAP (0-100) | {worst:.1e} | - | - | <= 0.1 | \
**{'pass' if worst <= 0.1 else 'FAIL'}** |

yolo-tl's figure includes the per-class and per-size breakdown (3 x 9 more AP runs) that tidecv does not compute.
tidecv's includes building its `Data` objects from the same arrays.

For scale inside analyze (target: the error-type phase adds <= 20% to analyze's time beyond inference): \
evaluation.py's `match_image` + `pr_curves`, one part of that time, took {med['match']:.2f} s on the same boxes in \
the same runs, so the error types add at most {100 * med['ours'] / med['match']:.0f}% of it \
(RESULTS_analyze.md: analyze beyond inference {ANALYZE_BEYOND_INFERENCE_S:.0f} s on 2,000 images x ~40 GT on a \
quiet machine; this machine's load changes absolute seconds, not the ratio). To be measured inside analyze \
(`seconds.error_types`) once it is wired in.

Memory: the accumulator keeps 19 bytes per kept prediction and fixed-size (size x class) GT counts; nothing per \
image or per GT box; a batch of {BATCH} images is typed at once. Peak memory of our call by number of images: \
{"; ".join(f"{n:,} images {scale[n]['peak_mib']:.1f} MiB" for n in sorted(scale))}.

| dAP (AP50 points) | yolo-tl | tidecv | difference |
|---|---|---|---|
| AP50 | {ours['ap']:.4f} | {tide['ap']:.4f} | {abs(ours['ap'] - tide['ap']):.1e} |
{rows}

Seconds per run: ours {_secs(runs['ours'])}; tidecv {_secs(runs['tide'])}; match_image {_secs(runs['match'])}.
"""


if __name__ == "__main__":
    main()
