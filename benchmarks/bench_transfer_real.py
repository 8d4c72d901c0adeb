"""Transfer from real COCO features on real photos: the fine-tuning recipes side by side.

    python -m benchmarks.bench_transfer_real [--datasets bccd,fruits] [--epochs 10] [--imgsz 320]

The start is ../shared/weights/yolov5n-v6.1-coco.pt, the official YOLOv5n COCO checkpoint (classic
YOLOv5 format, carried into Ultralytics' yolov5nu model by ``yolo_tl.model.classic_yolov5``: backbone
and neck copied bit-exactly, a new head). The data are the two real datasets of ../shared/datasets,
prepared with ``yolo_tl.prepare``: BCCD (its own VOC splits, 205 train / 87 val) and fruits_nuts (18
images, split 80/20 by prepare). Each recipe starts from the same weights, same seed, same epochs
and imgsz, on the CPU; "from scratch" is ``yolov5nu.yaml`` with nothing carried. Scores are
Ultralytics' validator on the val split. Then ``--keep-classes``: the BCCD model fine-tuned onto
fruits, scored on both tasks.

Writes ``benchmarks/RESULTS_transfer_real.md`` and prints the rows as JSON. Opt-in: tens of CPU
minutes; skips (exit 2) when ../shared is absent.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import command_line, epoch_timer, fmt, written_by

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
WEIGHTS = SHARED / "weights" / "yolov5n-v6.1-coco.pt"
SOURCES = {"bccd": SHARED / "datasets" / "bccd_voc" / "BCCD",
           "fruits": SHARED / "datasets" / "fruits_nuts_coco" / "data" / "trainval.json"}
RECIPES: list[tuple[str, dict[str, Any]]] = [
    ("from scratch (yolov5nu.yaml)", {"weights": "yolov5nu.yaml", "freeze": "none"}),
    ("freeze none", {"freeze": "none"}),
    ("freeze backbone", {"freeze": "backbone"}),
    ("two-stage (unfreeze at 1/2)", {"freeze": "backbone", "unfreeze_at": "half"}),
    ("gradual (2 steps)", {"freeze": "backbone", "unfreeze_at": "thirds"}),
    ("--lr-factors backbone=0.1", {"freeze": "none", "lr_factors": "backbone=0.1"}),
    ("freeze backbone, Ultralytics' nbs 64 + 3 warm-up epochs",
     {"freeze": "backbone", "schedule": {"nbs": 64, "warmup_epochs": 3.0}}),
    ("freeze backbone, nbs 64, no warm-up", {"freeze": "backbone", "schedule": {"nbs": 64, "warmup_epochs": 0.0}}),
    ("freeze backbone, nbs = batch, 3 warm-up epochs", {"freeze": "backbone", "schedule": {"warmup_epochs": 3.0}}),
]


def _resolve(kwargs: dict[str, Any], epochs: int) -> dict[str, Any]:
    out = dict(kwargs)
    if out.get("unfreeze_at") == "half":
        out["unfreeze_at"] = max(1, epochs // 2)
    elif out.get("unfreeze_at") == "thirds":
        out["unfreeze_at"] = [max(1, epochs // 3), max(2, 2 * epochs // 3)]
    return out


def _score(weights: Path, data: Path, imgsz: int, batch: int) -> tuple[float, float] | None:
    import yolo_tl

    try:
        m = yolo_tl.evaluate(weights, data, imgsz=imgsz, batch=batch, workers=0).metrics
    except yolo_tl.YoloTLError:
        return None
    return m.map50, m.map50_95


def run(work: Path, *, datasets: list[str], epochs: int, imgsz: int, batch: int, seed: int, nbs: int,
        warmup_epochs: float, recipes: list[int] | None = None, keep_source: Path | None = None) -> dict[str, Any]:
    import yolo_tl

    data = {}
    for name in [*datasets, *(["bccd"] if keep_source and "bccd" not in datasets else [])]:
        report = yolo_tl.prepare(SOURCES[name], work / "data" / name, overwrite=True).to_dict()
        data[name] = Path(report["data_yaml"])
    schedule = {"nbs": nbs, "warmup_epochs": warmup_epochs}
    common = {"epochs": epochs, "imgsz": imgsz, "batch": batch, "workers": 0, "seed": seed,
              "project": work / "runs", "extra": {"plots": False, **schedule}}
    rows = []
    best_of: dict[str, Path] = {}
    if keep_source is not None:
        best_of["bccd"] = keep_source
    for name, data_yaml in data.items():
        if name not in datasets:
            continue
        for i, (label, kwargs) in enumerate(RECIPES):
            if recipes is not None and i not in recipes:
                continue
            kwargs = {"weights": WEIGHTS, **_resolve(kwargs, epochs)}
            run_common = dict(common)
            if "schedule" in kwargs:  # Ultralytics' own values (yolo-tl's defaults differ), or one changed
                run_common["extra"] = {**common["extra"], **kwargs.pop("schedule")}
            times: list[float] = []
            t = time.perf_counter()
            res = yolo_tl.finetune(data_yaml, name=f"{name}_{i}", callbacks=epoch_timer(times), **kwargs,
                                   **run_common)
            wall = time.perf_counter() - t
            score = _score(res.best, data_yaml, imgsz, batch)
            if label == "freeze backbone":
                best_of[name] = res.best
            rows.append({"dataset": name, "recipe": label, "map50": score[0] if score else None,
                         "map50_95": score[1] if score else None, "wall_s": round(wall, 1),
                         "epoch_s": round(sum(times) / len(times), 2) if times else None})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    keep = None
    if "bccd" in data and "fruits" in data and "bccd" in best_of and "fruits" in {r["dataset"] for r in rows}:
        src = _score(best_of["bccd"], data["bccd"], imgsz, batch)
        res = yolo_tl.finetune(data["fruits"], weights=best_of["bccd"], freeze="backbone", keep_classes=True,
                               name="keep_classes", **common)
        plain = next(r for r in rows if r["dataset"] == "fruits" and r["recipe"] == "freeze backbone")
        on_src, on_tgt = _score(res.best, data["bccd"], imgsz, batch), _score(res.best, data["fruits"], imgsz, batch)
        keep = {"source_before": src, "source_after": on_src, "target": on_tgt,
                "plain_target": (plain["map50"], plain["map50_95"]),
                "pseudo_labels": (res.record.get("keep_classes") or {}).get("pseudo_labels")}
    return {"settings": {"datasets": ",".join(datasets), "epochs": epochs, "imgsz": imgsz, "batch": batch,
                         "seed": seed, "nbs": nbs, "warmup_epochs": warmup_epochs,
                         **({"recipes": ",".join(map(str, recipes))} if recipes is not None else {}),
                         **({"keep_source": str(keep_source)} if keep_source is not None else {})},
            "rows": rows, "keep_classes": keep}


def write_markdown(result: dict[str, Any], out: Path, command: str) -> None:
    s = result["settings"]

    lines = [
        "# Transfer from real COCO features on real photos", "",
        written_by(command), "",
        f"Start: `../shared/weights/yolov5n-v6.1-coco.pt` (official YOLOv5n COCO, carried into yolov5nu). "
        f"Every row: seed {s['seed']}, {s['epochs']} epochs, imgsz {s['imgsz']}, batch {s['batch']}, "
        f"nbs {s['nbs']} (an optimizer step every batch), {s['warmup_epochs']} warm-up epoch(s) unless the row "
        "says otherwise; Ultralytics' own are nbs 64 (a step every 64 images) and 3 warm-up epochs, which "
        "Ultralytics caps at epochs - 1 (so 1 of 2, 3 of 5); optimizer "
        "auto; scores by Ultralytics' validator on the val split.", "",
        "| dataset | recipe | mAP50 | mAP50-95 | wall s | epoch s |", "|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['dataset']} | {r['recipe']} | {fmt(r['map50'])} | {fmt(r['map50_95'])} | "
                     f"{r['wall_s']} | {r['epoch_s']} |")
    keep = result.get("keep_classes")
    if keep:
        before, after, tgt, plain = keep["source_before"], keep["source_after"], keep["target"], keep["plain_target"]
        kept = (after[1] / before[1]) if before and after and before[1] else None
        reach = (tgt[1] / plain[1]) if tgt and plain[1] else None
        lines += ["", "**--keep-classes** (BCCD model, backbone frozen, fine-tuned onto fruits): BCCD mAP50-95 "
                  f"{fmt(before[1] if before else None)} before, {fmt(after[1] if after else None)} after "
                  f"(kept {fmt(kept)}, goal 0.80); fruits mAP50-95 {fmt(tgt[1] if tgt else None)} vs plain "
                  f"transfer {fmt(plain[1])} ({fmt(reach)} of it, goal 0.90). "
                  f"Pseudo-labels: {json.dumps(keep['pseudo_labels'])}."]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_transfer_real", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="bccd,fruits")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nbs", type=int, default=16, help="nominal batch size (Ultralytics' default is 64)")
    ap.add_argument("--warmup-epochs", type=float, default=0.0,
                    help="Ultralytics' default is 3 (capped at epochs - 1)")
    ap.add_argument("--recipes", default=None, help="comma-separated row numbers of RECIPES to run (default: all)")
    ap.add_argument("--keep-source", type=Path, default=None,
                    help="the BCCD model for the --keep-classes row (default: this run's BCCD freeze backbone)")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS_transfer_real.md"))
    ap.add_argument("--workdir", type=Path, default=None, help="keep the data and runs here (default: a temp dir)")
    args = ap.parse_args(argv)
    if not WEIGHTS.is_file() or not all(p.exists() for p in SOURCES.values()):
        print(f"skipped: {SHARED} (weights and datasets) not found beside the repository", file=sys.stderr)
        return 2
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    with tempfile.TemporaryDirectory(prefix="yolo-tl-transfer-real-") as tmp:
        work = args.workdir.resolve() if args.workdir else Path(tmp)
        result = run(work, datasets=names, epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, seed=args.seed,
                     nbs=args.nbs, warmup_epochs=args.warmup_epochs,
                     recipes=[int(r) for r in args.recipes.split(",")] if args.recipes else None,
                     keep_source=args.keep_source.resolve() if args.keep_source else None)
    command = command_line("bench_transfer_real", result["settings"])
    write_markdown(result, args.out, command)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
