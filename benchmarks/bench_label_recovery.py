"""Does fixing the suspects help? Mistakes injected into BCCD's train split, found, fixed, trained again.

    python -m benchmarks.bench_label_recovery [--epochs 5] [--imgsz 160] [--rate 0.1] [--folds 2]
                                              [--seed 0] [--work DIR]

1. BCCD (../shared/datasets, its own VOC splits) is prepared with ``yolo_tl.prepare``; seeded mistakes
   are injected into the train split only (``label_issues_compare.inject``: a share ``--rate`` of the
   boxes dropped, as many given another class, as many shifted or scaled, as many boxes added on
   background). val keeps the human labels: every score below is against them.
2. The same recipe (COCO backbone ../shared/weights/yolov5n-v6.1-coco.pt, yolo-tl's defaults, seed,
   epochs) is fine-tuned on the clean train split (``clean``) and on the corrupted one (``corrupted``).
3. ``yolo_tl.analyze`` on the corrupted train split with ``folds`` (each image predicted by a model of
   the same recipe that did not train on it); its top K suggestions, K = the number of injected
   mistakes, are accepted with ``fix_labels(accept_top=K)`` (``yolo-tl fix-labels --accept-top K``)
   -> ``fixed_top_k``.
4. The baseline: K labelled boxes of the corrupted train split drawn at random (seeded), each one
   corrected if it is an injected mistake (the true box restored, a box on background removed) ->
   ``fixed_random``. (A reviewer who reads random boxes cannot see a missing one.)
5. Both fine-tuned again; recovered = (mAP fixed - mAP corrupted) / (mAP clean - mAP corrupted).

Also counted: mistakes left in each train split (a label with no true box of its class at IoU >= 0.7,
plus a true box with no such label; IoU 0.7: a moved box is injected at 0.15-0.6). ``yolo-tl runs``
shows the four runs side by side; its table goes into benchmarks/RESULTS_label_recovery.md. Opt-in: tens
of CPU minutes; exit 2 without ../shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_label_issues import SHARED, SOURCES, WEIGHTS, true_boxes
from benchmarks.common import command_line

REPO = Path(__file__).resolve().parents[1]
SAME = 0.7  # IoU at which a label counts as the true box (injected moves are at 0.15-0.6)


def _copy_dataset(src: Path, dst: Path) -> Path:
    """``src`` (a prepared dataset) as a new folder: images hard-linked, labels copied (written over later)."""
    def copy(a: str, b: str) -> None:
        if f"{os.sep}images{os.sep}" in a:
            os.link(a, b)
        else:
            shutil.copy2(a, b)

    if dst.exists():  # this benchmark's own work folder, from an interrupted run
        shutil.rmtree(dst)
    shutil.copytree(src, dst, copy_function=copy)
    text = (dst / "data.yaml").read_text().replace(f"path: {src}", f"path: {dst}")
    (dst / "data.yaml").write_text(text)
    return dst / "data.yaml"


def _label_file(root: Path, image: str) -> Path:
    return root / "labels" / "train" / (Path(image).stem + ".txt")


def _write_labels(root: Path, images: list[dict], key: str) -> None:
    from yolo_tl.dataset.boxes import clip_xyxy, format_yolo_line, xyxy_to_yolo

    for img in images:
        w, h = img["width"], img["height"]
        lines = [format_yolo_line(c, xyxy_to_yolo(clip_xyxy(tuple(b), w, h)[0], w, h)) for c, *b in img[key]]
        path = _label_file(root, img["path"])
        path.unlink(missing_ok=True)
        path.write_text("".join(x + "\n" for x in lines))


def _read_labels(root: Path, img: dict) -> list[tuple]:
    """(class, x1, y1, x2, y2) in pixels, from a YOLO label file."""
    w, h = img["width"], img["height"]
    out = []
    for line in _label_file(root, img["path"]).read_text().split("\n"):
        if line.strip():
            c, cx, cy, bw, bh = line.split()
            cx, cy, bw, bh = float(cx) * w, float(cy) * h, float(bw) * w, float(bh) * h
            out.append((int(c), cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2))
    return out


def mistakes_left(root: Path, images: list[dict]) -> int:
    """Labels with no true box of their class at IoU >= 0.9, plus true boxes with no such label."""
    import numpy as np

    from yolo_tl.analysis.metrics.label_issues import iou_matrix

    left = 0
    for img in images:
        labels, truth = _read_labels(root, img), img["boxes"]
        if not labels or not truth:
            left += len(labels) + len(truth)
            continue
        iou = iou_matrix([b[1:] for b in labels], [b[1:] for b in truth])
        same = iou * (np.array([a[0] for a in labels])[:, None] == np.array([t[0] for t in truth])[None, :])
        used: set[int] = set()
        for i in range(len(labels)):
            j = int(same[i].argmax())
            if same[i, j] >= SAME and j not in used:
                used.add(j)
            else:
                left += 1
        left += len(truth) - len(used)
    return left


def random_review(images: list[dict], k: int, seed: int) -> tuple[list[dict], int]:
    """``k`` labelled boxes drawn at random; each injected mistake among them corrected. Returns the
    images with ``reviewed`` labels and how many were corrected."""
    boxes = [(n, i) for n, img in enumerate(images) for i in range(len(img["labels"]))]
    chosen = set(random.Random(seed).sample(boxes, min(k, len(boxes))))
    fixed = 0
    for n, img in enumerate(images):
        out = []
        for i, (label, tag, truth) in enumerate(zip(img["labels"], img["tags"], img["truth"])):
            if (n, i) in chosen and tag is not None:
                fixed += 1
                if truth is not None:
                    out.append(truth)
                continue
            out.append(label)
        img["reviewed"] = out
    return images, fixed


def _train(data: Path, name: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """One run of the recipe; a finished run of that name in ``work`` (an interrupted benchmark) is reused."""
    import yolo_tl

    done = work / "runs" / name / "run.json"
    if done.is_file() and json.loads(done.read_text()).get("status") == "finished":
        record = json.loads(done.read_text())
        return {"name": name, "best": record["best"], "train_s": record["wall_time_s"]}
    t = time.perf_counter()
    res = yolo_tl.finetune(data, weights=WEIGHTS, epochs=args.epochs, imgsz=args.imgsz, batch=16, workers=0,
                           seed=args.seed, project=work / "runs", name=name, extra={"plots": False})
    return {"name": name, "best": str(res.best), "train_s": round(time.perf_counter() - t, 1)}


def _score(best: str, clean_yaml: Path, imgsz: int) -> tuple[float, float]:
    import yolo_tl

    m = yolo_tl.evaluate(best, clean_yaml, imgsz=imgsz, batch=16, workers=0).metrics
    return m.map50, m.map50_95


def run(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    import fiftyone as fo

    import yolo_tl
    from benchmarks.label_issues_compare import inject

    clean_yaml = Path(yolo_tl.prepare(SOURCES["bccd"], work / "clean", overwrite=True).to_dict()["data_yaml"])
    images, names = true_boxes(clean_yaml)
    train = [img for img in images if img["split"] == "train"]
    inject(train, len(names), seed=args.seed, rate=args.rate)
    injected = sum(t is not None for img in train for t in img["tags"]) + sum(len(img["dropped"]) for img in train)
    corrupted_yaml = _copy_dataset(work / "clean", work / "corrupted")
    _write_labels(work / "corrupted", train, "labels")

    runs = [_train(clean_yaml, "clean", args, work), _train(corrupted_yaml, "corrupted", args, work)]
    t = time.perf_counter()
    name = f"recovery-{os.getpid()}"
    yolo_tl.analyze(corrupted_yaml, weights=runs[1]["best"], split="train", folds=args.folds, name=name,
                    imgsz=args.imgsz, folds_dir=str(work / "folds"))
    stored = len(fo.load_dataset(name).values("label_issues.detections.score", unwind=True))
    fixed = yolo_tl.fix_labels(name, work / "fixed_top_k", accept_top=injected)
    find_s = round(time.perf_counter() - t, 1)
    fixed_yaml = work / "fixed_top_k" / "data.yaml"
    random_review(train, injected, args.seed)
    random_yaml = _copy_dataset(work / "corrupted", work / "fixed_random")
    _write_labels(work / "fixed_random", train, "reviewed")
    runs += [_train(fixed_yaml, "fixed_top_k", args, work), _train(random_yaml, "fixed_random", args, work)]

    roots = {"clean": work / "clean", "corrupted": work / "corrupted", "fixed_top_k": fixed_yaml.parent,
             "fixed_random": work / "fixed_random"}
    for r in runs:
        r["map50"], r["map50_95"] = _score(r["best"], clean_yaml, args.imgsz)
        r["mistakes_left"] = mistakes_left(roots[r["name"]], train)
        print(json.dumps(r), file=sys.stderr, flush=True)
    by = {r["name"]: r for r in runs}
    lost = by["clean"]["map50_95"] - by["corrupted"]["map50_95"]

    def recovered(n: str) -> float | None:
        return (by[n]["map50_95"] - by["corrupted"]["map50_95"]) / lost if lost > 0 else None

    table = subprocess.run([sys.executable, "-m", "yolo_tl", "runs", str(work / "runs")], capture_output=True,
                           text=True, env={**os.environ, "COLUMNS": "80"}).stdout
    return {"settings": {"epochs": args.epochs, "imgsz": args.imgsz, "rate": args.rate, "folds": args.folds,
                         "seed": args.seed},
            "train_images": len(train), "true_boxes": sum(len(i["boxes"]) for i in train), "injected": injected,
            "accepted": len(fixed.applied), "suggestions": stored, "analysis": name, "find_s": find_s, "runs": runs,
            "recovered_top_k": recovered("fixed_top_k"), "recovered_random": recovered("fixed_random"),
            "runs_table": table}


def write_markdown(res: dict[str, Any], out: Path, command: str) -> None:
    import ultralytics

    s = res["settings"]

    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    lines = [
        "# Fixing the suspects: how much of the lost mAP comes back", "",
        f"Written by `{command}` on the CPU ({platform.machine()}, shared 2-core machine), Ultralytics "
        f"{ultralytics.__version__}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", "",
        f"BCCD train split: {res['train_images']} photos, {res['true_boxes']} human boxes; {res['injected']} "
        f"mistakes injected (rate {s['rate']} per kind, seed {s['seed']}); val keeps its human labels. Every "
        f"run: COCO backbone (yolov5n v6.1), yolo-tl's defaults, {s['epochs']} epochs, imgsz {s['imgsz']}, "
        f"seed {s['seed']}. Suspects from `analyze --split train --folds {s['folds']}` ({res['find_s']} s "
        f"with the fold trainings): {res['suggestions']} suggestions stored; the top K = {res['injected']} "
        f"accepted with `fix_labels(accept_top=K)` (one per box): {res['accepted']} fixes applied.", "",
        "| train labels | mistakes left | val mAP50 | val mAP50-95 | train s |", "|---|---:|---:|---:|---:|",
    ]
    for r in res["runs"]:
        lines.append(f"| {r['name']} | {r['mistakes_left']} | {f(r['map50'])} | {f(r['map50_95'])} | "
                     f"{r['train_s']} |")
    lines += ["", f"Recovered share of the mAP50-95 lost to the mistakes: top-K suspects fixed "
              f"**{f(res['recovered_top_k'])}**, K random boxes reviewed {f(res['recovered_random'])} "
              "(goal: >= 0.5, and clearly more than random).", "",
              "`yolo-tl runs` on the four runs (scores there are each run's own val at the end of training):", "",
              "```", res["runs_table"].rstrip(), "```", ""]
    out.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_label_recovery", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--imgsz", type=int, default=160)
    ap.add_argument("--rate", type=float, default=0.1)
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "RESULTS_label_recovery.md")
    args = ap.parse_args(argv)
    if not WEIGHTS.is_file() or not SOURCES["bccd"].exists():
        print(f"skipped: {SHARED} (weights and BCCD) not found beside the repository", file=sys.stderr)
        return 2
    work = (args.work or Path(tempfile.mkdtemp(prefix="bench-label-recovery-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    for k, v in {"YOLO_OFFLINE": "true", "YOLO_AUTOINSTALL": "false", "FIFTYONE_DO_NOT_TRACK": "true",
                 "FIFTYONE_DATABASE_DIR": str(work / "fiftyone-db"), "FIFTYONE_DATABASE_VALIDATION": "false",
                 "YOLO_CONFIG_DIR": str(work / "ultralytics")}.items():
        os.environ.setdefault(k, v)
    res = run(work, args)
    command = command_line("bench_label_recovery", res["settings"])
    write_markdown(res, args.out, command)
    print(json.dumps({k: v for k, v in res.items() if k != "runs_table"}, indent=1))
    print(f"work folder: {work}; wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
