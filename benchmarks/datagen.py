"""Synthetic data for the benchmarks: tiny real JPEG files, random boxes, several classes.

Every generator is deterministic for a given seed. Images are real JPEG files (encoded with
OpenCV); for the large prepare datasets a small pool of encoded images is reused byte for byte,
because the converters only link images and read sizes from the annotations.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

CLASSES = ["car", "person", "dog", "cat", "bicycle", "bus"]
SIZES = [(64, 48), (48, 64), (80, 60), (96, 72)]  # (width, height) of the prepare images


def encode_jpeg(width: int, height: int, seed: int, boxes: list[tuple] | None = None) -> bytes:
    """A real JPEG: noise background plus filled rectangles for ``boxes`` (cls, x1, y1, x2, y2)."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    img = rng.integers(0, 80, size=(height, width, 3), dtype=np.uint8)
    for cls, x1, y1, x2, y2 in boxes or []:
        color = [(60 + 37 * cls * (c + 1)) % 256 for c in range(3)]
        cv2.rectangle(img, (int(x1), int(y1)), (int(x2), int(y2)), color, thickness=-1)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise RuntimeError("cv2.imencode failed")
    return buf.tobytes()


def _jpeg_pool(seed: int) -> dict[tuple[int, int], list[bytes]]:
    return {wh: [encode_jpeg(wh[0], wh[1], seed * 100 + i + 10 * k) for i in range(4)]
            for k, wh in enumerate(SIZES)}


def _random_boxes(rng: random.Random, w: int, h: int, n: int) -> list[tuple[int, int, int, int, int]]:
    """``n`` boxes (cls, x1, y1, x2, y2) in 0-based pixels, at least 2 px wide, inside the image."""
    out = []
    for _ in range(n):
        bw, bh = rng.randint(2, max(2, w // 2)), rng.randint(2, max(2, h // 2))
        x1, y1 = rng.randint(0, w - bw), rng.randint(0, h - bh)
        out.append((rng.randrange(len(CLASSES)), x1, y1, x1 + bw, y1 + bh))
    return out


def write_voc(root: Path, n: int, *, seed: int = 0, boxes: tuple[int, int] = (1, 12)) -> dict:
    """VOCdevkit-style ``root/Annotations/*.xml`` (with ``<size>``) and ``root/JPEGImages/*.jpg``."""
    rng = random.Random(seed)
    pool = _jpeg_pool(seed)
    ann_dir, img_dir = root / "Annotations", root / "JPEGImages"
    ann_dir.mkdir(parents=True, exist_ok=True)
    img_dir.mkdir(parents=True, exist_ok=True)
    n_boxes = 0
    for i in range(n):
        w, h = rng.choice(SIZES)
        stem = f"img_{i:06d}"
        (img_dir / f"{stem}.jpg").write_bytes(rng.choice(pool[(w, h)]))
        objs = []
        for cls, x1, y1, x2, y2 in _random_boxes(rng, w, h, rng.randint(*boxes)):
            objs.append(
                f"  <object>\n    <name>{CLASSES[cls]}</name>\n    <pose>Unspecified</pose>\n"
                f"    <truncated>0</truncated>\n    <difficult>0</difficult>\n    <bndbox>\n"
                f"      <xmin>{x1 + 1}</xmin>\n      <ymin>{y1 + 1}</ymin>\n"
                f"      <xmax>{x2}</xmax>\n      <ymax>{y2}</ymax>\n    </bndbox>\n  </object>\n")
        n_boxes += len(objs)
        (ann_dir / f"{stem}.xml").write_text(
            f"<annotation>\n  <folder>JPEGImages</folder>\n  <filename>{stem}.jpg</filename>\n"
            f"  <size>\n    <width>{w}</width>\n    <height>{h}</height>\n    <depth>3</depth>\n"
            f"  </size>\n  <segmented>0</segmented>\n{''.join(objs)}</annotation>\n")
    return {"images": n, "boxes": n_boxes, "classes": len(CLASSES)}


def write_coco(root: Path, n: int, *, seed: int = 0, boxes: tuple[int, int] = (1, 12)) -> dict:
    """``root/images/*.jpg`` and ``root/annotations/instances_train.json`` (1-based category ids)."""
    rng = random.Random(seed)
    pool = _jpeg_pool(seed)
    img_dir, ann_dir = root / "images", root / "annotations"
    img_dir.mkdir(parents=True, exist_ok=True)
    ann_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in range(n):
        w, h = rng.choice(SIZES)
        name = f"img_{i:06d}.jpg"
        (img_dir / name).write_bytes(rng.choice(pool[(w, h)]))
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
        for cls, x1, y1, x2, y2 in _random_boxes(rng, w, h, rng.randint(*boxes)):
            bw, bh = x2 - x1, y2 - y1
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1,
                                "category_id": cls + 1, "bbox": [x1, y1, bw, bh],
                                "area": bw * bh, "iscrowd": 0, "segmentation": []})
    categories = [{"id": k + 1, "name": c, "supercategory": "thing"} for k, c in enumerate(CLASSES)]
    json_path = ann_dir / "instances_train.json"
    json_path.write_text(json.dumps({"images": images, "annotations": annotations,
                                     "categories": categories}))
    return {"images": n, "boxes": len(annotations), "classes": len(CLASSES),
            "json": str(json_path), "json_bytes": json_path.stat().st_size}


def write_yolo(root: Path, n_train: int, n_val: int, *, size: tuple[int, int] = (128, 128),
               seed: int = 0, boxes: tuple[int, int] = (1, 4)) -> dict:
    """A tiny trainable YOLO dataset: distinct JPEGs whose rectangles match their labels."""
    rng = random.Random(seed)
    w, h = size
    n_boxes = 0
    for split, count in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            stem = f"{split}_{i:05d}"
            bxs = _random_boxes(rng, w, h, rng.randint(*boxes))
            n_boxes += len(bxs)
            (root / "images" / split / f"{stem}.jpg").write_bytes(
                encode_jpeg(w, h, seed * 7919 + i + (0 if split == "train" else 100000), bxs))
            (root / "labels" / split / f"{stem}.txt").write_text("".join(
                f"{c} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} "
                f"{(y2 - y1) / h:.6f}\n" for c, x1, y1, x2, y2 in bxs))
    names = "".join(f"  {k}: {c}\n" for k, c in enumerate(CLASSES))
    data_yaml = root / "data.yaml"
    data_yaml.write_text(f"path: {root.resolve()}\ntrain: images/train\nval: images/val\n"
                         f"names:\n{names}")
    return {"images": n_train + n_val, "boxes": n_boxes, "data_yaml": str(data_yaml)}


def write_image_folder(root: Path, n: int, *, size: tuple[int, int] = (160, 120),
                       seed: int = 0) -> dict:
    """``n`` distinct JPEG files in one folder (the predict benchmark's input)."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        bxs = _random_boxes(rng, size[0], size[1], rng.randint(1, 4))
        (root / f"p_{i:05d}.jpg").write_bytes(encode_jpeg(size[0], size[1], seed + i, bxs))
    return {"images": n}


def write_ingest(root: Path, n: int, *, per_image: int = 20, seed: int = 0) -> dict:
    """A YOLO dataset (val split, ~``per_image`` boxes each) plus precomputed predictions.

    ``predictions.json`` maps each image path to ``[[cls, conf, x1, y1, x2, y2], ...]`` in pixels:
    the ground truth jittered, some dropped, some false positives, as a detector would produce.
    """
    rng = random.Random(seed)
    w, h = 64, 48
    pool = [encode_jpeg(w, h, seed + i) for i in range(8)]
    img_dir, lbl_dir = root / "images" / "val", root / "labels" / "val"
    img_dir.mkdir(parents=True, exist_ok=True)
    lbl_dir.mkdir(parents=True, exist_ok=True)
    preds: dict[str, list] = {}
    n_gt = n_pred = 0
    for i in range(n):
        stem = f"v_{i:05d}"
        path = img_dir / f"{stem}.jpg"
        path.write_bytes(pool[i % len(pool)])
        gt = _random_boxes(rng, w, h, rng.randint(per_image - 3, per_image + 3))
        (lbl_dir / f"{stem}.txt").write_text("".join(
            f"{c} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} "
            f"{(y2 - y1) / h:.6f}\n" for c, x1, y1, x2, y2 in gt))
        p = []
        for c, x1, y1, x2, y2 in gt:
            if rng.random() < 0.85:
                j = [rng.uniform(-1.5, 1.5) for _ in range(4)]
                px1, py1 = max(0.0, x1 + j[0]), max(0.0, y1 + j[1])
                px2, py2 = min(w, max(px1 + 1, x2 + j[2])), min(h, max(py1 + 1, y2 + j[3]))
                p.append([c if rng.random() < 0.9 else rng.randrange(len(CLASSES)),
                          round(rng.uniform(0.05, 1.0), 4), round(px1, 2), round(py1, 2),
                          round(px2, 2), round(py2, 2)])
        for c, x1, y1, x2, y2 in _random_boxes(rng, w, h, rng.randint(0, 4)):
            p.append([c, round(rng.uniform(0.05, 0.6), 4), x1, y1, x2, y2])
        preds[str(path.resolve())] = p
        n_gt += len(gt)
        n_pred += len(p)
    names = "".join(f"  {k}: {c}\n" for k, c in enumerate(CLASSES))
    data_yaml = root / "data.yaml"
    data_yaml.write_text(f"path: {root.resolve()}\ntrain: images/val\nval: images/val\n"
                         f"names:\n{names}")
    (root / "predictions.json").write_text(json.dumps(preds))
    return {"images": n, "gt_boxes": n_gt, "pred_boxes": n_pred, "size": [w, h],
            "data_yaml": str(data_yaml), "predictions": str(root / "predictions.json")}
