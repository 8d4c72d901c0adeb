"""Does fixing the suspects help? Mistakes injected into BCCD's train split, found, fixed, trained again.

    python -m benchmarks.bench_label_recovery [--epochs 5] [--imgsz 160] [--rate 0.1] [--folds 2]
                                              [--seed 0] [--above S[,S...]] [--oracle] [--work DIR]

1. BCCD (../shared/datasets, its own VOC splits) is prepared with ``yolo_tl.prepare``; seeded mistakes
   are injected into the train split only (``label_issues_compare.inject``: a share ``--rate`` of the
   boxes dropped, as many given another class, as many shifted or scaled, as many boxes added on
   background). val keeps the human labels: every score below is against them.
2. The same recipe (COCO backbone ../shared/weights/yolov5n-v6.1-coco.pt, yolo-tl's defaults, seed,
   epochs) is fine-tuned on the clean train split (``clean``) and on the corrupted one (``corrupted``).
3. ``yolo_tl.analyze`` on the corrupted train split with ``folds`` (each image predicted by a model of
   the same recipe that did not train on it); its top K suggestions, K = the number of injected
   mistakes, are accepted with ``fix_labels(accept_top=K)`` (``yolo-tl fix-labels --accept-top K``)
   -> ``fixed_top_k``; with ``--above S`` also (per S) the suggestions scored >= S (``--accept-above S``) ->
   ``fixed_above_S``. Each accepted fix is checked against the injection record (``fix_outcomes``).
4. The baseline: K labelled boxes of the corrupted train split drawn at random (seeded), each one
   corrected if it is an injected mistake (the true box restored, a box on background removed) ->
   ``fixed_random``. (A reviewer who reads random boxes cannot see a missing one.)
   With ``--oracle``, two ceilings: every injected wrong class and badly placed box undone
   (``oracle_class_place``), and every dropped box added back and box on background removed
   (``oracle_missing_spurious``): what a perfect fixer of those kinds would recover.
5. Each fine-tuned again; recovered = (mAP fixed - mAP corrupted) / (mAP clean - mAP corrupted).

Also counted: mistakes left in each train split (a label with no true box of its class at IoU >= 0.7,
plus a true box with no such label; IoU 0.7: a moved box is injected at 0.15-0.6). ``yolo-tl runs``
shows the runs side by side; its table goes into benchmarks/RESULTS_label_recovery.md. Opt-in: tens
of CPU minutes; exit 2 without ../shared.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.bench_label_issues import SHARED, SOURCES, WEIGHTS, true_boxes
from benchmarks.common import command_line, fmt, written_by

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


def _pixels(line: str, w: int, h: int) -> tuple:
    """(class, x1, y1, x2, y2) in pixels from one YOLO label line."""
    c, cx, cy, bw, bh = line.split()
    cx, cy, bw, bh = float(cx) * w, float(cy) * h, float(bw) * w, float(bh) * h
    return (int(c), cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2)


def _read_labels(root: Path, img: dict) -> list[tuple]:
    """(class, x1, y1, x2, y2) in pixels, from a YOLO label file."""
    lines = _label_file(root, img["path"]).read_text().split("\n")
    return [_pixels(line, img["width"], img["height"]) for line in lines if line.strip()]


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


def fix_outcomes(fixes_json: Path, train: list[dict]) -> dict[str, dict[str, int]]:
    """The accepted fixes of ``fixes.json`` against the injection record, per kind: ``right`` (undoes an
    injected mistake: the dropped box added back or the true box restored at IoU >= 0.7, the true class
    given back, the box on background removed), ``wrong`` (changes a label that was right, or undoes a
    mistake wrongly), and for added boxes ``unlabelled``: no dropped box there and no label under it either,
    so a real object the human labels miss too (BCCD leaves many red cells unlabelled) or a wrong box."""
    from benchmarks.label_issues_compare import _iou

    by_name = {Path(img["path"]).name: img for img in train}
    out: dict[str, dict[str, int]] = {}
    for fx in json.loads(fixes_json.read_text())["fixes"]:
        img = by_name[Path(fx["image"]).name]
        after = _pixels(fx["after"], img["width"], img["height"]) if fx["after"] else None
        kind = fx["issue"]
        if kind == "missing":
            if any(d[0] == after[0] and _iou(after[1:], d[1:]) >= SAME for d in img["dropped"]):
                verdict = "right"
            elif any(_iou(after[1:], b[1:]) >= 0.5 for b in img["labels"]):
                verdict = "wrong"
            else:
                verdict = "unlabelled"
        else:
            tag, truth = img["tags"][fx["box"]], img["truth"][fx["box"]]
            if kind == "wrong_class":
                ok = tag == "wrong_class" and truth[0] == after[0]
            elif kind == "badly_placed":
                ok = tag == "badly_placed" and _iou(after[1:], truth[1:]) >= SAME
            else:
                ok = tag == "spurious"
            verdict = "right" if ok else "wrong"
        counts = out.setdefault(kind, {"right": 0, "wrong": 0, "unlabelled": 0})
        counts[verdict] += 1
    return out


def _undone(img: dict, undo: Callable[[int, str], bool]) -> list:
    """``img``'s labels with each injected mistake ``undo(i, tag)`` picks undone: the true box restored, a box
    on background removed."""
    out = []
    for i, (label, tag, truth) in enumerate(zip(img["labels"], img["tags"], img["truth"])):
        if tag is None or not undo(i, tag):
            out.append(label)
        elif truth is not None:
            out.append(truth)
    return out


def random_review(images: list[dict], k: int, seed: int) -> tuple[list[dict], int]:
    """``k`` labelled boxes drawn at random; each injected mistake among them corrected. Returns the
    images with ``reviewed`` labels and how many were corrected."""
    boxes = [(n, i) for n, img in enumerate(images) for i in range(len(img["labels"]))]
    chosen = set(random.Random(seed).sample(boxes, min(k, len(boxes))))
    for n, img in enumerate(images):
        img["reviewed"] = _undone(img, lambda i, tag, n=n: (n, i) in chosen)
    fixed = sum(images[n]["tags"][i] is not None for n, i in chosen)
    return images, fixed


ORACLE = {"oracle_class_place": ("wrong_class", "badly_placed"), "oracle_missing_spurious": ("missing", "spurious")}


def oracle_fix(images: list[dict], kinds: tuple[str, ...], key: str) -> None:
    """Every injected mistake of ``kinds`` undone (the true box restored, a dropped box added back, a box on
    background removed), the others left: ``img[key]``. The ceiling for a fixer of those kinds."""
    for img in images:
        img[key] = _undone(img, lambda i, tag: tag in kinds) + (list(img["dropped"]) if "missing" in kinds else [])


def _train(data: Path, name: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """One run of the recipe; a finished run of that name in ``work`` (an interrupted benchmark) is reused."""
    import yolo_tl

    done = work / "runs" / name / "run.json"
    record = json.loads(done.read_text()) if done.is_file() else {}
    if record.get("status") == "finished":
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
    find_s = round(time.perf_counter() - t, 1)
    accepted, outcomes = {}, {}
    arms = {"fixed_top_k": {"accept_top": injected}}
    for above in args.above:
        arms[f"fixed_above_{above:g}"] = {"accept_above": above}
    for arm, how in arms.items():
        if (work / arm).exists():  # this benchmark's own output, from an interrupted run
            shutil.rmtree(work / arm)
        accepted[arm] = len(yolo_tl.fix_labels(name, work / arm, **how).applied)
        outcomes[arm] = fix_outcomes(work / arm / "fixes.json", train)
    _, corrected = random_review(train, injected, args.seed)
    random_yaml = _copy_dataset(work / "corrupted", work / "fixed_random")
    _write_labels(work / "fixed_random", train, "reviewed")
    runs += [_train(work / arm / "data.yaml", arm, args, work) for arm in arms]
    runs.append(_train(random_yaml, "fixed_random", args, work))
    for arm, kinds in (ORACLE.items() if args.oracle else ()):
        oracle_fix(train, kinds, arm)
        yaml = _copy_dataset(work / "corrupted", work / arm)
        _write_labels(work / arm, train, arm)
        runs.append(_train(yaml, arm, args, work))

    for r in runs:
        r["map50"], r["map50_95"] = _score(r["best"], clean_yaml, args.imgsz)
        r["mistakes_left"] = mistakes_left(work / r["name"], train)
        print(json.dumps(r), file=sys.stderr, flush=True)
    by = {r["name"]: r for r in runs}
    lost = by["clean"]["map50_95"] - by["corrupted"]["map50_95"]

    def recovered(n: str) -> float | None:
        return (by[n]["map50_95"] - by["corrupted"]["map50_95"]) / lost if lost > 0 else None

    table = subprocess.run([sys.executable, "-m", "yolo_tl", "runs", str(work / "runs")], capture_output=True,
                           text=True, env={**os.environ, "COLUMNS": "80"}).stdout
    settings = {"epochs": args.epochs, "imgsz": args.imgsz, "rate": args.rate, "folds": args.folds,
                "seed": args.seed, **({"above": ",".join(f"{a:g}" for a in args.above)} if args.above else {}),
                **({"oracle": ""} if args.oracle else {})}
    return {"settings": settings,
            "train_images": len(train), "true_boxes": sum(len(i["boxes"]) for i in train), "injected": injected,
            "accepted": accepted, "random_corrected": corrected, "fix_outcomes": outcomes, "suggestions": stored,
            "analysis": name,
            "find_s": find_s, "runs": runs, "recovered": {r["name"]: recovered(r["name"]) for r in runs[2:]},
            "lost": lost, "runs_table": table}


def write_markdown(res: dict[str, Any], out: Path, command: str) -> None:
    s = res["settings"]
    k = res["injected"]
    how = {"fixed_top_k": f"top K = {k} suggestions accepted (`--accept-top {k}`)",
           "fixed_random": f"K = {k} random label boxes reviewed by an oracle",
           "clean": "the human labels", "corrupted": "with the injected mistakes",
           "oracle_class_place": "every wrong class and badly placed box undone (ceiling)",
           "oracle_missing_spurious": "every dropped box added back, every box on background removed (ceiling)"}
    for above in s.get("above", "").split(",") if s.get("above") else []:
        how[f"fixed_above_{above}"] = f"suggestions scored >= {above} accepted (`--accept-above {above}`)"
    fixes = {**res["accepted"], "fixed_random": f"{res['random_corrected']} corrected"}
    lines = [
        "# Fixing the suspects: how much of the lost mAP comes back", "", written_by(command), "",
        f"BCCD train split: {res['train_images']} photos, {res['true_boxes']} human boxes; {k} mistakes injected "
        f"(rate {s['rate']} per kind, seed {s['seed']}); val keeps its human labels. Every run: COCO backbone "
        f"(yolov5n v6.1), yolo-tl's defaults, {s['epochs']} epochs, imgsz {s['imgsz']}, seed {s['seed']}. "
        f"Suspects from `analyze --split train --folds {s['folds']}` (each image predicted by the fold model "
        f"that did not train on it; {res['find_s']} s, fold runs finished earlier in the work folder reused): "
        f"{res['suggestions']} suggestions "
        "stored, accepted with `fix_labels` (one per label box).", "",
        "| train labels | | fixes | mistakes left | val mAP50 | val mAP50-95 | recovered 50-95 | recovered 50 "
        "| train s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    by = {r["name"]: r for r in res["runs"]}
    lost50 = by["clean"]["map50"] - by["corrupted"]["map50"]
    for r in res["runs"]:
        n = r["name"]
        rec50 = (r["map50"] - by["corrupted"]["map50"]) / lost50 if n in res["recovered"] and lost50 > 0 else None
        lines.append(f"| {n} | {how.get(n, '')} | {fixes.get(n, '') or ''} | {r['mistakes_left']} | "
                     f"{fmt(r['map50'])} | {fmt(r['map50_95'])} | {fmt(res['recovered'].get(n), 2)} | "
                     f"{fmt(rec50, 2)} | {r['train_s']:.0f} |")
    lines += ["", f"Lost to the mistakes: {fmt(res['lost'])} mAP50-95, {fmt(lost50)} mAP50 (clean - corrupted). "
              "Recovered: (fixed - corrupted) / lost; goal >= 0.5 for the top K, and clearly more than the random "
              "review. "
              "Mistakes left: labels with no true box of their class at IoU >= 0.7 plus true boxes with no such "
              "label.", "",
              "What the accepted fixes did, against the injection record (right: undoes an injected mistake; "
              "wrong: changes a right label or undoes a mistake wrongly; unlabelled: an added box where neither "
              "the injected nor the human labels have one):", "",
              "| fixes | kind | right | wrong | unlabelled |", "|---|---|---:|---:|---:|"]
    for arm, kinds in res["fix_outcomes"].items():
        for kind, c in sorted(kinds.items()):
            lines.append(f"| {arm} | {kind} | {c['right']} | {c['wrong']} | {c['unlabelled'] or ''} |")
    lines += ["", "`yolo-tl runs` on the runs (scores there are each run's own val at the end of training):", "",
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
    ap.add_argument("--above", type=lambda v: [float(x) for x in v.split(",")], default=[],
                    help="also fix the suggestions scored at or above each of these scores, comma-separated "
                         "(fix-labels --accept-above S), and retrain")
    ap.add_argument("--oracle", action="store_true",
                    help="also train with the injected wrong-class and badly-placed mistakes undone, and with the "
                         "missing and spurious ones undone: what a perfect fixer of those kinds would recover")
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
