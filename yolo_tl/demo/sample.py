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
import json
import logging
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from yolo_tl.demo.drawing import SHAPES, XYXY, draw_image, encode_jpeg
from yolo_tl.errors import OutputError

log = logging.getLogger(__name__)

TARGET_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "star")
SOURCE_CLASSES: tuple[str, ...] = ("cross", "ring", "hexagon", "crescent")
SAMPLE_SEED = 0
SAMPLE_IMAGES = 200
SOURCE_SEED = 1000
VAL_EVERY = 5  # every 5th image goes to ImageSets/Main/val.txt (20 %)

# The committed sample lives here in a source checkout (absent from an installed wheel).
REPO_SAMPLE_DIR = Path(__file__).resolve().parents[2] / "datasets" / "sample"



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
    labelled: Sequence[str] | None = None,
) -> SampleInfo:
    """Draw ``n_images`` images into ``out``: VOC (voc/Annotations, voc/JPEGImages,
    voc/ImageSets/Main/{train,val}.txt) and, with ``coco``, one COCO JSON (coco/annotations.json)
    whose ``file_name`` values are relative to ``voc/JPEGImages`` (the images are stored once).
    With ``labelled``, objects of the other classes are drawn but left out of the annotations.
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
    kept = tuple(c for c in classes if labelled is None or c in labelled)
    info = SampleInfo(root=out, classes=kept, per_class={c: 0 for c in kept},
                      voc_dir=voc, images_dir=voc / "JPEGImages")
    cat_ids = {c: i + 1 for i, c in enumerate(classes)}  # COCO category ids are 1-based
    coco_images, coco_anns, splits = [], [], {"train": [], "val": []}
    for i in range(n_images):
        stem = f"{prefix}_{i:04d}"
        image, objects = draw_image(rng, nrng, classes, empty=i in empty_ids)
        if labelled is not None:
            objects = [o for o in objects if o[0] in labelled]
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
            "categories": [{"id": cat_ids[c], "name": c, "supercategory": "shape"} for c in kept],
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


def generate_mixed_target(out: Path, *, n_images: int = 200, seed: int = SAMPLE_SEED + 7,
                          overwrite: bool = True) -> SampleInfo:
    """A target task whose images also hold *source* objects, unlabelled (VOC form only).

    The usual case for ``--keep-classes``: a user labels only the new classes, while the objects the
    pretrained model knows are in the pictures too. Not the committed sample (other seed, prefix).
    """
    return generate(out, classes=TARGET_CLASSES + SOURCE_CLASSES, n_images=n_images, seed=seed,
                    prefix="mixed", coco=False, overwrite=overwrite, labelled=TARGET_CLASSES)


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
