"""Tiny datasets written into tmp folders: real JPEG/PNG files, VOC XML, COCO JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

VocObject = tuple  # (name, xmin, ymin, xmax, ymax) or (name, xmin, ymin, xmax, ymax, difficult)


def make_image(path: Path, width: int = 64, height: int = 48, *, orientation: int | None = None,
               color=(120, 60, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", (width, height), color)
    kwargs = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()
    fmt = "PNG" if path.suffix.lower() == ".png" else "JPEG"
    im.save(path, fmt, **kwargs)
    return path


def voc_xml(filename: str | None = "a.jpg", objects: Iterable[VocObject] = (("cat", 5, 5, 20, 15),), *,
            size: tuple[Any, Any] | None = (40, 30), path: str | None = None, extra: str = "",
            prolog: str = "") -> str:
    """A VOC annotation. Every value is written verbatim (bad ones too, for the error tests); ``None``
    leaves out <filename> / <size>; a sixth object item is written as <difficult>; ``extra`` goes in
    after <size>, ``prolog`` before <annotation>."""
    parts = [prolog, "<annotation>", "<folder>VOC</folder>"]
    if filename is not None:
        parts.append(f"<filename>{filename}</filename>")
    if path is not None:
        parts.append(f"<path>{path}</path>")
    if size is not None:
        parts.append(f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>")
    parts.append(extra)
    for obj in objects:
        name, xmin, ymin, xmax, ymax = obj[:5]
        diff = f"<difficult>{obj[5]}</difficult>" if len(obj) > 5 else ""
        parts.append(f"<object><name>{name}</name>{diff}<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
                     f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>")
    parts.append("</annotation>")
    return "\n".join(p for p in parts if p)


def make_voc_devkit(root: Path, items: Sequence[tuple[str, Sequence[VocObject]]], *,
                    size: tuple[int, int] = (64, 48), splits: dict | None = None) -> Path:
    """root/Annotations/*.xml + root/JPEGImages/*.jpg (+ ImageSets/Main/<split>.txt)."""
    for stem, objects in items:
        make_image(root / "JPEGImages" / f"{stem}.jpg", *size)
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / f"{stem}.xml").write_text(voc_xml(f"{stem}.jpg", objects, size=size))
    if splits:
        main = root / "ImageSets" / "Main"
        main.mkdir(parents=True, exist_ok=True)
        for split, stems in splits.items():
            (main / f"{split}.txt").write_text("".join(f"{s}\n" for s in stems))
    return root


def coco_doc(images: Sequence[tuple[int, str, int, int]], annotations: Sequence[dict],
             categories: Sequence[dict]) -> dict:
    return {
        "images": [{"id": i, "file_name": f, "width": w, "height": h} for i, f, w, h in images],
        "annotations": [dict({"id": k + 1, "iscrowd": 0}, **a) for k, a in enumerate(annotations)],
        "categories": list(categories),
    }


def write_json(path: Path, doc) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def read_labels(path: Path):
    return [tuple(float(v) if i else int(v) for i, v in enumerate(line.split()))
            for line in path.read_text().splitlines() if line.strip()]
