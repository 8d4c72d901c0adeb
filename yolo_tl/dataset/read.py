"""Read every annotation file of a SourcePlan into ImageAnnotation records (one pass).

Sizes: the annotation's size is checked against the image header (EXIF orientation applied); the
real size wins and a mismatch is recorded. Errors go through the caller's policy: raise, or skip
and count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from yolo_tl.dataset.annotations import ImageAnnotation
from yolo_tl.errors import ImageError, YoloTLError
from yolo_tl.dataset.formats.coco import read_coco
from yolo_tl.dataset.formats.safe_paths import find_image
from yolo_tl.dataset.formats.voc import read_voc
from yolo_tl.dataset.images import ImageInfo, read_image_info
from yolo_tl.dataset.sources import AnnotationFile, SourcePlan
from yolo_tl.dataset.report import PrepareReport

OnError = Callable[[YoloTLError], None]
Progress = Optional[Callable[[str, int, int], None]]


def _real_size(image: Path, ann_w: Optional[int], ann_h: Optional[int], source: Path,
               report: PrepareReport) -> ImageInfo:
    info = read_image_info(image)
    width, height, rotated = info.width, info.height, info.rotated
    if ann_w is not None and ann_h is not None and (ann_w, ann_h) != (width, height):
        report.size_mismatches.append({
            "annotation": str(source), "image": str(image),
            "annotated": [ann_w, ann_h], "actual": [width, height], "exif_rotated": rotated,
        })
    return info


def _read_voc_file(f: AnnotationFile, split: Optional[str], report: PrepareReport) -> ImageAnnotation:
    rec = read_voc(f.path)
    image = find_image(f.image_dir, rec.filename, f.path.stem, source=f.path, field="filename",
                       boundary=f.boundary)
    if image is None:
        raise ImageError(f"image {rec.filename or f.path.stem + '.*'!r} not found in {f.image_dir}",
                         path=f.path, field="filename")
    info = _real_size(image, rec.width, rec.height, f.path, report)
    return ImageAnnotation(image, rec.boxes, info.width, info.height, split, f.path, info.truncated_jpeg)


def read_voc_plan(plan: SourcePlan, report: PrepareReport, on_error: OnError,
                  progress: Progress = None) -> List[ImageAnnotation]:
    out: List[ImageAnnotation] = []
    total = len(plan.files)
    for i, f in enumerate(plan.files):
        split = None
        if plan.splits is not None:
            split = plan.splits.get(f.path.stem)
            if split is None:
                report.drop_image("not_in_any_split", f.path.name)
                continue
        try:
            out.append(_read_voc_file(f, split, report))
        except YoloTLError as err:
            on_error(err)
        if progress and (i % 256 == 0 or i == total - 1):
            progress("reading", i + 1, total)
    return out


def read_coco_plan(plan: SourcePlan, report: PrepareReport, on_error: OnError,
                   progress: Progress = None) -> Tuple[List[ImageAnnotation], List[str]]:
    """Images of every COCO file, and the class names ordered by category id across files."""
    out: List[ImageAnnotation] = []
    first_id: Dict[str, Tuple] = {}
    for f in plan.files:
        try:
            data = read_coco(f.path, on_error=on_error)
        except YoloTLError as err:
            on_error(err)
            continue
        if data.dropped_root_category:
            note = f"{f.path.name}: dropped Roboflow root category {data.dropped_root_category!r}"
            report.notes.append(note)
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
                info = _real_size(image, img.width, img.height, f.path, report)
                out.append(ImageAnnotation(image, img.boxes, info.width, info.height, f.split,
                                           f.path, info.truncated_jpeg))
            except YoloTLError as err:
                on_error(err)
            if progress and (i % 256 == 0 or i == total - 1):
                progress("reading", i + 1, total)
    names = sorted(first_id, key=lambda n: (first_id[n], n))
    return out, names
