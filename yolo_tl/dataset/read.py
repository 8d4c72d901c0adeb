"""Read every annotation file of a SourcePlan into ImageAnnotation records (one pass).

Sizes: the annotation's size is checked against the image header (EXIF orientation applied); the
real size wins and a mismatch is recorded. EXIF: a photo whose orientation turns or mirrors it is
trained on as shown (cv2 applies the tag); when its annotation was drawn on the stored pixels (its
size is the stored frame's), the boxes are turned into the shown frame (``--exif``, see
``fit_exif``). Errors go through the caller's policy: raise, or skip and count.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from yolo_tl.dataset.annotations import Box, Boxes, ImageAnnotation
from yolo_tl.dataset.boxes import exif_turn_xyxy
from yolo_tl.dataset.formats.coco import read_coco
from yolo_tl.dataset.formats.safe_paths import find_image
from yolo_tl.dataset.formats.voc import read_voc
from yolo_tl.dataset.images import ImageInfo, read_image_info
from yolo_tl.dataset.report import PrepareReport
from yolo_tl.dataset.sources import AnnotationFile, SourcePlan
from yolo_tl.errors import ImageError, YoloTLError

OnError = Callable[[YoloTLError], None]
Progress = Callable[[str, int, int], None] | None


EXIF_MODES = ("auto", "rotate", "keep")


def fit_exif(boxes: Boxes, info: ImageInfo, annotated: tuple[int, int] | None, mode: str,
             where: str, report: PrepareReport) -> tuple[Boxes, bool]:
    """The boxes in the frame Ultralytics trains on, and whether the annotation's size is unexplained.

    For an image whose EXIF orientation is 2-8, the annotation's size is the evidence of the frame
    it was drawn on. ``auto``: the stored frame -> turn the boxes; the shown frame -> keep them;
    neither, no size, or a frame that looks the same either way (a square image, orientations 2-4)
    -> keep them, counted as "unknown". ``rotate`` always turns, ``keep`` never does.
    """
    shown = (info.width, info.height)
    if not 2 <= info.orientation <= 8:
        return boxes, annotated is not None and annotated != shown
    stored = info.stored_size
    if mode == "keep":
        case = "kept"
    elif mode == "rotate":
        case = "turned"
    elif annotated is None or stored == shown or annotated not in (stored, shown):
        case = "unknown"
    else:
        case = "turned" if annotated == stored else "shown"
    size = f"{annotated[0]}x{annotated[1]}" if annotated else "no size"
    report.exif_case(case, f"{where}: orientation {info.orientation}, annotation {size}, "
                           f"stored {stored[0]}x{stored[1]}, shown {shown[0]}x{shown[1]}")
    unexplained = annotated is not None and annotated not in (stored, shown)
    if case != "turned":
        return boxes, unexplained or (case == "kept" and annotated is not None and annotated != shown)
    o, (w, h) = info.orientation, stored
    return tuple(Box(b.label, *exif_turn_xyxy((b.x1, b.y1, b.x2, b.y2), o, w, h), b.difficult, b.crowd)
                 for b in boxes), unexplained


def _real_size(image: Path, boxes: Boxes, ann_w: int | None, ann_h: int | None, source: Path,
               exif: str, report: PrepareReport) -> tuple[ImageInfo, Boxes]:
    """The image's header size, and the boxes in its shown frame; a size mismatch is recorded."""
    info = read_image_info(image)
    annotated = (ann_w, ann_h) if ann_w is not None and ann_h is not None else None
    if info.orientation == 1:  # the common case: no EXIF turn, nothing to fit
        mismatch = annotated is not None and annotated != (info.width, info.height)
    else:
        where = source.name if source.suffix.lower() == ".xml" else image.name
        boxes, mismatch = fit_exif(boxes, info, annotated, exif, where, report)
    if mismatch:
        report.size_mismatches.append({
            "annotation": str(source), "image": str(image),
            "annotated": [ann_w, ann_h], "actual": [info.width, info.height], "exif_rotated": info.rotated,
        })
    return info, boxes


def _read_voc_file(f: AnnotationFile, split: str | None, exif: str, report: PrepareReport) -> ImageAnnotation:
    rec = read_voc(f.path)
    image = find_image(f.image_dir, rec.filename, f.path.stem, source=f.path, field="filename",
                       boundary=f.boundary)
    if image is None:
        raise ImageError(f"image {rec.filename or f.path.stem + '.*'!r} not found in {f.image_dir}",
                         path=f.path, field="filename")
    info, boxes = _real_size(image, rec.boxes, rec.width, rec.height, f.path, exif, report)
    return ImageAnnotation(image, boxes, info.width, info.height, split, f.path, info.truncated_jpeg)


def read_voc_plan(plan: SourcePlan, report: PrepareReport, on_error: OnError,
                  progress: Progress = None, *, exif: str = "auto") -> list[ImageAnnotation]:
    out: list[ImageAnnotation] = []
    total = len(plan.files)
    for i, f in enumerate(plan.files):
        split = None
        if plan.splits is not None:
            split = plan.splits.get(str(f.path))
            if split is None:
                report.drop_image("not_in_any_split", f.path.name)
                continue
        try:
            out.append(_read_voc_file(f, split, exif, report))
        except YoloTLError as err:
            on_error(err)
        if progress and (i % 256 == 0 or i == total - 1):
            progress("reading", i + 1, total)
    return out


def read_coco_plan(plan: SourcePlan, report: PrepareReport, on_error: OnError,
                   progress: Progress = None, *, exif: str = "auto") -> tuple[list[ImageAnnotation], list[str]]:
    """Images of every COCO file, and the class names ordered by category id across files."""
    out: list[ImageAnnotation] = []
    first_id: dict[str, tuple] = {}
    roots: dict[str, list[Path]] = {}
    for f in plan.files:
        try:
            data = read_coco(f.path, on_error=on_error)
        except YoloTLError as err:
            on_error(err)
            continue
        if data.dropped_root_category:  # one note per category, not one per split's file
            roots.setdefault(data.dropped_root_category, []).append(f.path)
        for cid, name in data.categories.items():
            key = (0, cid) if isinstance(cid, int) else (1, str(cid))
            if name not in first_id or key < first_id[name]:
                first_id[name] = key
        total = len(data.images)
        for i, img in enumerate(data.images):
            try:
                image = None
                for folder in [f.image_dir, *f.fallback_dirs]:
                    image = find_image(folder, img.file_name, Path(img.file_name).stem, source=f.path,
                                       field=f"images[id={img.id}].file_name", boundary=f.boundary)
                    if image is not None:
                        break
                if image is None:
                    raise ImageError(f"image {img.file_name!r} not found in {f.image_dir}",
                                     path=f.path, field=f"images[id={img.id}].file_name")
                info, boxes = _real_size(image, img.boxes, img.width, img.height, f.path, exif, report)
                out.append(ImageAnnotation(image, boxes, info.width, info.height, f.split,
                                           f.path, info.truncated_jpeg))
            except YoloTLError as err:
                on_error(err)
            if progress and (i % 256 == 0 or i == total - 1):
                progress("reading", i + 1, total)
    for category, files in roots.items():
        where = files[0].name if len(files) == 1 else \
            f"{len(files)} files: " + ", ".join(f"{p.parent.name}/{p.name}" for p in files)
        report.notes.append(f"dropped Roboflow root category {category!r} ({where})")
    names = sorted(first_id, key=lambda n: (first_id[n], n))
    return out, names
