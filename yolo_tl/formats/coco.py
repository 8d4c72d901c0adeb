"""COCO JSON: a pure parser (dict -> CocoData) and a thin file reader.

COCO ``category_id`` is never a class index: it is 1-based, may have gaps, and Roboflow exports add
an id-0 "root" category named after the supercategory of all the others. We map ids to names here;
prepare maps names to 0..N-1. ``bbox`` is ``[x, y, w, h]`` from the top-left (boxes.coco_to_xyxy).
Polygons (``segmentation``) are ignored: the bbox is used.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

from yolo_tl.annotations import Box
from yolo_tl.boxes import coco_to_xyxy
from yolo_tl.errors import AnnotationError, YoloTLError

OnError = Callable[[YoloTLError], None]


def _raise(err: YoloTLError) -> None:
    raise err


@dataclass
class CocoImage:
    id: Any
    file_name: str
    width: Optional[int]
    height: Optional[int]
    boxes: List[Box] = field(default_factory=list)


@dataclass
class CocoData:
    categories: Dict[Any, str]  # id -> name, after dropping a Roboflow root category
    images: List[CocoImage]
    dropped_root_category: Optional[str] = None


class _Ann(NamedTuple):
    """An annotation as read: what prepare uses of it, nothing else (segmentation, area, ids)."""

    image_id: Any
    category_id: Any
    bbox: Any
    iscrowd: Any


def _compact(obj: dict) -> Any:
    """json object hook: turn each annotation into an _Ann as soon as it is parsed.

    COCO files of 50k images hold ~300k annotation dicts with polygons; keeping them all as dicts
    costs 5-7x the file size in memory. Anything that is not clearly an annotation stays a dict,
    and parse_coco validates both forms the same way.
    """
    if "bbox" in obj and "image_id" in obj and "category_id" in obj:
        return _Ann(obj["image_id"], obj["category_id"], obj["bbox"], obj.get("iscrowd", 0))
    return obj


def _is_id(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _num(value: Any, *, source: Path, field_name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AnnotationError(f"not a number: {value!r}", path=source, field=field_name)
    try:
        number = float(value)  # a JSON integer of 400 digits overflows here
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        digits = len(str(value))
        shown = value if isinstance(value, float) else f"{str(value)[:12]}... ({digits} digits)"
        raise AnnotationError(f"not a finite number: {shown}", path=source, field=field_name)
    return number


def _opt_size(value: Any, *, source: Path, field_name: str) -> Optional[int]:
    if value is None:
        return None
    size = _num(value, source=source, field_name=field_name)
    if size < 0:
        raise AnnotationError(f"invalid image size {value!r}", path=source, field=field_name)
    return int(round(size)) or None


def _root_category(cats: List[Tuple[Any, str, Optional[str]]], used: set) -> Optional[Any]:
    """Roboflow's id-0 category: named after every other category's supercategory, and unused."""
    zero = [c for c in cats if c[0] == 0]
    others = [c for c in cats if c[0] != 0]
    if len(zero) != 1 or not others or 0 in used:
        return None
    name = zero[0][1]
    if all(c[2] == name for c in others):
        return 0
    return None


def parse_coco(doc: Any, *, source: Path, on_error: OnError = _raise, consume: bool = False) -> CocoData:
    """Parse a loaded COCO document. Structural problems raise; per-item ones go to ``on_error``.

    ``consume`` empties ``doc["annotations"]`` while reading it (read_coco owns its document).
    """
    if not isinstance(doc, dict):
        raise AnnotationError("top level is not a JSON object", path=source)
    for key in ("images", "categories"):
        if not isinstance(doc.get(key), list):
            raise AnnotationError(f"missing or invalid '{key}' list", path=source, field=key)
    anns = doc.get("annotations", [])
    if not isinstance(anns, list):
        raise AnnotationError("'annotations' is not a list", path=source, field="annotations")

    cats: List[Tuple[Any, str, Optional[str]]] = []
    for i, cat in enumerate(doc["categories"]):
        where = f"categories[{i}]"
        if not isinstance(cat, dict) or not _is_id(cat.get("id")) or not isinstance(cat.get("name"), str):
            raise AnnotationError("category needs an 'id' and a string 'name'", path=source, field=where)
        if any(c[0] == cat["id"] for c in cats):
            raise AnnotationError(f"duplicate category id {cat['id']!r}", path=source, field=where)
        cats.append((cat["id"], cat["name"].strip(), cat.get("supercategory")))

    images: Dict[Any, CocoImage] = {}
    names_seen: Dict[str, Any] = {}
    for i, img in enumerate(doc["images"]):
        where = f"images[{i}]"
        try:
            if not isinstance(img, dict) or not _is_id(img.get("id")):
                raise AnnotationError("image has no 'id'", path=source, field=where)
            if not isinstance(img.get("file_name"), str) or not img["file_name"].strip():
                raise AnnotationError("image has no 'file_name'", path=source, field=f"{where}.file_name")
            if img["id"] in images:
                raise AnnotationError(f"duplicate image id {img['id']!r}", path=source, field=where)
            fname = img["file_name"].strip()
            if fname in names_seen:
                raise AnnotationError(f"file_name {fname!r} listed twice (ids {names_seen[fname]!r} "
                                      f"and {img['id']!r})", path=source, field=where)
            width = _opt_size(img.get("width"), source=source, field_name=f"{where}.width")
            height = _opt_size(img.get("height"), source=source, field_name=f"{where}.height")
        except YoloTLError as err:
            on_error(err)
            continue
        names_seen[fname] = img["id"]
        images[img["id"]] = CocoImage(img["id"], fname, width, height)

    cat_names = {c[0]: c[1] for c in cats}
    used: set = set()
    for i, ann in enumerate(anns):
        if consume:
            anns[i] = None  # free each annotation once read: peak memory stays near the file size
        try:
            if isinstance(ann, _Ann):
                image_id, category_id, bbox, iscrowd = ann
            elif isinstance(ann, dict):
                for key in ("image_id", "category_id", "bbox"):
                    if key not in ann:
                        raise AnnotationError(f"missing '{key}'", path=source, field=f"annotations[{i}].{key}")
                image_id, category_id, bbox = ann["image_id"], ann["category_id"], ann["bbox"]
                iscrowd = ann.get("iscrowd", 0)
            else:
                raise AnnotationError("annotation is not an object", path=source, field=f"annotations[{i}]")
            if not _is_id(image_id) or image_id not in images:
                raise AnnotationError(f"unknown image_id {image_id!r}", path=source,
                                      field=f"annotations[{i}].image_id")
            if not _is_id(category_id) or category_id not in cat_names:
                raise AnnotationError(f"unknown category_id {category_id!r}", path=source,
                                      field=f"annotations[{i}].category_id")
            if not isinstance(bbox, list) or len(bbox) != 4:
                raise AnnotationError(f"bbox must be [x, y, w, h], got {bbox!r}", path=source,
                                      field=f"annotations[{i}].bbox")
            x, y, w, h = (_num(v, source=source, field_name=f"annotations[{i}].bbox") for v in bbox)
        except YoloTLError as err:
            on_error(err)
            continue
        used.add(category_id)
        x1, y1, x2, y2 = coco_to_xyxy(x, y, w, h)
        images[image_id].boxes.append(Box(cat_names[category_id], x1, y1, x2, y2, crowd=bool(iscrowd)))

    root = _root_category(cats, used)
    categories = {cid: name for cid, name, _ in cats if cid != root}
    return CocoData(categories=categories, images=list(images.values()),
                    dropped_root_category=cat_names[root] if root is not None else None)


def read_coco(json_path: Path, *, on_error: OnError = _raise) -> CocoData:
    """Read and parse one COCO JSON file."""
    try:
        with open(json_path, "rb") as fh:
            raw = fh.read()
        # decode, then drop the bytes before parsing: only one copy of the text is alive
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
        del raw
        doc = json.loads(text, object_hook=_compact)
        del text
    except OSError as err:
        raise AnnotationError(f"cannot read file ({err.strerror})", path=json_path) from None
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError, integers over 4300 digits
        raise AnnotationError(f"malformed JSON ({err})", path=json_path) from None
    except RecursionError:
        raise AnnotationError("malformed JSON (nested too deeply)", path=json_path) from None
    return parse_coco(doc, source=json_path, on_error=on_error, consume=True)
