"""``prepare``: VOC / COCO annotations -> an Ultralytics YOLO dataset, exactly, with a report.

Steps: detect the layout -> read every annotation once -> one class list -> splits -> filter and
clip boxes -> unique output names -> write everything into a partial folder -> rename into place.
``yolo_tl.prepare`` is this module's function (the package's lazy API resolves the name to it, so
the submodule ``yolo_tl.dataset.prepare`` never shadows it: tests/test_layout.py checks).
"""

from __future__ import annotations

import logging
import os
import random
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from yolo_tl.dataset.annotations import ImageAnnotation
from yolo_tl.dataset.boxes import clip_xyxy, format_yolo_line, has_area, is_inverted, xyxy_to_yolo
from yolo_tl.dataset.formats.safe_paths import clear_path_caches
from yolo_tl.dataset.formats.yolo import render_data_yaml, write_text
from yolo_tl.dataset.images import restored_jpeg
from yolo_tl.dataset.output import (
    LINK_MODES,
    MARKER,
    check_output,
    clean_leftovers,
    commit_output,
    partial_dir,
    place_image,
)
from yolo_tl.dataset.read import EXIF_MODES, read_coco_plan, read_voc_plan
from yolo_tl.dataset.report import PrepareReport
from yolo_tl.dataset.sources import detect_layout
from yolo_tl.dataset.verify import find_undecodable
from yolo_tl.errors import ImageError, LayoutError, OutputError, YoloTLError

log = logging.getLogger(__name__)
PathLike = str | Path
Progress = Callable[[str, int, int], None] | None
SPLIT_ORDER = ("train", "val", "test")


def parse_split(spec: str | Sequence[float] | None) -> tuple[float, float, float]:
    """'0.8,0.2' or '0.7,0.2,0.1' -> (train, val, test) fractions summing to 1."""
    if spec is None:
        return (0.8, 0.2, 0.0)
    if isinstance(spec, str):
        try:
            parts = [float(p) for p in spec.split(",") if p.strip()]
        except ValueError:
            raise LayoutError(f"--split {spec!r}: expected numbers like 0.8,0.2") from None
    else:
        parts = [float(p) for p in spec]
    if len(parts) not in (2, 3) or any(p < 0 for p in parts) or abs(sum(parts) - 1.0) > 1e-6:
        raise LayoutError(f"--split {spec!r}: give 2 or 3 non-negative fractions that sum to 1")
    if parts[0] <= 0 or parts[1] <= 0:
        raise LayoutError(f"--split {spec!r}: train and val fractions must be above 0")
    return (parts[0], parts[1], parts[2] if len(parts) == 3 else 0.0)


def _random_split(keys: list[str], fractions: tuple[float, float, float], seed: int) -> dict[str, str]:
    order = sorted(keys)
    random.Random(seed).shuffle(order)
    n = len(order)
    n_val = round(n * fractions[1])
    n_test = round(n * fractions[2])
    if n >= 2:
        n_val = max(n_val, 1)
    if n >= 3 and fractions[2] > 0:
        n_test = max(n_test, 1)
    n_val, n_test = min(n_val, max(n - 1, 0)), min(n_test, max(n - 1 - n_val, 0))
    split = {}
    for i, key in enumerate(order):
        split[key] = "val" if i < n_val else "test" if i < n_val + n_test else "train"
    return split


def _relkey(img: ImageAnnotation, base: Path) -> str:
    """The image path relative to the source (the sort and split key), by string ops: it runs per image."""
    path, prefix = str(img.image_path), str(base).rstrip("/") + "/"
    return path[len(prefix):] if path.startswith(prefix) else path


def _assign_splits(images: list[ImageAnnotation], base: Path, fractions, seed: int, resplit: bool,
                   report: PrepareReport) -> list[tuple[str, ImageAnnotation]]:
    given = {img.split for img in images}
    if not resplit and given != {None}:
        if None in given:
            raise LayoutError("some annotation files have a split and others do not; pass --resplit "
                              "to make a random split of everything")
        assigned = [(img.split, img) for img in images]
        if "train" not in given:
            raise LayoutError(f"the source's splits ({', '.join(sorted(given))}) have no train split")
        report.split_origin = "given by the source"
        if "val" not in given:
            train = [img for s, img in assigned if s == "train"]
            carve = _random_split([_relkey(i, base) for i in train], (1 - fractions[1], fractions[1], 0),
                                  seed)
            assigned = [(carve[_relkey(img, base)] if s == "train" else s, img) for s, img in assigned]
            report.split_origin += f"; val carved from train ({fractions[1]:.0%}, seed {seed})"
        return assigned
    split = _random_split([_relkey(i, base) for i in images], fractions, seed)
    parts = "/".join(f"{f:g}" for f in fractions if f > 0)
    report.split_origin = f"random {parts} (seed {seed})"
    return [(split[_relkey(img, base)], img) for img in images]


def _drop_reason(box, xyxy, class_index: dict[str, int], include_difficult: bool) -> str | None:
    if box.label not in class_index:
        return "class_not_selected"
    if box.crowd:
        return "crowd"
    if box.difficult and not include_difficult:
        return "difficult"
    if is_inverted(xyxy):
        return "inverted"
    if not has_area(xyxy):
        return "zero_area"
    return None


def _yolo_lines(img: ImageAnnotation, class_index: dict[str, int], include_difficult: bool,
                report: PrepareReport) -> tuple[list[str], list[str]]:
    """The image's label lines (and their class names); every box left out is counted in the report.

    The common box (known class, not crowd/difficult, inside the image) takes the short path; any
    other goes through _drop_reason / clipping one step at a time. Both use the same formulas
    (clip_xyxy, xyxy_to_yolo, format_yolo_line), so a line does not depend on the path taken.
    """
    lines, labels = [], []
    width, height = img.width, img.height

    def desc(box, xyxy) -> str:  # built only for boxes that go into the report
        where = (img.source or img.image_path).name
        return f"{where}: {box.label} x1,y1,x2,y2=({', '.join(f'{v:g}' for v in xyxy)}) 0-based px"

    for box in img.boxes:
        label, x1, y1, x2, y2, difficult, crowd = box
        index = class_index.get(label)
        if (index is not None and not crowd and not difficult and 0.0 <= x1 < x2 <= width
                and 0.0 <= y1 < y2 <= height):  # short path: nothing to drop, nothing to clip
            yolo = xyxy_to_yolo((x1, y1, x2, y2), width, height)
            if yolo[2] > 5e-7 and yolo[3] > 5e-7:
                lines.append(format_yolo_line(index, yolo))
                labels.append(label)
                continue
        xyxy = (x1, y1, x2, y2)
        reason = _drop_reason(box, xyxy, class_index, include_difficult)
        if reason is not None:
            report.drop_box(reason, desc(box, xyxy))
            continue
        clipped, changed = clip_xyxy(xyxy, width, height)
        if not has_area(clipped):
            report.drop_box("outside_image", desc(box, xyxy))
            continue
        yolo = xyxy_to_yolo(clipped, width, height)
        if yolo[2] <= 5e-7 or yolo[3] <= 5e-7:
            # under 1e-6 of the image wide or high: the label file would say width 0.000000
            # (the double 5e-7 lies just below 0.0000005, so it too prints as 0.000000)
            report.drop_box("too_small", desc(box, xyxy))
            continue
        if changed:
            report.boxes_clipped += 1
            report._example("clipped", desc(box, xyxy))
        lines.append(format_yolo_line(class_index[label], yolo))
        labels.append(label)
    return lines, labels


def _stem(name: str) -> str:
    """``Path(name).stem`` for a bare file name (no folder part), without building a Path."""
    dot = name.rfind(".")
    return name[:dot] if 0 < dot < len(name) - 1 else name


def _output_names(items: list[tuple[str, ImageAnnotation]], report: PrepareReport) -> list[str]:
    """Unique file names: label files go by stem, so stems must differ (case-insensitively)."""
    taken: set = set()
    names = []
    for _, img in items:
        path = img.image_path
        candidates = [path.name, f"{path.parent.name}_{path.name}"]
        name = next((c for c in candidates if _stem(c).lower() not in taken), None)
        k = 2
        while name is None or _stem(name).lower() in taken:
            name = f"{path.stem}_{k}{path.suffix}"
            k += 1
        taken.add(_stem(name).lower())
        if name != path.name:
            report.renamed.append({"source": str(path), "name": name})
        names.append(name)
    return names


def _class_list(images: list[ImageAnnotation], declared: list[str] | None,
                classes: Sequence[str] | None, include_difficult: bool,
                report: PrepareReport) -> list[str]:
    if classes:
        chosen = [c.strip() for c in classes if c.strip()]
        if len(set(chosen)) != len(chosen):
            raise LayoutError(f"--classes lists a class twice: {', '.join(chosen)}")
        present = {b.label for img in images for b in img.boxes}
        missing = [c for c in chosen if c not in present and c not in (declared or [])]
        if missing:
            report.notes.append(f"--classes names classes with no boxes: {', '.join(missing)}")
        return chosen
    if declared is not None:
        return declared
    return sorted({b.label for img in images for b in img.boxes if include_difficult or not b.difficult})


def _verified(records: list[ImageAnnotation], report: PrepareReport, handle: Callable[[YoloTLError], None],
              progress: Progress) -> list[ImageAnnotation]:
    """The records whose image pixels decode; each one that does not goes through the error policy."""
    # a JPEG without end marker was checked, with the marker put back, by _restorable
    bad = dict(find_undecodable([r.image_path for r in records if not r.truncated_jpeg], progress=progress))
    report.images_verified = len(records)
    for path, problem in bad.items():  # in the records' order
        handle(ImageError(problem, path=path))
    return [r for r in records if r.image_path not in bad]


def _restorable(records: list[ImageAnnotation], report: PrepareReport,
                handle: Callable[[YoloTLError], None]) -> list[ImageAnnotation]:
    """The records without a JPEG that cannot be restored. A JPEG without its end marker gets it back in
    the output (``output.place_image``); one whose pixel data is cut short too goes through the error
    policy, because Ultralytics would drop it."""
    bad = set()
    for r in records:
        if r.truncated_jpeg:
            try:
                restored_jpeg(r.image_path)
                report._example("jpeg_end_marker_restored", str(r.image_path))
            except ImageError as err:
                handle(err)
                bad.add(r.image_path)
    return [r for r in records if r.image_path not in bad] if bad else records


def prepare(
    source: PathLike,
    out: PathLike,
    *,
    format: str | None = None,
    images: PathLike | None = None,
    classes: Sequence[str] | None = None,
    split: str | Sequence[float] | None = None,
    resplit: bool = False,
    seed: int = 0,
    include_difficult: bool = False,
    link: str = "hardlink",
    overwrite: bool = False,
    on_error: str = "fail",
    exif: str = "auto",
    verify_images: bool = False,
    year: str | None = None,
    progress: Progress = None,
) -> PrepareReport:
    """Convert a VOC or COCO dataset at ``source`` into a YOLO dataset at ``out``.

    Returns the report (also written to ``out/prepare_report.json``). Raises a YoloTLError subclass
    with a one-line message on bad input; with ``on_error='skip'`` bad files and items are skipped
    and listed in the report instead. Nothing is written into ``source``.

    ``exif`` (auto|rotate|keep): how boxes of EXIF-turned photos are fitted to the shown frame
    (see ``read.fit_exif``). ``verify_images`` decodes every image's pixels (in worker processes)
    and treats one that does not decode as a bad file. ``year`` picks one year of a VOCdevkit
    that holds several (VOC2007, VOC2012); by default they are merged.
    """
    source = Path(source).expanduser()
    out = Path(out).expanduser().absolute()
    images_dir = Path(images).expanduser() if images is not None else None
    if link not in LINK_MODES:
        raise LayoutError(f"--link {link!r}: use one of {', '.join(LINK_MODES)}")
    if on_error not in ("fail", "skip"):
        raise LayoutError(f"--on-error {on_error!r}: use fail or skip")
    if exif not in EXIF_MODES:
        raise LayoutError(f"--exif {exif!r}: use one of {', '.join(EXIF_MODES)}")
    fractions = parse_split(split)

    plan = detect_layout(source, fmt=format, images=images_dir, year=year)
    roots = {source if source.is_dir() else source.parent}
    roots.update(f.boundary for f in plan.files)
    check_output(out, sorted(roots), overwrite=overwrite)
    clear_path_caches()
    clean_leftovers(out)

    report = PrepareReport(source=str(source.absolute()), out=str(out), format=plan.format,
                           layout=plan.layout)

    def handle(err: YoloTLError) -> None:
        if on_error == "fail":
            raise err
        report.skip(err)

    if plan.format == "voc":
        records, declared = read_voc_plan(plan, report, handle, progress, exif=exif), None
    else:
        records, declared = read_coco_plan(plan, report, handle, progress, exif=exif)
    records = _restorable(records, report, handle)  # before --verify-images: cv2 reads them once restored
    if verify_images and records:
        records = _verified(records, report, handle, progress)
    if not records:
        raise LayoutError("no usable images found", path=source)

    report.classes = _class_list(records, declared, classes, include_difficult, report)
    class_index = {name: i for i, name in enumerate(report.classes)}
    base = source if source.is_dir() else source.parent
    records.sort(key=lambda r: _relkey(r, base))
    items = _assign_splits(records, base, fractions, seed, resplit, report)
    # items keep the records' _relkey order; a stable sort by split keeps it within each split
    items.sort(key=lambda it: SPLIT_ORDER.index(it[0]))
    names = _output_names(items, report)

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # e.g. a path component is a file, or a read-only place
        in_way = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
        if in_way is not None:
            raise OutputError("a file is in the way of the output folder", path=in_way) from None
        raise OutputError(f"cannot create the output's folder ({err.strerror or err})",
                          path=out.parent) from None
    tmp = partial_dir(out)
    try:
        dirs = {}  # split -> (images dir, labels dir) as strings: one join per file, no Path objects
        for split_name in sorted({s for s, _ in items}):
            (tmp / "images" / split_name).mkdir(parents=True)
            (tmp / "labels" / split_name).mkdir(parents=True)
            dirs[split_name] = (str(tmp / "images" / split_name) + os.sep, str(tmp / "labels" / split_name) + os.sep)
        total = len(items)
        for i, ((split_name, img), name) in enumerate(zip(items, names)):
            lines, labels = _yolo_lines(img, class_index, include_difficult, report)
            image_dir, label_dir = dirs[split_name]
            report.links[place_image(img.image_path, image_dir + name, link,
                                     truncated_jpeg=img.truncated_jpeg)] += 1
            write_text(label_dir + _stem(name) + ".txt", "".join(line + "\n" for line in lines))
            report.add_image(split_name, labels)
            if progress and (i % 256 == 0 or i == total - 1):
                progress("writing", i + 1, total)
        splits_present = [s for s in SPLIT_ORDER if s in report.splits]
        if "val" not in splits_present:
            report.notes.append("too few images for a val split: data.yaml validates on the train images")
        write_text(tmp / "data.yaml", render_data_yaml(out, splits_present, report.classes))
        write_text(tmp / MARKER, report.to_json())
        commit_output(tmp, out)
    except OSError as err:  # disk full, read-only file system, an image that vanished meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(f"writing the output failed ({err.strerror or err})",
                          path=err.filename or out) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("prepared %d images, %d boxes into %s", report.images, report.boxes, out)
    return report
