"""Write a corrected YOLO dataset: the source's images linked, its labels with accepted fixes applied.

A fix adds, removes, relabels or moves one box of one image. Boxes of an image are numbered as
``read_yolo_labels`` reads them: the non-empty lines of its label file, from 0. A fix on an existing
box names the box's number and what the box was (``before``); the box is checked to still be that,
so a fix made on labels that have changed since is refused rather than applied to the wrong box.

The output is a new folder (built beside its place, renamed in at the end): ``data.yaml``,
``images/<split>/`` linked as ``prepare`` links them, ``labels/<split>/`` (files without a fix are
copied byte for byte), and ``fixes.json`` listing each applied fix. The source is only read; the
same fixes, in any order, give byte-identical output.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from yolo_tl.dataset.boxes import clip_xyxy, format_yolo_line, has_area, xyxy_to_yolo
from yolo_tl.dataset.formats.yolo import (
    SPLITS,
    DataYaml,
    label_path_for,
    load_data_yaml,
    render_data_yaml,
    split_images,
    write_text,
)
from yolo_tl.dataset.images import read_image_info
from yolo_tl.dataset.output import LINK_MODES, check_output, clean_leftovers, commit_output, partial_dir, place_image
from yolo_tl.errors import FixError, LayoutError, OutputError, YoloTLError

log = logging.getLogger(__name__)

FIX_KINDS = ("add", "remove", "relabel", "move")
FIXES_FILE = "fixes.json"
PixelBox = tuple[int, float, float, float, float]  # class id, x1, y1, x2, y2 in pixels of the image as shown
_TOLERANCE_PX = 1.0  # a label line holds 6 decimals of the image size: its box is within a pixel of the fix's


@dataclass(frozen=True)
class LabelFix:
    """One accepted fix.

    ``image``: the image path as the data.yaml lists it, relative to the dataset root (or absolute).
    ``box``: the number of the box it changes (``None`` for ``add``). ``before``: that box as the fix
    saw it, ``(class, x1, y1, x2, y2)`` in pixels; ``after``: the box to write (``add`` / ``move``: a
    class and a box; ``relabel``: the new class, the box itself is kept as written). ``score`` and
    ``accepted`` (how it was accepted: a tag, ``--accept-above 0.5``) go into fixes.json; ``issue``
    names the suspect kind it came from.
    """

    image: str
    kind: str
    box: int | None = None
    before: PixelBox | None = None
    after: PixelBox | None = None
    score: float | None = None
    accepted: str = "manual"
    issue: str | None = None


@dataclass
class FixReport:
    out: Path
    images: int
    labels_changed: int
    applied: list[dict]


def _image_names(data: DataYaml, split: str, images: list[Path]) -> dict[Path, str]:
    """Output name of each image: its path below the split's folder (a list or file entry: its name)."""
    names: dict[Path, str] = {}
    dirs = [e.resolve() for e in data.entries[split] if e.resolve().is_dir()]
    taken: dict[str, Path] = {}
    for image in images:
        real = _real(image)
        base = next((d for d in dirs if d in real.parents), None)
        name = real.relative_to(base).as_posix() if base is not None else real.name
        stem_key = name.rsplit(".", 1)[0].lower()
        if stem_key in taken:
            raise LayoutError(f"two images of split '{split}' share the label name {name.rsplit('.', 1)[0]}.txt: "
                              f"{taken[stem_key]} and {image}", path=data.path, field=split)
        taken[stem_key] = image
        names[image] = name
    return names


def _real(path: str | Path) -> Path:
    """The path with its folders resolved but not its file: an image that is a link (prepare --link
    symlink) keeps its own name and place, a dataset reached through a linked folder is still found."""
    path = Path(os.path.abspath(path))
    return Path(os.path.realpath(path.parent)) / path.name


def _key(data: DataYaml, image: str | Path) -> str:
    """The fix's way of naming an image: relative to the dataset root when below it."""
    path = _real(image if Path(image).is_absolute() else data.root / image)
    try:
        return path.relative_to(os.path.realpath(data.root)).as_posix()
    except ValueError:
        return path.as_posix()


def _pixels(line: str, width: int, height: int) -> PixelBox:
    parts = line.split()
    cx, cy, w, h = (float(v) for v in parts[1:5])
    return (int(float(parts[0])), (cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width,
            (cy + h / 2) * height)


def _line_for(fix: LabelFix, after: PixelBox, nc: int, size: tuple[int, int], where: str) -> str:
    cls = after[0]
    if not isinstance(cls, int) or not 0 <= cls < nc:
        raise FixError(f"{fix.kind} fix: class id {cls} is not in data.yaml names (0..{nc - 1})", path=where)
    width, height = size
    box, _ = clip_xyxy(tuple(float(v) for v in after[1:5]), width, height)  # type: ignore[arg-type]
    if not has_area(box):
        raise FixError(f"{fix.kind} fix: box {tuple(after[1:5])} has no area inside the {width}x{height} image "
                       "(cannot be applied)", path=where)
    return format_yolo_line(cls, xyxy_to_yolo(box, width, height))


def _apply(fixes: list[LabelFix], text: str, nc: int, size: tuple[int, int] | None, where: str
           ) -> tuple[str, list[dict]]:
    """The new label text for one image's fixes, and one fixes.json entry per fix."""
    lines = [ln.strip() for ln in text.splitlines() if ln.split()]
    new: list[str | None] = list(lines)
    added: list[tuple[str, LabelFix]] = []
    records: list[dict] = []
    seen: dict[int, str] = {}
    for fix in fixes:
        if fix.kind not in FIX_KINDS:
            raise FixError(f"unknown fix kind {fix.kind!r} (use {', '.join(FIX_KINDS)})", path=where)
        if fix.kind in ("add", "move", "relabel") and fix.after is None:
            raise FixError(f"{fix.kind} fix without the box to write (after)", path=where)
        if size is None:
            raise FixError("the image cannot be read, so its boxes cannot be placed", path=where)
        before_line = None
        if fix.kind != "add":
            if fix.box is None or not 0 <= fix.box < len(lines):
                raise FixError(f"{fix.kind} fix on box {fix.box}, but the label file has {len(lines)} boxes "
                               "(the box no longer exists)", path=where)
            if fix.box in seen:
                raise FixError(f"two fixes on box {fix.box} ({seen[fix.box]} and {fix.kind}): accept one",
                               path=where)
            seen[fix.box] = fix.kind
            before_line = lines[fix.box]
            if fix.before is not None:
                have = _pixels(before_line, *size)
                if have[0] != fix.before[0] or any(abs(a - b) > _TOLERANCE_PX
                                                   for a, b in zip(have[1:], fix.before[1:5])):
                    raise FixError(f"box {fix.box} is now '{before_line}', not the box the {fix.kind} fix was made "
                                   "for (the labels changed since)", path=where)
        if fix.kind == "remove":
            new[fix.box] = None  # type: ignore[index]
            after_line = None
        elif fix.kind == "relabel":
            cls = fix.after[0]  # type: ignore[index]
            if not isinstance(cls, int) or not 0 <= cls < nc:
                raise FixError(f"relabel fix: class id {cls} is not in data.yaml names (0..{nc - 1})", path=where)
            after_line = " ".join([str(cls)] + before_line.split()[1:])  # type: ignore[union-attr]
            new[fix.box] = after_line  # type: ignore[index]
        else:
            after_line = _line_for(fix, fix.after, nc, size, where)  # type: ignore[arg-type]
            if fix.kind == "move":
                new[fix.box] = after_line  # type: ignore[index]
            else:
                added.append((after_line, fix))
        records.append({"kind": fix.kind, "box": fix.box, "before": before_line, "after": after_line,
                        "score": fix.score, "accepted": fix.accepted, "issue": fix.issue})
    kept = [ln for ln in new if ln is not None] + sorted(line for line, _ in added)
    return "".join(ln + "\n" for ln in kept), records


def _sort_key(fix: LabelFix) -> tuple:
    return (fix.image, -1 if fix.box is None else fix.box, fix.kind, repr(fix.after))


def write_fixed_dataset(data_yaml: str | Path, fixes: Sequence[LabelFix], out: str | Path, *,
                        link: str = "hardlink") -> FixReport:
    """Write the dataset of ``data_yaml`` with ``fixes`` applied to ``out`` (a new folder); return a report.

    Every fix is checked before anything is written: a fix on an image that is not in the dataset, on a
    box that no longer exists or is no longer what it was, two fixes on one box, or a box that does not
    fit the image stops with one line naming it, and ``out`` is not created. ``out`` must not exist.
    """
    if link not in LINK_MODES:
        raise LayoutError(f"--link {link!r}: use one of {', '.join(LINK_MODES)}")
    data = load_data_yaml(Path(data_yaml).expanduser().resolve(), error=LayoutError)
    out = Path(out).expanduser().absolute()
    if out.exists() or out.is_symlink():
        raise OutputError("output already exists; choose a new folder", path=out)
    check_output(out, [data.root], overwrite=False)

    plan: list[tuple[str, Path, str]] = []  # (split, image, output name)
    where_is: dict[str, tuple[str, Path]] = {}
    splits: list[str] = []
    written_sets: list[tuple[str, frozenset]] = []
    for split in SPLITS:
        if split not in data.entries:
            continue
        images = split_images(data, split, error=LayoutError)
        same = next((s for s, imgs in written_sets if imgs == frozenset(images)), None)
        if same is not None:  # e.g. val: images/train; the alias is kept in data.yaml, the images once
            continue
        written_sets.append((split, frozenset(images)))
        splits.append(split)
        names = _image_names(data, split, images)
        for image in images:
            plan.append((split, image, names[image]))
            where_is.setdefault(_key(data, image), (split, image))

    by_image: dict[str, list[LabelFix]] = {}
    for fix in sorted(fixes, key=_sort_key):
        key = _key(data, fix.image)
        if key not in where_is:
            raise FixError(f"{fix.kind} fix for an image that is not in the dataset: {fix.image}", path=data.path)
        by_image.setdefault(key, []).append(fix)

    new_labels: dict[Path, str] = {}
    applied: list[dict] = []
    for key in sorted(by_image):
        _, image = where_is[key]
        label = label_path_for(image)
        try:
            text = label.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            text = ""
        try:
            info = read_image_info(image)
            size: tuple[int, int] | None = (info.width, info.height)
        except YoloTLError:
            size = None
        new_text, records = _apply(by_image[key], text, data.nc, size, str(label))
        new_labels[image] = new_text
        applied += [{"image": key, **r} for r in records]

    clean_leftovers(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create the output's folder ({err.strerror or err})", path=out.parent) from None
    tmp = partial_dir(out)
    try:
        for split, image, name in plan:
            dst = tmp / "images" / split / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            truncated = image.suffix.lower() in (".jpg", ".jpeg") and read_image_info(image).truncated_jpeg
            place_image(image, dst, link, truncated_jpeg=truncated)
            label_dst = tmp / "labels" / split / (name.rsplit(".", 1)[0] + ".txt")
            label_dst.parent.mkdir(parents=True, exist_ok=True)
            if image in new_labels:
                write_text(label_dst, new_labels[image])
            elif label_path_for(image).is_file():
                shutil.copyfile(label_path_for(image), label_dst)
        header = "# Ultralytics YOLO detection dataset written by yolo-tl (labels with accepted fixes)\n"
        yaml_text = render_data_yaml(out, splits, data.names).split("\n", 1)[1]
        write_text(tmp / "data.yaml", header + yaml_text)
        doc = {"source": str(data.path), "fixes": applied}
        write_text(tmp / FIXES_FILE, json.dumps(doc, indent=2, sort_keys=True) + "\n")
        commit_output(tmp, out)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(f"writing the output failed ({err.strerror or err})", path=err.filename or out) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("wrote %d images with %d fixes into %s", len(plan), len(applied), out)
    return FixReport(out=out, images=len(plan), labels_changed=len(new_labels), applied=applied)
