"""Recognise the layout of a source folder or file: which annotation files, where their images are,
and which split each belongs to. No annotation is parsed here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from yolo_tl.errors import LayoutError

SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val",
                 "validation": "val", "test": "test", "testing": "test"}


def normalise_split(name: str) -> Optional[str]:
    """'valid' / 'validation' -> 'val', 'train2017' -> 'train'; None when not a split name."""
    key = re.sub(r"\d+$", "", name.strip().lower())
    return SPLIT_ALIASES.get(key)


@dataclass
class AnnotationFile:
    path: Path
    image_dir: Path  # where the file's image names are looked up
    boundary: Path  # nothing the annotations name may resolve outside this folder
    split: Optional[str] = None
    fallback_dirs: List[Path] = field(default_factory=list)  # COCO: other places to look


@dataclass
class SourcePlan:
    format: str  # "voc" | "coco"
    layout: str  # a short description for the report
    files: List[AnnotationFile]
    splits: Optional[Dict[str, str]] = None  # VOC ImageSets: annotation stem -> split


def _child(folder: Path, name: str) -> Optional[Path]:
    """A direct sub-folder, matched case-insensitively."""
    want = name.lower()
    for child in sorted(folder.iterdir()):
        if child.is_dir() and child.name.lower() == want:
            return child
    return None


def _xmls(folder: Path, recursive: bool = False) -> List[Path]:
    if recursive:
        found = (p for p in folder.glob("**/*") if p.suffix.lower() == ".xml" and p.is_file())
    else:  # one folder: scandir's entries know their type, no stat per file
        with os.scandir(folder) as entries:
            found = [folder / e.name for e in entries  # len > 4: Path(".xml").suffix is ""
                     if len(e.name) > 4 and e.name.lower().endswith(".xml") and e.is_file()]
    return sorted(found, key=str)


def _imagesets(root: Path) -> Optional[Dict[str, str]]:
    """VOC ImageSets/Main/{train,val,test}.txt -> {stem: split}; None when there are none."""
    main = root / "ImageSets" / "Main"
    if not main.is_dir():
        return None
    result: Dict[str, str] = {}
    for txt in sorted(p for p in main.glob("*.txt") if p.is_file()):
        split = normalise_split(txt.stem)
        if split is None:  # trainval.txt, per-class files like aeroplane_train.txt
            continue
        for line in txt.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            if not parts:
                continue
            previous = result.setdefault(parts[0], split)
            if previous != split:
                raise LayoutError(f"'{parts[0]}' is listed in both {previous} and {split}", path=txt)
    return result or None


def _voc_plan(source: Path, images: Optional[Path]) -> Optional[SourcePlan]:
    ann_dir = _child(source, "Annotations")
    img_dir = images or _child(source, "JPEGImages") or _child(source, "images")
    xmls = _xmls(ann_dir, recursive=True) if ann_dir is not None and img_dir is not None else []
    if xmls:
        splits = _imagesets(source)
        layout = "VOC devkit (Annotations/, JPEGImages/)" if _child(source, "JPEGImages") else \
            "VOC (annotations/, images/)"
        files = [AnnotationFile(x, img_dir, img_dir) for x in xmls]
        return SourcePlan("voc", layout + (", ImageSets/Main splits" if splits else ""), files, splits)
    # VOCdevkit/VOC2007: descend into the one year folder
    subs = [c for c in sorted(source.iterdir()) if c.is_dir() and _child(c, "Annotations")]
    if images is None and len(subs) == 1:
        return _voc_plan(subs[0], None)
    xmls = _xmls(source, recursive=images is None)
    if not xmls:
        return None
    if images is not None:
        files = [AnnotationFile(x, images, images) for x in xmls]
        return SourcePlan("voc", "VOC XML folder with --images", files)
    files = [AnnotationFile(x, x.parent, source) for x in xmls]
    return SourcePlan("voc", "VOC XML beside images", files)


def _coco_json_plan(json_path: Path, images: Optional[Path]) -> SourcePlan:
    folder = json_path.parent
    if images is not None:
        f = AnnotationFile(json_path, images, images)
    else:
        fallback = [d for d in (folder / "images",) if d.is_dir()]
        f = AnnotationFile(json_path, folder, folder, fallback_dirs=fallback)
    return SourcePlan("coco", "one COCO JSON", [f])


def _coco_dir_plan(source: Path, images: Optional[Path]) -> Optional[SourcePlan]:
    # Roboflow export: train/ valid/ test/ each with _annotations.coco.json beside its images
    robo = []
    for child in sorted(source.iterdir()):
        ann = child / "_annotations.coco.json"
        if child.is_dir() and ann.is_file():
            split = normalise_split(child.name)
            if split is None:
                raise LayoutError(f"folder '{child.name}' is not a split name (train/valid/test)",
                                  path=ann)
            robo.append(AnnotationFile(ann, child, child, split))
    if robo:
        return SourcePlan("coco", "Roboflow COCO export", robo)
    # COCO folder: instances_<split>.json in the root or in annotations/
    ann_dir = _child(source, "annotations") or source
    inst = sorted(p for p in ann_dir.glob("instances_*.json") if p.is_file())  # never open a FIFO
    if inst:
        files = []
        for js in inst:
            tag = js.stem[len("instances_"):]
            split = normalise_split(tag)
            if images is not None:
                files.append(AnnotationFile(js, images, images, split))
                continue
            candidates = [source / tag, source / "images" / tag, source / "images", source]
            found = [c for c in candidates if c.is_dir()]
            files.append(AnnotationFile(js, found[0], source, split, fallback_dirs=found[1:]))
        return SourcePlan("coco", "COCO folder (instances_*.json)", files)
    jsons = sorted(p for p in source.glob("*.json") if p.is_file())
    if len(jsons) == 1:
        return _coco_json_plan(jsons[0], images)
    if len(jsons) > 1:
        raise LayoutError(f"{len(jsons)} JSON files found; pass the COCO file itself as SOURCE",
                          path=source)
    return None


def detect_layout(source: Path, *, fmt: Optional[str] = None, images: Optional[Path] = None) -> SourcePlan:
    """Work out what SOURCE holds. ``fmt`` ('voc'/'coco') skips the guessing."""
    if not source.exists():
        raise LayoutError("source not found", path=source)
    if images is not None and not images.is_dir():
        raise LayoutError("--images folder not found", path=images)
    if fmt not in (None, "voc", "coco"):
        raise LayoutError(f"unknown format {fmt!r} (use voc or coco)")
    if not source.is_file() and not source.is_dir():  # a FIFO or a device would block or fail
        raise LayoutError("SOURCE is not a regular file or folder", path=source)
    if source.is_file():
        if source.suffix.lower() == ".json" and fmt in (None, "coco"):
            return _coco_json_plan(source, images)
        raise LayoutError("SOURCE must be a folder, or a COCO .json file", path=source)
    plan = None
    if fmt in (None, "voc"):
        plan = _voc_plan(source, images)
    if plan is None and fmt in (None, "coco"):
        plan = _coco_dir_plan(source, images)
    if plan is None:
        wanted = {"voc": "VOC XML files", "coco": "COCO JSON files"}.get(fmt or "", "VOC XML or COCO JSON")
        raise LayoutError(f"no {wanted} found (see datasets/README.md for the accepted layouts)",
                          path=source)
    return plan
