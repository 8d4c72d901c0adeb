"""Scale benchmark: peak memory of ``yolo-tl analyze`` as the split grows.

``python -m benchmarks.bench_scale [--images 1000,5000,20000] [--imgsz 256] [--work DIR] [--no-wait]``
writes ``benchmarks/RESULTS_scale.md`` (``--out`` for another file). Target: the peak RSS at the
largest split within 1.5x of the one at the smallest.

Each split is synthetic (96x96 JPEGs of coloured rectangles on noise, 1-6 labelled boxes each,
3 classes) and is analysed by ``yolo_tl.analyze`` in a fresh process (``--worker``), which reports
its own peak RSS (``VmHWM``) and the figures of its report; the parent samples the worker's
``VmRSS`` every 0.5 s for the curve. The model is yolov8n.yaml with random weights whose
classification biases are raised so that every anchor scores ~0.73: at imgsz 256 NMS keeps ~270
predictions per image, so the largest split is millions of boxes (the dense case).
FiftyOne's mongod is a separate process: its memory is not counted here. Datasets are kept in
``--work`` between runs (generating 20,000 images takes a few minutes).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NAMES = ["red", "green", "blue"]
COLOURS = [(220, 40, 40), (40, 200, 40), (40, 40, 220)]
ENV = {"YOLO_OFFLINE": "true", "YOLO_AUTOINSTALL": "false", "FIFTYONE_DATABASE_VALIDATION": "false",
       "FIFTYONE_DO_NOT_TRACK": "true"}


def _write_images(job: tuple[str, str, int, int]) -> None:
    import numpy as np
    from PIL import Image

    root, split, start, stop = job
    for i in range(start, stop):
        rng = np.random.default_rng(i)
        img = rng.integers(60, 140, (96, 96, 3), dtype=np.uint8)
        lines = []
        for _ in range(int(rng.integers(1, 7))):
            c = int(rng.integers(0, 3))
            w, h = (int(v) for v in rng.integers(12, 40, 2))
            x, y = int(rng.integers(0, 96 - w)), int(rng.integers(0, 96 - h))
            img[y:y + h, x:x + w] = COLOURS[c]
            lines.append(f"{c} {(x + w / 2) / 96:.6f} {(y + h / 2) / 96:.6f} {w / 96:.6f} {h / 96:.6f}")
        Image.fromarray(img).save(Path(root) / "images" / split / f"{i:06d}.jpg", quality=90)
        (Path(root) / "labels" / split / f"{i:06d}.txt").write_text("\n".join(lines) + "\n")


def make_dataset(root: Path, n: int) -> tuple[Path, bool]:
    """data.yaml of an n-image val split (+ 8 train images); reused when complete. (path, made now)."""
    data = root / "data.yaml"
    if data.is_file() and len(list((root / "labels" / "val").glob("*.txt"))) == n:
        return data, False
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    jobs = [(str(root), "val", s, min(s + 500, n)) for s in range(0, n, 500)] + [(str(root), "train", 0, 8)]
    # spawn, not fork: forked from a process that already runs threads (torch, onnxruntime, pytest's), a
    # worker can inherit a held lock and wait on it forever (seen in make test)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_write_images, jobs)
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames: {json.dumps(NAMES)}\n")
    return data, True


def make_model(path: Path) -> Path:
    """yolov8n.yaml, 3 classes, random weights, classification biases +1: a dense predictor."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    if path.is_file():
        return path
    torch.manual_seed(0)
    model = DetectionModel("yolov8n.yaml", nc=len(NAMES), verbose=False)
    model.names = dict(enumerate(NAMES))
    for seq in model.model[-1].cv3:
        torch.nn.init.normal_(seq[-1].weight, std=0.3)
        torch.nn.init.constant_(seq[-1].bias, 1.0)
    for seq in model.model[-1].cv2:
        torch.nn.init.normal_(seq[-1].weight, std=0.3)
    model.args = {"imgsz": 256, "task": "detect"}
    torch.save({"model": model, "train_args": {"imgsz": 256, "task": "detect", "model": "yolov8n.yaml"},
                "epoch": -1, "date": None, "version": "8.4"}, path)
    return path


def _vm(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def worker(spec: dict) -> dict:
    import fiftyone as fo

    import yolo_tl

    t0 = time.perf_counter()
    rep = yolo_tl.analyze(spec["data"], weights=spec["weights"], name=spec["name"], imgsz=spec["imgsz"],
                          batch=spec["batch"], compare_ultralytics=False)
    wall = time.perf_counter() - t0
    peak = _vm(os.getpid(), "VmHWM")
    fo.delete_dataset(spec["name"])
    return {"wall_s": wall, "peak_rss": peak, "predictions": rep.totals.predictions, "samples": rep.totals.samples,
            "map": rep.maps.fiftyone_map50_95, "seconds": rep.seconds}


def run_one(spec: dict) -> dict:
    env = {**os.environ, **ENV, "PYTHONPATH": str(REPO)}
    p = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_scale", "--worker", json.dumps(spec)], cwd=REPO,
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    samples: list[tuple[float, int]] = []
    t0 = time.monotonic()

    def poll() -> None:
        while p.poll() is None:
            samples.append((time.monotonic() - t0, _vm(p.pid, "VmRSS")))
            time.sleep(0.5)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    out = p.stdout.read()
    p.wait()
    th.join()
    lines = [line for line in out.splitlines() if line.startswith("SCALE_RESULT ")]
    if p.returncode or not lines:
        raise SystemExit(f"worker for {spec['name']} failed (exit {p.returncode}): {out[-2000:]}")
    res = json.loads(lines[-1].split(" ", 1)[1])
    curve = [rss for _, rss in samples if rss]
    res["rss_curve"] = [curve[min(len(curve) - 1, int(q * len(curve)))] if curve else 0
                        for q in (0.25, 0.5, 0.75, 0.99)]
    return res


def _mib(n: float) -> str:
    return f"{n / 2**20:,.0f}"


def report(rows: list[dict], args: argparse.Namespace) -> str:
    import fiftyone
    import torch
    import ultralytics

    base = rows[0]["peak_rss"]
    lines = ["# analyze peak memory as the split grows", "",
             f"Command: `python -m benchmarks.bench_scale {' '.join(sys.argv[1:])}`", "",
             f"Machine: {platform.platform()}, {os.cpu_count()} CPUs; ultralytics {ultralytics.__version__}, "
             f"fiftyone {fiftyone.__version__}, torch {torch.__version__}; imgsz {args.imgsz}, batch {args.batch}.",
             "Peak RSS is the analyze process's own VmHWM (mongod, a separate process, not counted); the RSS "
             "columns are the worker's VmRSS at 25/50/75/99% of its run.", "",
             "| images | predictions | per image | wall s | peak RSS MiB | x smallest | RSS 25/50/75/99% MiB |",
             "|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['samples']:,} | {r['predictions']:,} | {r['predictions'] / r['samples']:.0f} | "
                     f"{r['wall_s']:.0f} | {_mib(r['peak_rss'])} | {r['peak_rss'] / base:.2f} | "
                     f"{' / '.join(_mib(v) for v in r['rss_curve'])} |")
    ratio = rows[-1]["peak_rss"] / base
    lines += ["", f"Verdict: peak RSS {rows[-1]['samples']:,} / {rows[0]['samples']:,} images = {ratio:.2f}x "
              f"(target <= 1.5x): {'met' if ratio <= 1.5 else 'MISSED'}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default="1000,5000,20000")
    ap.add_argument("--imgsz", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "RESULTS_scale.md")
    ap.add_argument("--no-wait", action="store_true", help="skip the sync + 65 s pause after making files")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print("SCALE_RESULT " + json.dumps(worker(json.loads(args.worker))), flush=True)
        return 0
    os.environ.update(ENV)
    work = args.work or Path(tempfile.mkdtemp(prefix="yolo-tl-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return _run(args, work)
    finally:
        if args.work is None:  # a folder of our own: 20,000 images must not stay in /tmp
            shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, work: Path) -> int:
    weights = make_model(work / "dense.pt")
    sizes = [int(v) for v in args.images.split(",")]
    made = False
    datas = {}
    for n in sizes:
        datas[n], now = make_dataset(work / f"split_{n}", n)
        made |= now
    if made and not args.no_wait:  # benchmarks/NOTES.md: ext4 slows file creation after many new files
        os.sync()
        time.sleep(65)
    rows = []
    for n in sizes:
        res = run_one({"data": str(datas[n]), "weights": str(weights), "name": f"yolo-tl-bench-scale-{n}",
                       "imgsz": args.imgsz, "batch": args.batch})
        print(f"{n} images: {res['predictions']:,} predictions, {res['wall_s']:.0f} s, "
              f"peak RSS {_mib(res['peak_rss'])} MiB", flush=True)
        rows.append(res)
    text = report(rows, args)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
