"""Tiny YOLO datasets and checkpoints for the finetune / evaluate / predict tests (not a test module).

The images are synthetic (coloured rectangles on grey noise) so these tests run without ../shared;
what they check is Ultralytics' and torch's own behaviour, not the pictures.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

NAMES = {0: "red", 1: "green", 2: "blue"}
_COLORS = [(0, 0, 255), (0, 255, 0), (255, 0, 0)]
# Fast Ultralytics settings for CPU tests: no plots; nbs = batch so that every batch is an optimizer step
# (with the default nbs=64 and 2 batches per epoch, Ultralytics would step about once per run).
FAST = {"plots": False, "nbs": 4}


def write_tiny_dataset(root: Path, *, n_train: int = 8, n_val: int = 4, size: int = 96, seed: int = 0,
                       names: dict = NAMES) -> Path:
    """images/{train,val}, labels/{train,val}, data.yaml with an absolute path; returns data.yaml."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = rng.integers(80, 120, (size, size, 3), dtype=np.uint8)
            lines = []
            for _ in range(2):
                c = int(rng.integers(0, 3))
                w, h = (int(v) for v in rng.integers(20, 40, 2))
                x, y = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
                cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), _COLORS[c], -1)
                lines.append(f"{c} {(x + w / 2) / size:.6f} {(y + h / 2) / size:.6f} {w / size:.6f} {h / size:.6f}")
            cv2.imwrite(str(root / "images" / split / f"{split}_{i}.jpg"), img)
            (root / "labels" / split / f"{split}_{i}.txt").write_text("\n".join(lines) + "\n")
    return write_data_yaml(root, names)


def write_data_yaml(root: Path, names: dict) -> Path:
    lines = [f"path: {root.resolve()}", "train: images/train", "val: images/val", "names:"]
    lines += [f"  {k}: {v}" for k, v in names.items()]
    (root / "data.yaml").write_text("\n".join(lines) + "\n")
    return root / "data.yaml"


def label_counts(label_dir: Path) -> dict:
    """{class_id: (images containing it, boxes)} read straight from YOLO label files."""
    images: dict = {}
    boxes: dict = {}
    for f in sorted(label_dir.glob("*.txt")):
        classes = [int(line.split()[0]) for line in f.read_text().splitlines() if line.strip()]
        for c in set(classes):
            images[c] = images.get(c, 0) + 1
        for c in classes:
            boxes[c] = boxes.get(c, 0) + 1
    return {c: (images[c], boxes[c]) for c in sorted(boxes)}


def backbone_keys(state: dict, n: int = 10) -> list:
    prefixes = tuple(f"model.{i}." for i in range(n))
    return [k for k in state if k.startswith(prefixes)]


def checkpoint_state(path: Path) -> dict:
    """The state dict stored in an Ultralytics checkpoint, as saved (half precision), not re-cast."""
    import torch

    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model = ckpt.get("ema") or ckpt["model"]
    return {k: v.clone() for k, v in model.state_dict().items()}
