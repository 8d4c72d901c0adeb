"""Transfer-learning techniques side by side on the demo's synthetic source -> target pair.

    python -m benchmarks.bench_transfer [--images 120 --source-epochs 10 --epochs 6 --imgsz 96]

1. a source model: yolov8n.yaml trained on the synthetic source task (cross, ring, hexagon, crescent);
2. the target task: the sample's classes (circle, square, triangle, star) on images that also hold
   source objects, unlabelled (``yolo_tl.demo.sample.generate_mixed_target``);
3. from the same source weights, seed and epochs: freeze none, freeze backbone, two-stage, gradual
   (2 steps), ``--lr-factors backbone=0.1``, ``--keep-classes`` (backbone frozen, like plain transfer);
4. each result evaluated with Ultralytics' validator on the target val split and on the *source*
   task's val split (by class name; a model without the source classes scores 0 there).

Writes ``benchmarks/RESULTS_transfer.md`` (a table and the settings) and prints the rows as JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import command_line, epoch_timer, fmt, written_by


def run(work: Path, *, images: int, source_epochs: int, epochs: int, imgsz: int, batch: int,
        seed: int) -> dict[str, Any]:
    import yolo_tl
    from yolo_tl.demo.sample import generate_mixed_target, generate_source_task

    src = generate_source_task(work / "source_task", n_images=images)
    tgt = generate_mixed_target(work / "target_task", n_images=images)
    src_yaml = Path(yolo_tl.prepare(src.voc_dir, work / "data" / "source", overwrite=True).to_dict()["data_yaml"])
    tgt_yaml = Path(yolo_tl.prepare(tgt.voc_dir, work / "data" / "target", overwrite=True).to_dict()["data_yaml"])
    common = {"imgsz": imgsz, "batch": batch, "workers": 0, "seed": seed, "project": work / "runs",
              "extra": {"plots": False, "warmup_epochs": 1.0}}
    t = time.perf_counter()
    source = yolo_tl.finetune(src_yaml, weights="yolov8n.yaml", freeze="none", epochs=source_epochs,
                              name="source", **{**common, "extra": {**common["extra"], "val": False}})
    source_s = time.perf_counter() - t

    def score(weights: Path, data: Path) -> tuple[float, float] | None:
        try:
            m = yolo_tl.evaluate(weights, data, imgsz=imgsz, batch=batch, workers=0).metrics
        except yolo_tl.YoloTLError:
            return None  # the model does not know these classes
        return m.map50, m.map50_95

    src_ref = score(source.best, src_yaml)
    configs = [
        ("freeze none", {"freeze": "none"}),
        ("freeze backbone", {"freeze": "backbone"}),
        ("two-stage", {"freeze": "backbone", "unfreeze_at": epochs // 2}),
        ("gradual (2 steps)", {"freeze": "backbone", "unfreeze_at": [epochs // 3, 2 * epochs // 3]}),
        ("--lr-factors backbone=0.1", {"freeze": "none", "lr_factors": "backbone=0.1"}),
        ("--keep-classes", {"freeze": "backbone", "keep_classes": True}),
        # not the default: how much of the gap is the weak source model's few boxes above 0.5
        ("--keep-classes --pseudo-conf 0.25 (diagnostic)", {"freeze": "backbone", "keep_classes": True,
                                                            "pseudo_conf": 0.25}),
    ]
    rows = []
    for i, (label, kwargs) in enumerate(configs):
        times: list[float] = []
        t = time.perf_counter()
        slug = "".join(c if c.isalnum() else "_" for c in label.split("(")[0].strip("- ")).strip("_")
        res = yolo_tl.finetune(tgt_yaml, weights=source.best, epochs=epochs, name=f"{i}_{slug}",
                               callbacks=epoch_timer(times), **kwargs, **common)
        wall = time.perf_counter() - t
        target = score(res.best, tgt_yaml)
        after = score(res.best, src_yaml)
        kept = res.record.get("keep_classes") or {}
        rows.append({"row": label, "target_map50": target[0] if target else None,
                     "target_map50_95": target[1] if target else None,
                     "source_map50_95": after[1] if after else 0.0, "wall_s": round(wall, 1),
                     "epoch_s": round(sum(times) / len(times), 2) if times else None,
                     "pseudo_labels": kept.get("pseudo_labels")})
    return {"settings": {"images": images, "source_epochs": source_epochs, "epochs": epochs, "imgsz": imgsz,
                         "batch": batch, "seed": seed},
            "source": {"map50": src_ref[0] if src_ref else None, "map50_95": src_ref[1] if src_ref else None,
                       "wall_s": round(source_s, 1)},
            "rows": rows}


def write_markdown(result: dict[str, Any], out: Path, command: str) -> None:
    s, src = result["settings"], result["source"]
    plain = next(r for r in result["rows"] if r["row"] == "freeze backbone")
    keep = next(r for r in result["rows"] if r["row"] == "--keep-classes")
    diag = next((r for r in result["rows"] if "diagnostic" in r["row"]), None)

    lines = [
        "# Transfer-learning techniques, side by side", "",
        written_by(command),
        "",
        f"Synthetic source task ({s['images']} images: cross, ring, hexagon, crescent) -> target task "
        f"({s['images']} images: circle, square, triangle, star, with source objects in the pictures, "
        f"unlabelled). Source model: yolov8n.yaml trained {s['source_epochs']} epochs; its source-task val "
        f"mAP50 {fmt(src['map50'])}, mAP50-95 {fmt(src['map50_95'])}. Every row starts from that model, same "
        f"seed ({s['seed']}), {s['epochs']} epochs at imgsz {s['imgsz']}, batch {s['batch']}, optimizer auto.",
        "",
        "| row | target mAP50 | target mAP50-95 | source-task mAP50-95 after | wall s | epoch s |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['row']} | {fmt(r['target_map50'])} | {fmt(r['target_map50_95'])} | "
                     f"{fmt(r['source_map50_95'])} | {r['wall_s']} | {r['epoch_s']} |")
    keep_src = (keep["source_map50_95"] or 0) / src["map50_95"] if src["map50_95"] else None
    keep_tgt = (keep["target_map50_95"] or 0) / plain["target_map50_95"] if plain["target_map50_95"] else None
    lines += [
        "",
        "Source-task mAP50-95 is Ultralytics' validator on the source task's val split, classes matched by "
        "name; a model that no longer has the source classes scores 0 by definition.",
        "",
        f"**--keep-classes goal** (>= 80% of the source model's source-task mAP50-95, >= 90% of plain "
        f"transfer's target mAP50-95): source kept {fmt(keep_src)} (goal 0.80), target {fmt(keep_tgt)} of "
        f"plain transfer (goal 0.90). Pseudo-labels: {json.dumps(keep['pseudo_labels'])}.",
        "" if diag is None else
        f"Diagnostic row (--pseudo-conf 0.25, not the default): pseudo-labels {json.dumps(diag['pseudo_labels'])}.",
        "",
        "GPU / BCCD imgsz 640 table: not run, no device was lent to this session.",
    ]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_transfer", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=120)
    ap.add_argument("--source-epochs", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--imgsz", type=int, default=96)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS_transfer.md"))
    ap.add_argument("--workdir", type=Path, default=None, help="keep the data and runs here (default: a temp dir)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="yolo-tl-transfer-") as tmp:
        work = args.workdir.resolve() if args.workdir else Path(tmp)
        result = run(work, images=args.images, source_epochs=args.source_epochs, epochs=args.epochs,
                     imgsz=args.imgsz, batch=args.batch, seed=args.seed)
    command = command_line("bench_transfer", result["settings"])
    write_markdown(result, args.out, command)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
