"""Check a YOLO dataset made elsewhere before Ultralytics sees it: every label line, once, fast.

Ultralytics drops a whole image whose label it finds bad ("ignoring corrupt image/label") and
trains on the rest without stopping. This module applies the same rules as its
``verify_image_label`` (8.4), but reports the first bad line as ``file: line N: problem`` or, with
``on_error="skip"``, lists the images to leave out. Images are checked from their headers only
(no pixel decoding). A JPEG without its end marker is refused where Ultralytics would rewrite a file
the user owns (it saves a "restored" copy over the file); inside a folder written by ``yolo-tl
prepare``, an image that is its own file (not a link) belongs to yolo-tl and may be rewritten, and
is counted. Either way, one that Pillow cannot decode is refused: Ultralytics would drop it.

What is fine: an image without a label file (a background image), an empty label file, empty
lines, duplicate lines (Ultralytics removes them; they are counted), a file of polygons only
(Ultralytics trains on their bounding boxes), a label file without an image (ignored; counted).
"""

from __future__ import annotations

import logging
import math
import os
import stat
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from yolo_tl.dataset.formats.yolo import DataYaml, label_path_for
from yolo_tl.dataset.images import pil_problem, read_image_info
from yolo_tl.dataset.output import MARKER
from yolo_tl.errors import AnnotationError, ImageError, YoloTLError

log = logging.getLogger(__name__)

ON_ERROR = ("fail", "skip")
MIN_SIDE = 10  # Ultralytics drops images under 10 px on a side


@dataclass
class BadItem:
    """One image Ultralytics would drop, and why (the first problem found)."""

    split: str
    image: str
    file: str  # the file at fault: the label file or the image
    line: int | None
    reason: str

    def message(self) -> str:
        where = f"{self.file}: line {self.line}" if self.line else self.file
        return f"{where}: {self.reason}"


@dataclass
class LabelCheck:
    """What the check found, per split; ``bad`` holds every image to leave out."""

    images: dict[str, list[Path]] = field(default_factory=dict)  # split -> images kept
    bad: list[BadItem] = field(default_factory=list)
    backgrounds: int = 0  # images without a label file
    duplicate_lines: int = 0
    polygon_files: int = 0
    orphan_labels: int = 0  # label files beside no image
    truncated_copies: int = 0  # JPEGs without end marker that prepare copied: Ultralytics restores them

    def to_dict(self) -> dict:
        return {
            "images": {k: len(v) for k, v in self.images.items()},
            "skipped": [asdict(b) for b in self.bad],
            "backgrounds": self.backgrounds,
            "duplicate_lines": self.duplicate_lines,
            "polygon_files": self.polygon_files,
            "orphan_labels": self.orphan_labels,
            "truncated_copies": self.truncated_copies,
        }


def check_line(parts: Sequence[str], nc: int) -> tuple[str | None, bool]:
    """(problem or None, is_polygon) for one split label line, as Ultralytics would judge it."""
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        return f"not a number in {' '.join(parts)!r}", False
    if not all(math.isfinite(v) for v in vals):
        return "not a finite number (nan or inf)", False
    n = len(vals)
    if n == 6:
        return ("6 values: this looks like a predictions file (cls cx cy w h conf); "
                "labels have 5 (cls cx cy w h)"), False
    polygon = n > 6
    if polygon and n % 2 == 0:
        return f"{n} values: a polygon needs a class id and x y pairs (an odd count)", True
    if not polygon and n != 5:
        return f"{n} values; expected 5 (cls cx cy w h)", False
    cls, coords = vals[0], vals[1:]
    if cls % 1 != 0 or cls < 0:
        return f"class id {parts[0]} is not a whole number >= 0", polygon
    if cls >= nc:
        return f"class id {int(cls)} >= nc {nc} (data.yaml names has ids 0..{nc - 1})", polygon
    if max(coords) > 1.01:  # Ultralytics' 1% tolerance
        return f"coordinate {max(coords):g} > 1: coordinates must be normalised to [0, 1]", polygon
    low = min(coords)
    if low < 0 and (low < -0.01 or (not polygon and min(coords[2:]) < 0)):
        return f"negative coordinate {low:g}", polygon
    return None, polygon


def check_label_text(text: str, nc: int) -> tuple[tuple[int, str] | None, int, bool]:
    """((line, problem) of the first bad line or None, duplicate lines, file is polygons)."""
    seen: set = set()
    dups, kinds = 0, set()
    for lineno, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        problem, polygon = check_line(parts, nc)
        if problem:
            return (lineno, problem), dups, False
        if kinds and polygon not in kinds:
            return (lineno, "a file mixes polygons and boxes; Ultralytics drops it"), dups, False
        kinds.add(polygon)
        key = tuple(float(p) for p in parts)
        dups += key in seen
        seen.add(key)
    return None, dups, kinds == {True}


def _check_image(path: Path, own_root: Path | None, result: LabelCheck) -> str | None:
    if not path.is_file():
        return "image listed in the split does not exist"
    try:
        info = read_image_info(path)
    except ImageError as err:
        return err.reason
    if min(info.width, info.height) < MIN_SIDE:
        return f"image is {info.width}x{info.height}; Ultralytics drops images under {MIN_SIDE} px a side"
    if info.truncated_jpeg:
        if not _prepared_copy(path, own_root):
            return "JPEG without its end marker (truncated); Ultralytics would rewrite this file in place"
        problem = pil_problem(path.read_bytes())
        if problem:
            return (f"JPEG without its end marker that Pillow cannot decode ({problem}); Ultralytics would drop "
                    "it (yolo-tl prepare --overwrite writes it again with its end marker put back)")
        result.truncated_copies += 1
    return None


def _prepared_copy(path: Path, own_root: Path | None) -> bool:
    """Whether ``path`` is a file of its own inside a dataset written by yolo-tl prepare: no symlink or
    hardlink shares it with the user's source, so a rewrite touches nothing of the user's."""
    if own_root is None:
        return False
    try:
        inside = Path(os.path.realpath(path.parent)).is_relative_to(own_root)
        st = path.lstat()
    except OSError:
        return False
    return inside and stat.S_ISREG(st.st_mode) and st.st_nlink == 1


def check_dataset(data: DataYaml, splits: Sequence[str] = ("train", "val"), *, on_error: str = "fail",
                  error: type[YoloTLError] = AnnotationError, hint: str | None = None) -> LabelCheck:
    """Check every image header and label line of ``splits``; raise on the first bad one unless
    ``on_error="skip"``, which collects them in ``LabelCheck.bad`` and leaves them out of ``images``.
    ``hint`` ends the error line (how to get past it in the caller's terms)."""
    if on_error not in ON_ERROR:
        raise YoloTLError(f"must be one of {', '.join(ON_ERROR)}, got {on_error!r}", field="on_error")
    result = LabelCheck()
    own_root = Path(os.path.realpath(data.root)) if (data.root / MARKER).is_file() else None
    done: dict[Path, BadItem | None] = {}
    for split in dict.fromkeys(splits):
        kept = []
        for image in data.images(split, error=error):
            if image not in done:
                done[image] = _check_one(data, split, image, result, own_root)
            bad = done[image]
            if bad is None:
                kept.append(image)
                continue
            if on_error == "fail":
                raise error(bad.reason, path=bad.file, field=f"line {bad.line}" if bad.line else None, hint=hint)
            result.bad.append(bad)
        if not kept:
            raise error(f"split '{split}' has no usable images left", path=data.path, field=split)
        result.images[split] = kept
    result.orphan_labels = _orphans(data, set(done))
    for b in result.bad:
        log.warning("skipped %s", b.message())
    return result


def _check_one(data: DataYaml, split: str, image: Path, result: LabelCheck,
               own_root: Path | None) -> BadItem | None:
    problem = _check_image(image, own_root, result)
    if problem:
        return BadItem(split, str(image), str(image), None, problem)
    label = label_path_for(image)
    try:
        text = label.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        result.backgrounds += 1
        return None
    except (OSError, UnicodeDecodeError) as err:
        return BadItem(split, str(image), str(label), None, f"unreadable label file ({err})")
    first, dups, polygons = check_label_text(text, data.nc)
    result.duplicate_lines += dups
    result.polygon_files += polygons
    if first:
        return BadItem(split, str(image), str(label), first[0], first[1])
    return None


def _orphans(data: DataYaml, images: set) -> int:
    """Label files in the label folders of the splits that no checked image points to."""
    wanted = {label_path_for(p) for p in images}
    dirs = {label_path_for(p).parent for p in images}
    return sum(1 for d in dirs if d.is_dir() for f in d.glob("*.txt") if f not in wanted)
