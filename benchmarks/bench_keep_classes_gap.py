"""Where the --keep-classes target gap comes from, on a kept ``bench_transfer`` work folder.

    python -m benchmarks.bench_transfer ... --workdir W     # keeps W/data and W/runs/source
    python -m benchmarks.bench_keep_classes_gap W [--imgsz 128]

Same source model, data and seed as the table; backbone frozen. Three runs: --keep-classes at plain
transfer's learning rate (what optimizer=auto picks for 4 classes instead of 8), and plain transfer
and --keep-classes at twice the epochs. Prints JSON: target / source-task mAP50-95, seconds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import yolo_tl

    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_keep_classes_gap", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--imgsz", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=10, help="the table's epochs (the long runs use twice)")
    args = ap.parse_args(argv)
    w = args.workdir.resolve()
    src, tgt = w / "data/source/data.yaml", w / "data/target/data.yaml"
    start = w / "runs/source/weights/best.pt"

    def score(weights: Path, data: Path) -> float:
        try:
            return round(yolo_tl.evaluate(weights, data, imgsz=args.imgsz, batch=16, workers=0).metrics.map50_95, 3)
        except yolo_tl.YoloTLError:
            return 0.0  # the model does not know those classes

    base = {"plots": False, "warmup_epochs": 1.0}
    auto_lr_4 = round(0.002 * 5 / (4 + 4), 6)  # Ultralytics' optimizer=auto rate for 4 classes
    runs = [
        ("keep, lr of plain transfer", dict(epochs=args.epochs, keep_classes=True, extra={
            **base, "optimizer": "AdamW", "lr0": auto_lr_4, "momentum": 0.9, "warmup_bias_lr": 0.0})),
        ("plain, 2x epochs", dict(epochs=2 * args.epochs, extra=base)),
        ("keep, 2x epochs", dict(epochs=2 * args.epochs, keep_classes=True, extra=base)),
    ]
    out = {}
    for name, kw in runs:
        t = time.perf_counter()
        r = yolo_tl.finetune(tgt, weights=start, freeze="backbone", imgsz=args.imgsz, batch=16, workers=0, seed=0,
                             project=w / "diag", name=name.replace(" ", "_").replace(",", ""), **kw)
        out[name] = {"target_map50_95": score(r.best, tgt), "source_map50_95": score(r.best, src),
                     "seconds": round(time.perf_counter() - t, 1)}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
