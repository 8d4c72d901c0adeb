"""A tiny YOLO dataset with one injected label mistake of each kind, and its analysis stored in FiftyOne.

The predictions are the clean boxes (a perfect detector at confidence 0.95), so each injected mistake
has exactly one right fix, and the fixed labels are the clean lines, computed by hand below.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from PIL import Image

NAMES = ["cat", "dog"]
# image: (width, height), clean boxes (class, x1, y1, x2, y2 in pixels), label lines as written (with the mistake)
IMAGES = {
    # missing: the dog (100, 30, 160, 80) was not labelled
    "a.jpg": ((200, 100), [(0, 20, 20, 60, 60), (1, 100, 30, 160, 80)], "0 0.200000 0.400000 0.200000 0.400000\n"),
    # wrong class: the dog (80, 40, 140, 100) labelled cat
    "b.jpg": ((160, 120), [(0, 10, 10, 50, 50), (1, 80, 40, 140, 100)],
              "0 0.187500 0.250000 0.250000 0.333333\n0 0.687500 0.583333 0.375000 0.500000\n"),
    # badly placed: the dog (40, 20, 100, 80) labelled 15 px right, 10 px down (IoU 0.45)
    "c.jpg": ((200, 100), [(1, 40, 20, 100, 80)], "1 0.425000 0.600000 0.300000 0.600000\n"),
    # spurious: a dog box (70, 70, 110, 110) on background
    "d.jpg": ((120, 120), [(0, 10, 10, 40, 40)],
              "0 0.208333 0.208333 0.250000 0.250000\n1 0.750000 0.750000 0.333333 0.333333\n"),
}
# the kind injected per image, and the label file once that mistake is fixed (hand-computed YOLO lines)
INJECTED = {"a.jpg": "missing", "b.jpg": "wrong_class", "c.jpg": "badly_placed", "d.jpg": "spurious"}
FIXED = {
    "a.txt": "0 0.200000 0.400000 0.200000 0.400000\n1 0.650000 0.550000 0.300000 0.500000\n",
    "b.txt": "0 0.187500 0.250000 0.250000 0.333333\n1 0.687500 0.583333 0.375000 0.500000\n",
    "c.txt": "1 0.350000 0.500000 0.300000 0.600000\n",
    "d.txt": "0 0.208333 0.208333 0.250000 0.250000\n",
}


def write_injected_dataset(root: Path) -> Path:
    """images/val + labels/val + data.yaml under ``root``; returns the data.yaml."""
    for kind in ("images", "labels"):
        (root / kind / "val").mkdir(parents=True, exist_ok=True)
    for name, ((w, h), _, lines) in IMAGES.items():
        Image.new("RGB", (w, h), (90, 120, 60)).save(root / "images" / "val" / name, quality=95)
        (root / "labels" / "val" / (Path(name).stem + ".txt")).write_text(lines)
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/val\nval: images/val\nnames: {{0: cat, 1: dog}}\n")
    return root / "data.yaml"


def stored_analysis(data_yaml: Path, name: str | None = None):
    """A FiftyOne dataset as ``analyze`` leaves it (labels from the files, the clean boxes as predictions),
    with the label suspects stored by the same steps ``analyze`` runs; returns it."""
    import fiftyone as fo

    from yolo_tl.analysis import collect
    from yolo_tl.analysis.app.suspects_view import save_suspects_view, style_suspects
    from yolo_tl.analysis.store.label_suspects import store_label_suspects
    from yolo_tl.analysis.store.our_datasets import TAG
    from yolo_tl.analysis.store.sample_insert import SampleRow, add_detection_samples

    root = data_yaml.parent
    rows = []
    for image, ((w, h), clean, _) in IMAGES.items():
        path = root / "images" / "val" / image
        gt = collect.read_yolo_boxes(root / "labels" / "val" / (Path(image).stem + ".txt"), NAMES)
        preds = [(NAMES[c], (x1 / w, y1 / h, (x2 - x1) / w, (y2 - y1) / h), 0.95) for c, x1, y1, x2, y2 in clean]
        preds.append((NAMES[0], (0.0, 0.0, 0.1, 0.1), 0.02))  # below MIN_CONF: evidence for nothing
        rows.append(SampleRow(str(path), gt, preds, (h, w)))
    ds = fo.Dataset(name or f"test-suspects-{uuid.uuid4().hex[:8]}")
    add_detection_samples(ds, rows)
    store_label_suspects(ds, NAMES)
    save_suspects_view(ds)
    style_suspects(ds)
    ds.tags = [TAG]
    ds.info["yolo_tl"] = {"data_yaml": str(data_yaml), "split": "val"}
    ds.save()
    return ds
