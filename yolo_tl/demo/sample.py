"""The bundled sample dataset, and the synthetic *source* task the offline demo pretrains on.

Both are drawn by this module: filled shapes (one class per shape) at varied sizes, rotations and
colours, on varied backgrounds (gradients, smooth colour noise, stripes, checks, flat + grain), with
a few images that hold no object at all. A yolov8n learns them in minutes on a CPU.

``python -m yolo_tl.demo.sample`` (or ``yolo-tl sample``) regenerates ``datasets/sample/``
byte-identically: every random draw comes from seeded ``random.Random`` / ``numpy.random.RandomState``
streams (both stable across versions), files are written in a fixed order, and the JPEGs are encoded
by Pillow with fixed settings. (Byte identity holds for the same Pillow / libjpeg build; another
build may round a few DCT coefficients differently.)

Box convention. A shape's box is the tight box of its drawn pixels in continuous 0-based pixels
(see ``yolo_tl.dataset.annotations``). COCO gets it as ``[x, y, w, h]``; VOC gets ``xmin = x1 + 1``,
``xmax = x2 + 1`` (and the same for y), the 1-based convention that Ultralytics' VOC converter and
``yolo_tl.dataset.boxes.voc_to_xyxy`` read back as ``x1 = xmin - 1``, ``x2 = xmax - 1``. So the two forms give
exactly the same boxes after ``yolo-tl prepare``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import math
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from yolo_tl.errors import OutputError

log = logging.getLogger(__name__)

TARGET_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "star")
SOURCE_CLASSES: tuple[str, ...] = ("cross", "ring", "hexagon", "crescent")
SAMPLE_SEED = 0
SAMPLE_IMAGES = 200
SOURCE_SEED = 1000
JPEG_QUALITY = 80
SIDES = (256, 288, 320)
VAL_EVERY = 5  # every 5th image goes to ImageSets/Main/val.txt (20 %)

# The committed sample lives here in a source checkout (absent from an installed wheel).
REPO_SAMPLE_DIR = Path(__file__).resolve().parents[2] / "datasets" / "sample"

XYXY = tuple[int, int, int, int]


@dataclass
class SampleInfo:
    """What a generator wrote: where, how many images / boxes, per-class box counts."""

    root: Path
    classes: tuple[str, ...]
    images: int = 0
    empty_images: int = 0
    boxes: int = 0
    per_class: dict[str, int] = field(default_factory=dict)
    voc_dir: Path | None = None
    coco_json: Path | None = None
    images_dir: Path | None = None

    def as_dict(self) -> dict:
        return {
            "root": str(self.root),
            "classes": list(self.classes),
            "images": self.images,
            "empty_images": self.empty_images,
            "boxes": self.boxes,
            "per_class": dict(self.per_class),
            "voc_dir": str(self.voc_dir) if self.voc_dir else None,
            "coco_json": str(self.coco_json) if self.coco_json else None,
            "images_dir": str(self.images_dir) if self.images_dir else None,
        }


# ----------------------------------------------------------------------------------------------
# Drawing: backgrounds and shapes
# ----------------------------------------------------------------------------------------------


def _hsv(rng: random.Random, s: tuple[float, float], v: tuple[float, float]) -> np.ndarray:
    h = rng.random()
    sat = rng.uniform(*s)
    val = rng.uniform(*v)
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = val * (1 - sat), val * (1 - f * sat), val * (1 - (1 - f) * sat)
    rgb = [(val, t, p), (q, val, p), (p, val, t), (p, q, val), (t, p, val), (val, p, q)][i]
    return np.array(rgb, dtype=np.float64) * 255.0


def _background(rng: random.Random, nrng: np.random.RandomState, w: int, h: int) -> np.ndarray:
    """A float RGB background of one of five kinds, with mild grain."""
    kind = rng.randrange(5)
    c1 = _hsv(rng, (0.0, 0.6), (0.2, 0.95))
    c2 = _hsv(rng, (0.0, 0.6), (0.2, 0.95))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    if kind == 0:  # linear gradient at a random angle
        a = rng.uniform(0, 2 * math.pi)
        t = (xx * math.cos(a) + yy * math.sin(a))
        t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
        img = c1 + t[..., None] * (c2 - c1)
    elif kind == 1:  # smooth colour noise: a coarse random grid, upscaled bicubically
        cell = rng.choice((24, 32, 48))
        grid = nrng.rand(h // cell + 2, w // cell + 2, 3)
        small = Image.fromarray((grid * 255).astype(np.uint8))
        big = np.asarray(small.resize((w, h), Image.BICUBIC), dtype=np.float64) / 255.0
        img = c1 + (big - 0.5) * rng.uniform(80, 160)
    elif kind == 2:  # soft stripes at a random angle
        a = rng.uniform(0, math.pi)
        period = rng.uniform(10, 40)
        t = (np.sin((xx * math.cos(a) + yy * math.sin(a)) * 2 * math.pi / period) + 1) / 2
        img = c1 + t[..., None] * (c2 - c1) * rng.uniform(0.3, 0.7)
    elif kind == 3:  # low-contrast checks
        cell = rng.choice((16, 24, 32))
        t = ((xx // cell + yy // cell) % 2)
        img = c1 + t[..., None] * (c2 - c1) * rng.uniform(0.2, 0.5)
    else:  # flat colour
        img = np.broadcast_to(c1, (h, w, 3)).copy()
    img = img + nrng.normal(0.0, rng.uniform(1.5, 6.0), size=(h, w, 3))
    return np.clip(img, 0, 255)


def _regular(cx: float, cy: float, r: float, n: int, start: float) -> list[tuple[float, float]]:
    return [
        (cx + r * math.cos(start + 2 * math.pi * k / n), cy + r * math.sin(start + 2 * math.pi * k / n))
        for k in range(n)
    ]


def _star(cx: float, cy: float, r: float, start: float, inner: float = 0.45) -> list[tuple[float, float]]:
    pts = []
    for k in range(10):
        rr = r if k % 2 == 0 else r * inner
        a = start + math.pi * k / 5
        pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
    return pts


def _rotated(points: Sequence[tuple[float, float]], cx: float, cy: float, a: float) -> list[tuple[float, float]]:
    ca, sa = math.cos(a), math.sin(a)
    return [(cx + (x - cx) * ca - (y - cy) * sa, cy + (x - cx) * sa + (y - cy) * ca) for x, y in points]


ShapeFn = Callable[[ImageDraw.ImageDraw, random.Random, float, float, float], None]


def _draw_circle(d: ImageDraw.ImageDraw, rng: random.Random, cx: float, cy: float, r: float) -> None:
    rx, ry = r, r * rng.uniform(0.85, 1.0)
    if rng.random() < 0.5:
        rx, ry = ry, rx
    d.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=255)


def _draw_square(d: ImageDraw.ImageDraw, rng: random.Random, cx: float, cy: float, r: float) -> None:
    d.polygon(_regular(cx, cy, r, 4, math.pi / 4 + math.radians(rng.uniform(-20, 20))), fill=255)


def _draw_triangle(d: ImageDraw.ImageDraw, rng: random.Random, cx: float, cy: float, r: float) -> None:
    d.polygon(_regular(cx, cy, r, 3, rng.uniform(0, 2 * math.pi)), fill=255)


def _draw_star(d: ImageDraw.ImageDraw, rng: random.Random, cx: float, cy: float, r: float) -> None:
    d.polygon(_star(cx, cy, r, rng.uniform(0, 2 * math.pi)), fill=255)


def _draw_cross(d: ImageDraw.ImageDraw, rng: random.Random, cx: float, cy: float, r: float) -> None:
    a, t = rng.uniform(0, math.pi / 2), r * rng.uniform(0.25, 0.4)
    for pts in (
        [(cx - r, cy - t), (cx + r, cy - t), (cx + r, cy + t), (cx - r, cy + t)],
        [(cx - t, cy - r), (cx + t, cy - r), (cx + t, cy + r), (cx - t, cy + r)],
    ):
        d.polygon(_rotated(pts, cx, cy, a), fill=255)


def _draw_ring(d: ImageDraw.ImageDraw, rng: random.Random, cx: float, cy: float, r: float) -> None:
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    ri = r * rng.uniform(0.5, 0.65)
    d.ellipse([cx - ri, cy - ri, cx + ri, cy + ri], fill=0)


def _draw_hexagon(d: ImageDraw.ImageDraw, rng: random.Random, cx: float, cy: float, r: float) -> None:
    d.polygon(_regular(cx, cy, r, 6, rng.uniform(0, math.pi / 3)), fill=255)


def _draw_crescent(d: ImageDraw.ImageDraw, rng: random.Random, cx: float, cy: float, r: float) -> None:
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    a, off = rng.uniform(0, 2 * math.pi), r * rng.uniform(0.45, 0.6)
    ox, oy = cx + off * math.cos(a), cy + off * math.sin(a)
    d.ellipse([ox - r * 0.9, oy - r * 0.9, ox + r * 0.9, oy + r * 0.9], fill=0)


SHAPES: dict[str, ShapeFn] = {
    "circle": _draw_circle,
    "square": _draw_square,
    "triangle": _draw_triangle,
    "star": _draw_star,
    "cross": _draw_cross,
    "ring": _draw_ring,
    "hexagon": _draw_hexagon,
    "crescent": _draw_crescent,
}


def _overlaps(box: XYXY, others: Sequence[XYXY], limit: float = 0.1) -> bool:
    """True when ``box`` covers more than ``limit`` of itself or of another box."""
    x1, y1, x2, y2 = box
    area = (x2 - x1) * (y2 - y1)
    for ox1, oy1, ox2, oy2 in others:
        iw, ih = min(x2, ox2) - max(x1, ox1), min(y2, oy2) - max(y1, oy1)
        if iw > 0 and ih > 0:
            inter = iw * ih
            if inter > limit * area or inter > limit * (ox2 - ox1) * (oy2 - oy1):
                return True
    return False


def draw_image(
    rng: random.Random, nrng: np.random.RandomState, classes: Sequence[str], *, empty: bool
) -> tuple[Image.Image, list[tuple[str, XYXY]]]:
    """One image and its tight boxes ``(label, (x1, y1, x2, y2))`` in continuous 0-based pixels."""
    w, h = rng.choice(SIDES), rng.choice(SIDES)
    img = _background(rng, nrng, w, h)
    # A few thin distractor lines, so that "edge" alone does not mean "object".
    canvas = Image.fromarray(img.astype(np.uint8))
    d = ImageDraw.Draw(canvas)
    for _ in range(rng.choice((0, 0, 1, 2, 3))):
        col = tuple(int(c) for c in _hsv(rng, (0.0, 0.5), (0.1, 0.9)))
        d.line([(rng.uniform(0, w), rng.uniform(0, h)), (rng.uniform(0, w), rng.uniform(0, h))],
               fill=col, width=rng.choice((1, 2)))
    img = np.asarray(canvas, dtype=np.float64).copy()

    objects: list[tuple[str, XYXY]] = []
    n = 0 if empty else rng.choice((1, 1, 2, 2, 3, 3, 4, 5))
    side = min(w, h)
    for _ in range(n):
        label = rng.choice(list(classes))
        for _attempt in range(40):
            r = rng.uniform(0.06, 0.2) * side  # radius: boxes of about 15-130 px
            cx, cy = rng.uniform(r + 3, w - r - 3), rng.uniform(r + 3, h - r - 3)
            mask = Image.new("L", (w, h), 0)
            SHAPES[label](ImageDraw.Draw(mask), rng, cx, cy, r)
            bbox = mask.getbbox()  # (left, top, right, bottom), right/bottom exclusive
            if bbox is None or _overlaps(bbox, [b for _, b in objects]):
                continue
            m = np.asarray(mask, dtype=np.float64)[..., None] / 255.0
            x1, y1, x2, y2 = bbox
            under = img[y1:y2, x1:x2].reshape(-1, 3).mean(axis=0)
            colour = _hsv(rng, (0.55, 1.0), (0.45, 1.0))
            for _c in range(10):  # keep the object visible against what lies under it
                if np.abs(colour - under).sum() >= 150:
                    break
                colour = _hsv(rng, (0.55, 1.0), (0.45, 1.0))
            shade = colour * (1.0 - nrng.rand(h, w, 1) * 0.12)  # a little texture on the object
            img = img * (1 - m) + shade * m
            objects.append((label, (x1, y1, x2, y2)))
            break
    return Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8)), objects


def encode_jpeg(image: Image.Image) -> bytes:
    """Fixed JPEG settings: same pixels in, same bytes out (for one Pillow build)."""
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=False, progressive=False,
               subsampling="4:2:0")
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------
# Writers
# ----------------------------------------------------------------------------------------------


def _voc_xml(folder: str, filename: str, w: int, h: int, objects: Sequence[tuple[str, XYXY]]) -> str:
    lines = [
        "<annotation>",
        f"\t<folder>{folder}</folder>",
        f"\t<filename>{filename}</filename>",
        "\t<source>",
        "\t\t<database>yolo-tl synthetic shapes</database>",
        "\t</source>",
        "\t<size>",
        f"\t\t<width>{w}</width>",
        f"\t\t<height>{h}</height>",
        "\t\t<depth>3</depth>",
        "\t</size>",
        "\t<segmented>0</segmented>",
    ]
    for label, (x1, y1, x2, y2) in objects:
        # 1-based VOC corners: x1 = xmin - 1, x2 = xmax - 1 (see the module docstring).
        lines += [
            "\t<object>",
            f"\t\t<name>{label}</name>",
            "\t\t<pose>Unspecified</pose>",
            "\t\t<truncated>0</truncated>",
            "\t\t<difficult>0</difficult>",
            "\t\t<bndbox>",
            f"\t\t\t<xmin>{x1 + 1}</xmin>",
            f"\t\t\t<ymin>{y1 + 1}</ymin>",
            f"\t\t\t<xmax>{x2 + 1}</xmax>",
            f"\t\t\t<ymax>{y2 + 1}</ymax>",
            "\t\t</bndbox>",
            "\t</object>",
        ]
    lines.append("</annotation>")
    return "\n".join(lines) + "\n"


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def generate(
    out: Path,
    *,
    classes: Sequence[str] = TARGET_CLASSES,
    n_images: int = SAMPLE_IMAGES,
    seed: int = SAMPLE_SEED,
    prefix: str = "sample",
    empty_fraction: float = 0.08,
    coco: bool = True,
    overwrite: bool = False,
) -> SampleInfo:
    """Draw ``n_images`` images into ``out``: VOC (voc/Annotations, voc/JPEGImages,
    voc/ImageSets/Main/{train,val}.txt) and, with ``coco``, one COCO JSON (coco/annotations.json)
    whose ``file_name`` values are relative to ``voc/JPEGImages`` (the images are stored once).
    """
    out = Path(out)
    unknown = [c for c in classes if c not in SHAPES]
    if unknown:
        raise OutputError(f"no drawing for class {unknown[0]!r}; known: {', '.join(SHAPES)}",
                          field="classes")
    voc = out / "voc"
    if voc.exists() and any(voc.iterdir()) and not overwrite:
        raise OutputError("already exists; pass overwrite=True (--overwrite) to regenerate",
                          path=voc)
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        d = voc / sub
        if d.is_dir():
            for p in d.iterdir():
                if p.is_file():
                    p.unlink()

    rng = random.Random(seed)
    nrng = np.random.RandomState(seed)
    n_empty = max(1, round(n_images * empty_fraction)) if empty_fraction > 0 else 0
    empty_ids = set(rng.sample(range(n_images), n_empty))
    info = SampleInfo(root=out, classes=tuple(classes), per_class={c: 0 for c in classes},
                      voc_dir=voc, images_dir=voc / "JPEGImages")
    cat_ids = {c: i + 1 for i, c in enumerate(classes)}  # COCO category ids are 1-based
    coco_images, coco_anns, splits = [], [], {"train": [], "val": []}
    for i in range(n_images):
        stem = f"{prefix}_{i:04d}"
        image, objects = draw_image(rng, nrng, classes, empty=i in empty_ids)
        w, h = image.size
        _write(voc / "JPEGImages" / f"{stem}.jpg", encode_jpeg(image))
        xml = _voc_xml("JPEGImages", f"{stem}.jpg", w, h, objects)
        _write(voc / "Annotations" / f"{stem}.xml", xml.encode("utf-8"))
        splits["val" if i % VAL_EVERY == VAL_EVERY - 1 else "train"].append(stem)
        coco_images.append({"id": i + 1, "file_name": f"{stem}.jpg", "width": w, "height": h})
        for label, (x1, y1, x2, y2) in objects:
            coco_anns.append({
                "id": len(coco_anns) + 1, "image_id": i + 1, "category_id": cat_ids[label],
                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0,
            })
            info.per_class[label] += 1
            info.boxes += 1
        info.images += 1
        info.empty_images += not objects
    for name, stems in splits.items():
        _write(voc / "ImageSets" / "Main" / f"{name}.txt", ("\n".join(stems) + "\n").encode())
    if coco:
        doc = {
            "info": {"description": "yolo-tl synthetic shapes (python -m yolo_tl.demo.sample)",
                     "version": "1.0"},
            "licenses": [],
            "categories": [{"id": cat_ids[c], "name": c, "supercategory": "shape"} for c in classes],
            "images": coco_images,
            "annotations": coco_anns,
        }
        info.coco_json = out / "coco" / "annotations.json"
        text = json.dumps(doc, indent=None, separators=(",", ":"), sort_keys=True)
        # One record per line: small, and readable in a diff.
        text = text.replace("},{", "},\n{").replace(":[{", ":[\n{")
        _write(info.coco_json, (text + "\n").encode("utf-8"))
    log.info("wrote %d images (%d without objects), %d boxes to %s", info.images,
             info.empty_images, info.boxes, out)
    return info


def generate_sample(out: Path = REPO_SAMPLE_DIR, *, overwrite: bool = False) -> SampleInfo:
    """The bundled sample, exactly as committed under ``datasets/sample``."""
    return generate(out, overwrite=overwrite)


def generate_source_task(out: Path, *, n_images: int = 240, seed: int = SOURCE_SEED,
                         overwrite: bool = True) -> SampleInfo:
    """The synthetic *source* task (other classes: cross, ring, hexagon, crescent), VOC form only.

    The offline demo pretrains on it to get a starting point that has learnt edges, colours and
    blobs, before transferring to the sample's classes with the backbone frozen.
    """
    return generate(out, classes=SOURCE_CLASSES, n_images=n_images, seed=seed, prefix="source",
                    coco=False, overwrite=overwrite)


def file_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, keyed by its relative POSIX path."""
    root = Path(root)
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m yolo_tl.demo.sample",
        description="Regenerate the bundled sample dataset (byte-identical to the committed one).",
    )
    parser.add_argument("--out", type=Path, default=REPO_SAMPLE_DIR, help="default: %(default)s")
    parser.add_argument("--source-task", action="store_true",
                        help="write the synthetic source task (other classes) instead")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.source_task:
        info = generate_source_task(args.out)
    else:
        info = generate_sample(args.out, overwrite=True)
    print(json.dumps(info.as_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
