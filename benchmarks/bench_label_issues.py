"""Injected label mistakes in real datasets: how well three scorers rank them.

    python -m benchmarks.bench_label_issues [--datasets bccd,fruits] [--epochs 12] [--imgsz 320]
                                            [--rate 0.06] [--seed 0] [--work DIR] [--fit]

BCCD and fruits_nuts (../shared/datasets) are prepared with ``yolo_tl.prepare`` into a work folder;
all their images are pooled and seeded mistakes injected (``label_issues_compare.inject``: a share
``--rate`` of the boxes dropped, as many given another class, as many shifted or scaled, and as many
boxes again added on background). The images are split into two folds; a model trained on the
corrupted labels of one fold predicts the other, so every image gets predictions from a model that
never saw its labels. The start weights are ../shared/weights/yolov5n-v6.1-coco.pt when
``yolo_tl.model.classic_yolov5`` (the classic-checkpoint converter) is installed, else
``yolov8n.yaml`` (random weights): the table says which.

Then the same predictions (confidence >= 0.05) go to our scorer, cleanlab's ObjectLab and FiftyOne
Brain's ``compute_mistakenness``; per kind: the AP of each ranking of injected mistakes and the
recall at K = number injected. ``--fit`` fits our score's calibration on these runs and prints the
constants for ``label_issues.CALIBRATION``. The reliability table is computed with each dataset's
calibration fitted on the other dataset. Predictions are cached in the work folder (``--work``), so
re-scoring skips the training. Writes benchmarks/RESULTS_label_issues.md. Opt-in: CPU minutes.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import fmt, written_by

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
WEIGHTS = SHARED / "weights" / "yolov5n-v6.1-coco.pt"
SOURCES = {"bccd": SHARED / "datasets" / "bccd_voc" / "BCCD",
           "fruits": SHARED / "datasets" / "fruits_nuts_coco" / "data" / "trainval.json"}
PRED_CONF = 0.05


def start_weights() -> str:
    if WEIGHTS.is_file() and importlib.util.find_spec("yolo_tl.model.classic_yolov5") is not None:
        return str(WEIGHTS)
    return "yolov8n.yaml"


def true_boxes(data_yaml: Path) -> tuple[list[dict], list[str]]:
    from yolo_tl.dataset.formats.yolo import load_data_yaml, read_yolo_split
    from yolo_tl.dataset.images import read_image_info

    data = load_data_yaml(data_yaml)
    images = []
    for split in ("train", "val", "test"):
        if split not in data.entries:
            continue
        for path, boxes in read_yolo_split(data, split):
            info = read_image_info(path)
            w, h = info.width, info.height
            images.append({"path": str(path), "split": split, "width": w, "height": h,
                           "boxes": [(c, (cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h)
                                     for c, cx, cy, bw, bh in boxes]})
    return images, data.names


def _write_corrupted(images: list[dict], names: list[str], root: Path) -> None:
    """images/all/ (hard links) and labels/all/ with the injected labels, under ``root``."""
    from yolo_tl.dataset.boxes import clip_xyxy, format_yolo_line, xyxy_to_yolo
    from yolo_tl.dataset.output import place_image

    (root / "images" / "all").mkdir(parents=True)
    (root / "labels" / "all").mkdir(parents=True)
    for n, img in enumerate(images):
        src = Path(img["path"])
        dst = root / "images" / "all" / f"{n:05d}{src.suffix}"
        place_image(src, dst, "hardlink", truncated_jpeg=False)
        img["work_path"] = str(dst)
        lines = [format_yolo_line(c, xyxy_to_yolo(clip_xyxy(tuple(b), img["width"], img["height"])[0],
                                                  img["width"], img["height"])) for c, *b in img["labels"]]
        (root / "labels" / "all" / f"{n:05d}.txt").write_text("".join(x + "\n" for x in lines))


def _predict(weights: Path, images: list[dict], names: list[str], imgsz: int) -> None:
    from yolo_tl.analysis.collect import load_model, predict_boxes

    model = load_model(weights)
    index = {name: k for k, name in enumerate(names)}
    paths = [Path(img["work_path"]) for img in images]
    for img, (_, boxes, shape) in zip(images, predict_boxes(model, paths, conf=PRED_CONF, imgsz=imgsz, batch=8)):
        h, w = shape if shape else (img["height"], img["width"])
        img["preds"] = [(index[label], x * w, y * h, (x + bw) * w, (y + bh) * h, conf)
                        for label, (x, y, bw, bh), conf in (boxes or []) if label in index]


def prepare_dataset(name: str, work: Path, *, epochs: int, imgsz: int, rate: float, seed: int,
                    weights: str) -> dict[str, Any]:
    """Inject, train two folds, predict each held-out fold; cached as ``work/<name>/cache.json``."""
    import random

    import yaml

    import yolo_tl
    from benchmarks.label_issues_compare import inject

    cache = work / name / "cache.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    report = yolo_tl.prepare(SOURCES[name], work / name / "prepared", overwrite=True).to_dict()
    images, names = true_boxes(Path(report["data_yaml"]))
    inject(images, len(names), seed=seed, rate=rate)
    root = work / name / "corrupted"
    _write_corrupted(images, names, root)
    order = list(range(len(images)))
    random.Random(seed).shuffle(order)
    folds = [sorted(order[0::2]), sorted(order[1::2])]
    t0 = time.perf_counter()
    for k, held in enumerate(folds):
        train = [images[i]["work_path"] for i in folds[1 - k]]
        (root / f"train{k}.txt").write_text("".join(p + "\n" for p in train))
        doc = {"path": str(root), "train": f"train{k}.txt", "val": f"train{k}.txt", "names": dict(enumerate(names))}
        (root / f"fold{k}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        res = yolo_tl.finetune(root / f"fold{k}.yaml", weights=weights, epochs=epochs, imgsz=imgsz, batch=16,
                               workers=0, seed=seed, project=work / name / "runs", name=f"fold{k}",
                               extra={"plots": False, "val": False})
        _predict(res.best, [images[i] for i in held], names, imgsz)
    result = {"dataset": name, "names": names, "images": images, "weights": weights, "epochs": epochs,
              "imgsz": imgsz, "rate": rate, "seed": seed, "train_s": round(time.perf_counter() - t0, 1)}
    cache.write_text(json.dumps(result))
    return result


def score(result: dict[str, Any], calibration=None) -> dict[str, Any]:
    from benchmarks import label_issues_compare as cmp

    images, names = result["images"], result["names"]
    methods: dict[str, Any] = {}
    methods["yolo-tl"], feats = cmp.ours(images, calibration)
    methods.update(cmp.cleanlab_scores(images, len(names)))
    try:
        methods["FiftyOne Brain"] = cmp.fiftyone_scores(images, names)
    except Exception as err:  # noqa: BLE001 - a broken database must not lose the other rows
        print(f"FiftyOne Brain failed: {err}", file=sys.stderr)
    return {"rows": cmp.table(methods, images), "feats": feats, "ours": methods["yolo-tl"]}


def setup(r0: dict[str, Any]) -> str:
    """The paragraph that says what the predictions came from."""
    if r0["epochs"] == 0:
        return ("No training (`--simulated`): `label_issues_compare.simulate` makes 60 images of 8 boxes "
                "(640x480, three classes); a simulated detector finds 90 % of the true boxes (4 px jitter, 7 % "
                "with a random class, confidence ~ Beta(5, 1.5)) and adds about one false positive per image; "
                f"injected: a share {r0['rate']} of the boxes each dropped / given another class / shifted or "
                "scaled, as many added on background. This checks the machinery and the scorers' logic on "
                "predictions whose errors are known; it is not a measurement on a trained model.")
    weights = Path(r0["weights"]).name
    kind = (" (random weights: the classic-checkpoint converter is not installed, so no pretrained features)"
            if r0["weights"].endswith(".yaml") else " (COCO-pretrained)")
    return (f"Start weights: `{weights}`{kind}; {r0['epochs']} epochs, imgsz {r0['imgsz']}, two folds (each image "
            "predicted by the model trained on the other fold), predictions at confidence >= "
            f"{PRED_CONF}; injected: a share {r0['rate']} of the boxes each dropped / given another class / "
            f"shifted or scaled, as many added on background (seed {r0['seed']}).")


def write_markdown(results: list[dict[str, Any]], scored: list[dict[str, Any]], reliability: list[dict],
                   fitted: dict[str, Any], out: Path, command: str) -> None:
    r0 = results[0]
    lines = [
        "# Label mistakes: injected, then found", "",
        written_by(command), "",
        setup(r0), "",
        "AP: average precision of the ranking of injected mistakes of that kind (an injected mistake that "
        "a method never names counts as not found); R@K: recall among the top K, K = number injected.", "",
    ]
    for res, sc in zip(results, scored):
        lines += [f"## {res['dataset']} ({len(res['images'])} images, training {res['train_s']} s)", "",
                  "| method | kind | injected | candidates | AP | R@K |", "|---|---|---:|---:|---:|---:|"]
        lines += [f"| {r['method']} | {r['kind']} | {r['injected']} | {r['candidates']} | {fmt(r['ap'])} | "
                  f"{fmt(r['recall_at_k'])} |" for r in sc["rows"]]
        means = {}
        for r in sc["rows"]:
            if r["ap"] is not None:
                means.setdefault(r["method"], []).append(r["ap"])
        lines += ["", "Mean AP over kinds: " + ", ".join(f"{m} {sum(v) / len(v):.3f}" for m, v in means.items()), ""]
    lines += ["## Reliability of our score", "",
              "Each dataset scored with the calibration fitted on the other dataset(s) (out of sample).", "",
              "| score bin | suspects | mean score | share real |", "|---|---:|---:|---:|"]
    lines += [f"| {r['bin']} | {r['n']} | {fmt(r['mean_score'])} | {fmt(r['share_real'])} |" for r in reliability]
    lines += ["", "Calibration fitted on all datasets of this run (`--fit`):", "", "```",
              json.dumps(fitted, indent=1), "```", ""]
    out.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--datasets", default="bccd,fruits")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--rate", type=float, default=0.06)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=None)
    p.add_argument("--fit", action="store_true", help="print the fitted calibration constants")
    p.add_argument("--simulated", action="store_true",
                   help="no training: a simulated detector on generated boxes (seeds 1 and 5), to check the machinery")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "RESULTS_label_issues.md")
    args = p.parse_args(argv)
    names = [d for d in args.datasets.split(",") if d]
    if not args.simulated and not all(SOURCES[d].exists() for d in names):
        print(f"skipped: ../shared datasets not found under {SHARED}", file=sys.stderr)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-label-issues-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("YOLO_OFFLINE", "true")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    os.environ.setdefault("FIFTYONE_DATABASE_DIR", str(work / "fiftyone-db"))
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(work / "ultralytics"))
    from benchmarks import label_issues_compare as cmp
    from yolo_tl.analysis.metrics.label_issues import reliability_table

    if args.simulated:
        results = [{"dataset": f"simulated detector, seed {s}", "names": ["a", "b", "c"], "images": cmp.simulate(s),
                    "weights": "none (simulated predictions)", "epochs": 0, "imgsz": 0, "rate": 0.08, "seed": s,
                    "train_s": 0} for s in (1, 5)]
    else:
        weights = start_weights()
        results = [prepare_dataset(d, work, epochs=args.epochs, imgsz=args.imgsz, rate=args.rate, seed=args.seed,
                                   weights=weights) for d in names]
    scored = [score(r) for r in results]
    feats_all = [(f, r["images"]) for r, s in zip(results, scored) for f in [s["feats"]]]
    fitted = _fit_all(feats_all)
    scores, flags = [], []
    for k, res in enumerate(results):  # each dataset scored with the calibration fitted on the others
        others = [x for j, x in enumerate(feats_all) if j != k] or [feats_all[k]]
        cands, _ = cmp.ours(res["images"], _fit_all(others))
        s, f = cmp.real_flags(cands, res["images"])
        scores += s
        flags += f
    reliability = reliability_table(scores, flags)
    if args.fit:
        print(json.dumps(fitted, indent=1))
    command = "python -m benchmarks.bench_label_issues " + " ".join(argv if argv is not None else sys.argv[1:])
    write_markdown(results, scored, reliability, fitted, args.out, command.strip())
    for sc in scored:
        for r in sc["rows"]:
            print(json.dumps(r))
    print(f"work folder: {work}; wrote {args.out}", file=sys.stderr)
    return 0


def _fit_all(feats_by_dataset) -> dict[str, Any]:
    """One calibration fitted on the candidates of several datasets together."""
    from benchmarks import label_issues_compare as cmp

    images: list[dict] = []
    feats: list[tuple] = []
    for f, imgs in feats_by_dataset:
        feats += [(k, x, n + len(images), t, i) for k, x, n, t, i in f]
        images += imgs
    return cmp.fit_calibration(feats, images)


if __name__ == "__main__":
    sys.exit(main())
