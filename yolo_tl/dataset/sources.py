"""Recognise the layout of a source folder or file: which annotation files, where their images are,
and which split each belongs to. No annotation is parsed here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from yolo_tl.dataset.formats.safe_paths import IMAGE_SUFFIXES
from yolo_tl.errors import LayoutError

SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val",
                 "validation": "val", "test": "test", "testing": "test"}


def normalise_split(name: str) -> str | None:
    """'valid' / 'validation' -> 'val', 'train2017' -> 'train'; None when not a split name."""
    key = re.sub(r"\d+$", "", name.strip().lower())
    return SPLIT_ALIASES.get(key)


@dataclass
class AnnotationFile:
    path: Path
    image_dir: Path  # where the file's image names are looked up
    boundary: Path  # nothing the annotations name may resolve outside this folder
    split: str | None = None
    fallback_dirs: list[Path] = field(default_factory=list)  # COCO: other places to look


@dataclass
class SourcePlan:
    format: str  # "voc" | "coco"
    layout: str  # a short description for the report
    files: list[AnnotationFile]
    splits: dict[str, str] | None = None  # VOC ImageSets: str(annotation path) -> split


def _child(folder: Path, name: str) -> Path | None:
    """A direct sub-folder, matched case-insensitively."""
    want = name.lower()
    for child in sorted(folder.iterdir()):
        if child.is_dir() and child.name.lower() == want:
            return child
    return None


def _xmls(folder: Path, recursive: bool = False) -> list[Path]:
    if recursive:
        found = (p for p in folder.glob("**/*") if p.suffix.lower() == ".xml" and p.is_file())
    else:  # one folder: scandir's entries know their type, no stat per file
        with os.scandir(folder) as entries:
            found = [folder / e.name for e in entries  # len > 4: Path(".xml").suffix is ""
                     if len(e.name) > 4 and e.name.lower().endswith(".xml") and e.is_file()]
    return sorted(found, key=str)


def _read_set(txt: Path) -> list[str]:
    """The image ids of one ImageSets list (first word of each line)."""
    ids = []
    for line in txt.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if parts:
            ids.append(parts[0])
    return ids


def _assign(result: dict[str, str], ids: list[str], split: str, txt: Path) -> None:
    for stem in ids:
        previous = result.setdefault(stem, split)
        if previous != split:
            raise LayoutError(f"'{stem}' is listed in both {previous} and {split}", path=txt)


def _imagesets(root: Path) -> dict[str, str] | None:
    """VOC ImageSets/Main/{train,val,test}.txt -> {stem: split}; None when there are none."""
    main = root / "ImageSets" / "Main"
    if not main.is_dir():
        return None
    result: dict[str, str] = {}
    for txt in sorted(p for p in main.glob("*.txt") if p.is_file()):
        split = normalise_split(txt.stem)
        if split is None:  # trainval.txt, per-class files like aeroplane_train.txt
            continue
        _assign(result, _read_set(txt), split, txt)
    return result or None


def _year_sets(root: Path, *, test_is_val: bool) -> dict[str, str] | None:
    """One year of a multi-year VOCdevkit, as the common recipes merge them (Ultralytics' VOC.yaml,
    the SSD / Faster R-CNN "07+12" setting): trainval (or train + val) -> train; with
    ``test_is_val``, test -> val. None when the year has no ImageSets/Main lists."""
    main = root / "ImageSets" / "Main"
    if not main.is_dir():
        return None
    result: dict[str, str] = {}
    trainval = main / "trainval.txt"
    parts = [trainval] if trainval.is_file() else [main / "train.txt", main / "val.txt"]
    for txt in parts:
        if txt.is_file():
            _assign(result, _read_set(txt), "train", txt)
    if test_is_val and (main / "test.txt").is_file():
        _assign(result, _read_set(main / "test.txt"), "val", main / "test.txt")
    return result or None


IMAGE_DIR_NAMES = ("JPEGImages", "images", "imgs", "img", "jpg", "jpeg", "photos", "pictures")
XML_DIR_NAMES = ("Annotations", "annots", "annotation", "annotations_xml", "xml", "xmls", "labels")


def _folders_seen(source: Path) -> str:
    subs = [c.name + "/" for c in sorted(source.iterdir()) if c.is_dir()]
    return ", ".join(subs[:12]) + (", ..." if len(subs) > 12 else "") if subs else "no sub-folders"


def _annotation_dir(source: Path) -> tuple[Path | None, list[Path]]:
    """The first sub-folder with a common annotation-folder name that holds VOC XML, and its XML."""
    for name in XML_DIR_NAMES:
        folder = _child(source, name)
        xmls = _xmls(folder, recursive=True) if folder is not None else []
        if xmls:
            return folder, xmls
    return None, []


def _has_images(folder: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.rglob("*"))


def _year_dirs(source: Path) -> list[Path]:
    """VOCdevkit/VOC2007, VOC2012, ...: sub-folders with Annotations/ and an images folder."""
    return [c for c in sorted(source.iterdir()) if c.is_dir() and _child(c, "Annotations") is not None
            and _xmls(_child(c, "Annotations"))]


def _devkit_plan(source: Path, years: list[Path], year: str | None) -> SourcePlan:
    """A VOCdevkit with several years: merged (every image once, one class list) or ``year`` alone."""
    if year is not None:
        want = year.strip().lower()
        chosen = [y for y in years if y.name.lower() in (want, f"voc{want}")]
        if not chosen:
            raise LayoutError(f"--year {year}: no such year here (found {', '.join(y.name for y in years)})",
                              path=source)
        return _voc_plan(chosen[0], None)  # type: ignore[return-value]
    has_2007_test = any(y.name.lower() == "voc2007" and (y / "ImageSets" / "Main" / "test.txt").is_file()
                        for y in years)
    files: list[AnnotationFile] = []
    splits: dict[str, str] = {}
    described = []
    for y in years:
        img_dir = next((d for d in (_child(y, n) for n in IMAGE_DIR_NAMES) if d is not None), None)
        if img_dir is None:
            raise LayoutError(f"{y.name}/ has Annotations/ but no JPEGImages/ folder", path=y)
        xmls = _xmls(_child(y, "Annotations"), recursive=True)  # type: ignore[arg-type]
        sets = _year_sets(y, test_is_val=y.name.lower() == "voc2007")
        for x in xmls:
            split = (sets or {}).get(x.stem) if sets is not None else "train"
            files.append(AnnotationFile(x, img_dir, img_dir))
            if split is not None:
                splits[str(x)] = split
        described.append(f"{y.name} " + ("trainval" if sets is not None else "all (no ImageSets)"))
    val = "VOC2007 test" if has_2007_test else "none given (carved from train)"
    layout = (f"VOCdevkit, {len(years)} years merged: train = {' + '.join(described)}; val = {val}"
              " (pass --year to take one)")
    return SourcePlan("voc", layout, files, splits)


def _voc_plan(source: Path, images: Path | None) -> SourcePlan | None:
    ann_dir, xmls = _annotation_dir(source)
    named_img = next((d for d in (_child(source, n) for n in IMAGE_DIR_NAMES) if d is not None), None)
    img_dir = images or named_img
    if ann_dir is not None and img_dir is None and _has_images(ann_dir):
        ann_dir, xmls = None, []  # XML beside their images inside that folder: the rule below finds them
    if ann_dir is not None and img_dir is None:
        holding = [c for c in sorted(source.iterdir()) if c.is_dir() and c != ann_dir and _has_images(c)]
        target = str(holding[0]) if len(holding) == 1 else f"{source}/<the folder with the images>"
        raise LayoutError(
            f"VOC XML found in {ann_dir.name}/ but no images folder (looked for "
            f"{', '.join(n + '/' for n in IMAGE_DIR_NAMES[:4])}; folders here: {_folders_seen(source)})",
            path=source, hint=f"pass --images {target}")
    if xmls:
        stems = _imagesets(source)
        splits = {str(x): stems[x.stem] for x in xmls if x.stem in stems} if stems else None
        layout = "VOC devkit (Annotations/, JPEGImages/)" if _child(source, "JPEGImages") else \
            f"VOC ({ann_dir.name}/, {img_dir.name}/)"  # type: ignore[union-attr]
        files = [AnnotationFile(x, img_dir, img_dir) for x in xmls]  # type: ignore[arg-type]
        return SourcePlan("voc", layout + (", ImageSets/Main splits" if stems else ""), files, splits)
    # VOCdevkit/VOC2007 (+ VOC2012): one year is entered; several are merged (--year picks one)
    years = _year_dirs(source) if images is None else []
    if len(years) > 1:
        return _devkit_plan(source, years, None)
    if len(years) == 1:
        return _voc_plan(years[0], None)
    xmls = _xmls(source, recursive=images is None)
    if not xmls:
        return None
    if images is not None:
        files = [AnnotationFile(x, images, images) for x in xmls]
        return SourcePlan("voc", "VOC XML folder with --images", files)
    files = [AnnotationFile(x, x.parent, source) for x in xmls]
    return SourcePlan("voc", "VOC XML beside images", files)


def _coco_json_plan(json_path: Path, images: Path | None) -> SourcePlan:
    folder = json_path.parent
    if images is not None:
        f = AnnotationFile(json_path, images, images)
    else:
        fallback = [d for d in (folder / "images",) if d.is_dir()]
        f = AnnotationFile(json_path, folder, folder, fallback_dirs=fallback)
    return SourcePlan("coco", "one COCO JSON", [f])


def _coco_dir_plan(source: Path, images: Path | None) -> SourcePlan | None:
    # Roboflow export: train/ valid/ test/ each with _annotations.coco.json beside its images
    robo = []
    for child in sorted(source.iterdir()):
        ann = child / "_annotations.coco.json"
        if child.is_dir() and ann.is_file():
            split = normalise_split(child.name)
            if split is None:
                raise LayoutError(f"folder '{child.name}' is not a split name (train/valid/test)",
                                  path=ann)
            moved = [d for d in (child / "images",) if d.is_dir()]  # images moved into <split>/images/
            robo.append(AnnotationFile(ann, child, child, split, fallback_dirs=moved))
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


def detect_layout(source: Path, *, fmt: str | None = None, images: Path | None = None,
                  year: str | None = None) -> SourcePlan:
    """Work out what SOURCE holds. ``fmt`` ('voc'/'coco') skips the guessing; ``year`` picks one
    year of a VOCdevkit."""
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
    if year is not None:  # never ignored: it either picks a year of a VOCdevkit or is refused
        years = _year_dirs(source) if source.is_dir() and fmt in (None, "voc") and images is None else []
        if not years:
            raise LayoutError(f"--year {year}: SOURCE is not a VOCdevkit with year folders (VOC2007/, ...)",
                              path=source)
        return _devkit_plan(source, years, year)
    plan = None
    if fmt in (None, "voc"):
        plan = _voc_plan(source, images)
    if plan is None and fmt in (None, "coco"):
        plan = _coco_dir_plan(source, images)
    if plan is None:
        wanted = {"voc": "VOC XML files", "coco": "COCO JSON files"}.get(fmt or "", "VOC XML or COCO JSON")
        raise LayoutError(f"no {wanted} found (folders here: {_folders_seen(source)}; see datasets/README.md "
                          "for the accepted layouts)", path=source)
    return plan
