"""Export benchmark: CPU latency per image and mAP50-95 of PyTorch, ONNX Runtime and OpenVINO.

``python -m benchmarks.bench_export --weights best.pt --data data.yaml [--imgsz 320,640] [--runs 30]``
writes ``benchmarks/RESULTS_export.md`` (``--out`` to choose another file).

Each (format, imgsz) pair runs in a fresh process (``--worker``): ``yolo_tl.export`` with ``data``,
which validates the .pt and the export on the same split with the same settings and times both
(batch 1, median after warm-up, pre- and post-processing included). So every PyTorch figure has
its own row per process; the table shows the median of them. Without ``--weights``, yolov8n.yaml is
trained ``--train-epochs`` at imgsz 160 on the bundled sample (an untrained model's mAP is 0 and
would prove nothing about mAP parity).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FORMATS = ("onnx", "openvino")


def worker(spec: dict) -> dict:
    """One export with parity, in this process; the figures export.json records."""
    from yolo_tl.deploy.export import export

    t0 = time.perf_counter()
    report = export(spec["weights"], format=spec["format"], data=spec["data"], imgsz=spec["imgsz"],
                    out=spec["out"], latency_runs=spec["runs"], max_drop=1.0,
                    parity_images=spec.get("parity_images", 40), parity_conf=spec.get("parity_conf", 0.1))
    record = report.record
    return {"export_seconds": time.perf_counter() - t0, "parity": record["parity"], "versions": record["versions"]}


def train_sample_model(work: Path, epochs: int) -> tuple[Path, Path]:
    """yolov8n.yaml trained on the bundled sample at imgsz 160 (CPU): (best.pt, data.yaml)."""
    import yolo_tl
    from yolo_tl.demo.run import find_sample
    from yolo_tl.demo.sample import TARGET_CLASSES

    sample = find_sample(work)
    data = work / "sample_yolo"
    yolo_tl.prepare(sample / "voc", data, classes=list(TARGET_CLASSES))
    run = yolo_tl.finetune(data / "data.yaml", weights="yolov8n.yaml", freeze="none", epochs=epochs, imgsz=160,
                           batch=16, workers=0, project=work / "runs", name="shapes", extra={"plots": False})
    return run.best, data / "data.yaml"


def _run_worker(spec: dict, env: dict) -> dict:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_export", "--worker", json.dumps(spec)],
                          env=env, capture_output=True, text=True, timeout=1800)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("EXPORT_RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"worker {spec['format']} @ {spec['imgsz']} failed:\n{tail}")
    return json.loads(lines[-1][len("EXPORT_RESULT "):])


def _boxes(b: dict) -> str:
    corner = "-" if b["max_corner_px"] is None else f"{b['max_corner_px']:.3f}"
    return f"{corner} ({b['matched']} of {b['pt_boxes']}/{b['exported_boxes']} matched)"


def _speed(ratio: float) -> str:
    return f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower"


def render(results: list[dict], args: argparse.Namespace, weights: Path, data: Path, total: float) -> str:
    sizes = sorted({r["imgsz"] for r in results})
    versions: dict = {}
    for r in results:
        versions.update(r["versions"])
    lines = [
        "# Export benchmark: PyTorch vs ONNX Runtime vs OpenVINO on CPU",
        "",
        f"Written by `python -m benchmarks.bench_export {' '.join(args.argv)}` in {total / 60:.1f} min.",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), {platform.platform()}",
        f"- versions: {', '.join(f'{k} {v}' for k, v in sorted(versions.items()))}",
        f"- model: `{weights}`; split: val of `{data}`",
        "- latency: one `predict` call per image, batch 1, CPU, median of "
        f"{args.runs} after 3 warm-up calls, letterbox + NMS included (what a user waits for), the .pt and the "
        "export taking turns in blocks of 5 calls in one process; "
        "mAP: Ultralytics' validator, conf 0.001, IoU 0.7, square letterbox for every runtime; boxes: "
        "every val image at conf 0.1, matched per class",
        "",
        "| imgsz | runtime | ms / image (median) | vs PyTorch in the same process | mAP50 | mAP50-95 | "
        "mAP50-95 - PyTorch's | "
        "box-corner diff, same letterbox (px) | ... with predict's defaults (px) | raw output diff (rel) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in sizes:
        rows = [r for r in results if r["imgsz"] == size]
        pt_ms = statistics.median(r["parity"]["pt"]["latency_ms"] for r in rows)
        pt = rows[0]["parity"]["pt"]
        lines.append(f"| {size} | PyTorch (.pt) | {pt_ms:.1f} | 1.00x | {pt['map50']:.4f} | {pt['map50_95']:.4f} "
                     "| - | - | - | - |")
        for r in rows:
            p = r["parity"]
            ex = p["exported"]
            name = {"onnx": "ONNX Runtime", "openvino": f"OpenVINO ({p.get('openvino_cpu_precision', '?')})"}
            raw = f"{p['raw_output_max_rel_diff']:.1e}"
            if "raw_output_max_rel_diff_cpu_precision" in p:
                raw += f" (f32); {p['raw_output_max_rel_diff_cpu_precision']:.1e} (CPU default)"
            lines.append(
                f"| {size} | {name[r['format']]} | {ex['latency_ms']:.1f} | "
                f"{_speed(p['pt']['latency_ms'] / ex['latency_ms'])} (.pt {p['pt']['latency_ms']:.1f}) | "
                f"{ex['map50']:.4f} | {ex['map50_95']:.4f} | {-p['map50_95_drop']:+.4f} | "
                f"{_boxes(p['boxes'])} | {_boxes(p['boxes_default_predict'])} | {raw} |")
    lines += ["", "The PyTorch rows show the median of its figures over the processes of that size; each "
              "runtime is compared with the PyTorch figure measured beside it, in its own process.", ""]
    return "\n".join(lines) + "\n"


def comparison(ctx) -> list:
    """``python -m benchmarks.run --only export``: the same measurement, as rows of the main report.

    Quick mode trains 2 epochs and measures at imgsz 64; otherwise 30 epochs, imgsz 320 and 640, and
    the full table also goes to RESULTS_export.md.
    """
    from benchmarks.common import Row

    quick = ctx.cfg.repeats == 1 and ctx.cfg.train_imgsz == 64
    epochs, sizes, runs = (2, (64,), 5) if quick else (30, (320, 640), 30)
    work = ctx.work / "export"
    work.mkdir(parents=True, exist_ok=True)
    ctx.log(f"  training yolov8n.yaml on the sample, {epochs} epochs at imgsz 160 ...")
    weights, data = train_sample_model(work, epochs)
    results = []
    for size in sizes:
        for fmt in FORMATS:
            spec = {"weights": str(weights), "data": str(data), "format": fmt, "imgsz": size, "runs": runs,
                    "out": str(work / f"{fmt}_{size}")}
            result = _run_worker(spec, ctx.env)
            result.update(format=fmt, imgsz=size)
            results.append(result)
    rows = []
    for r in results:
        p = r["parity"]
        pt_ms, ex_ms = p["pt"]["latency_ms"], p["exported"]["latency_ms"]
        rows.append(Row(f"export {r['format']}, imgsz {r['imgsz']}: CPU ms per image (batch 1)",
                        "the .pt in PyTorch, same images, same process", "ms", ex_ms, pt_ms, pt_ms / ex_ms,
                        "report (mAP50-95 drop <= 0.005)", "report",
                        [f"mAP50-95 .pt {p['pt']['map50_95']:.4f}, export {p['exported']['map50_95']:.4f}",
                         f"max box-corner diff {p['boxes']['max_corner_px']} px over {p['boxes']['matched']} boxes",
                         "the full table per runtime: benchmarks/RESULTS_export.md"]))
    if not quick:
        args = argparse.Namespace(argv=["(via benchmarks.run --only export)"], runs=runs)
        Path(__file__).with_name("RESULTS_export.md").write_text(
            render(results, args, Path(weights), Path(data), 0.0), encoding="utf-8")
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_export", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--weights", type=Path, default=None, help="trained .pt (default: train one on the sample)")
    ap.add_argument("--data", type=Path, default=None, help="data.yaml whose val split is measured")
    ap.add_argument("--imgsz", default="320,640", help="comma list of export sizes")
    ap.add_argument("--formats", default=",".join(FORMATS), help="comma list of: onnx, openvino, torchscript")
    ap.add_argument("--runs", type=int, default=30, help="timed predict calls per model")
    ap.add_argument("--train-epochs", type=int, default=30, help="epochs when no --weights is given")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS_export.md"))
    args = ap.parse_args(argv)
    args.argv = argv
    if args.worker is not None:
        print("EXPORT_RESULT " + json.dumps(worker(json.loads(args.worker))), flush=True)
        return 0
    if (args.weights is None) != (args.data is None):
        ap.error("give --weights and --data together (or neither, to train a model on the sample)")
    t0 = time.perf_counter()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="yolo-tl-bench-export-"))
    env = dict(os.environ)
    env.update({"YOLO_OFFLINE": "true", "YOLO_CONFIG_DIR": str(work / "ultralytics"), "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])})
    os.environ.update({k: env[k] for k in ("YOLO_OFFLINE", "YOLO_CONFIG_DIR")})
    weights, data = args.weights, args.data
    if weights is None:
        print(f"training yolov8n.yaml on the sample for {args.train_epochs} epochs ...", flush=True)
        weights, data = train_sample_model(work, args.train_epochs)
    results = []
    for size in (int(s) for s in args.imgsz.split(",") if s.strip()):
        for fmt in (f.strip() for f in args.formats.split(",") if f.strip()):
            spec = {"weights": str(Path(weights).resolve()), "data": str(Path(data).resolve()), "format": fmt,
                    "imgsz": size, "runs": args.runs, "out": str(work / f"{fmt}_{size}")}
            print(f"[{time.perf_counter() - t0:6.0f}s] {fmt} @ {size} ...", flush=True)
            result = _run_worker(spec, env)
            result.update(format=fmt, imgsz=size)
            results.append(result)
            p = result["parity"]
            print(f"    pt {p['pt']['latency_ms']:.1f} ms, {fmt} {p['exported']['latency_ms']:.1f} ms, "
                  f"mAP50-95 {p['pt']['map50_95']:.4f} / {p['exported']['map50_95']:.4f}", flush=True)
    text = render(results, args, Path(weights), Path(data), time.perf_counter() - t0)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
