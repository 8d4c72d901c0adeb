"""Prepare cases: yolo-tl vs FiftyOne (VOC), an I/O floor, Ultralytics ``convert_coco``.

Each function runs inside a fresh worker process and returns ``{"seconds": ...}`` for the timed
call alone; the parent also times the whole process.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from benchmarks.profiling import region


def ours_prepare(src: str, out: str, images: str | None = None) -> dict:
    """``yolo_tl.prepare`` with its defaults (hardlinks, 0.8/0.2 split, data.yaml, report)."""
    from yolo_tl import prepare

    t0 = time.perf_counter()
    with region():
        report = prepare(src, out, images=images)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "report": _summary(report)}


def _summary(report: object) -> str:
    text = repr(report)
    return text if len(text) < 300 else text[:297] + "..."


def import_only() -> dict:
    """Baseline process: the interpreter plus ``yolo_tl.dataset.prepare`` imported, no work."""
    import yolo_tl.dataset.prepare  # noqa: F401

    return {"seconds": 0.0}


def io_floor(src: str, out: str) -> dict:
    """The least any VOC converter must do: read every XML, write one small file per image."""
    t0 = time.perf_counter()
    ann = Path(src) / "Annotations"
    dst = Path(out) / "labels"
    dst.mkdir(parents=True, exist_ok=True)
    n = 0
    with os.scandir(ann) as it:
        for entry in it:
            if entry.name.endswith(".xml"):
                with open(entry.path, "rb") as f:
                    data = f.read()
                with open(dst / (entry.name[:-4] + ".txt"), "w") as f:
                    f.write(f"0 0.5 0.5 0.1 {len(data) % 7 / 10:.1f}\n")
                n += 1
    return {"seconds": time.perf_counter() - t0, "files": n}


def fiftyone_voc(src: str, out: str, train_frac: float = 0.8) -> dict:
    """FiftyOne's documented way: VOCDetectionDataset import, random split, YOLOv5Dataset export
    of each split with ``export_media="symlink"`` and one shared class list."""
    import fiftyone as fo
    import fiftyone.utils.random as four

    t0 = time.perf_counter()
    root = Path(src)
    ds = fo.Dataset.from_dir(dataset_type=fo.types.VOCDetectionDataset,
                             data_path=str(root / "JPEGImages"),
                             labels_path=str(root / "Annotations"),
                             label_field="ground_truth", progress=False)
    t_import = time.perf_counter() - t0
    classes = ds.distinct("ground_truth.detections.label")
    four.random_split(ds, {"train": train_frac, "val": 1 - train_frac}, seed=0)
    for split in ("train", "val"):
        ds.match_tags(split).export(export_dir=out, dataset_type=fo.types.YOLOv5Dataset,
                                    label_field="ground_truth", split=split, classes=classes,
                                    export_media="symlink", progress=False)
    seconds, done_at = time.perf_counter() - t0, time.time()
    n = len(ds)
    ds.delete()  # untimed: keeps the shared benchmark database small
    return {"seconds": seconds, "import_seconds": t_import, "samples": n, "done_at": done_at}


def ultralytics_coco(labels_dir: str, out: str) -> dict:
    """Ultralytics ``convert_coco(cls91to80=False)``: labels only, no image links, no yaml."""
    from ultralytics.data.converter import convert_coco

    t0 = time.perf_counter()
    convert_coco(labels_dir=labels_dir, save_dir=out, cls91to80=False)
    return {"seconds": time.perf_counter() - t0}
