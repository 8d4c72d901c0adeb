"""COCO JSON: a pure parser (dict -> CocoData) and a thin file reader.

COCO ``category_id`` is never a class index: it is 1-based, may have gaps, and Roboflow exports add
an id-0 "root" category named after the supercategory of all the others. We map ids to names here;
prepare maps names to 0..N-1. ``bbox`` is ``[x, y, w, h]`` from the top-left (boxes.coco_to_xyxy).
Polygons (``segmentation``) are ignored: the bbox is used.
"""

from __future__ import annotations

import json
import math
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from yolo_tl.dataset.annotations import Box, BoxPacker, PackedBoxes
from yolo_tl.dataset.boxes import coco_to_xyxy
from yolo_tl.errors import AnnotationError, YoloTLError

OnError = Callable[[YoloTLError], None]


def _raise(err: YoloTLError) -> None:
    raise err


@dataclass
class CocoImage:
    id: Any
    file_name: str
    width: int | None
    height: int | None
    boxes: Sequence[Box] = ()  # PackedBoxes once parsed


@dataclass
class CocoData:
    categories: dict[Any, str]  # id -> name, after dropping a Roboflow root category
    images: list[CocoImage]
    dropped_root_category: str | None = None


class _Img(NamedTuple):
    """An image record as read: the four fields prepare uses (not coco_url, license, dates...)."""

    id: Any
    file_name: Any
    width: Any
    height: Any


_STORED = object()  # stands in the annotations list for an annotation kept in an _AnnStore
_NUMBER = (int, float)


class _AnnStore:
    """json object hook that packs each well-formed annotation as soon as it is parsed.

    A COCO file of 50k images holds ~325k annotation dicts, often with polygons; as dicts they
    cost 5-7x the file size in memory, as NamedTuples of lists of floats still ~2x. Here a
    well-formed annotation costs ~50 bytes: its four numbers go into one float array, its ids
    into lists of shared id objects, and the annotations list holds one shared marker per
    annotation (k-th marker = k-th stored annotation). Anything unusual (a bbox that is not four
    finite numbers, an object that is not an annotation) stays a dict for parse_coco to check and
    report exactly as it would without the hook. Image records become ``_Img`` tuples.
    """

    def __init__(self) -> None:
        self.image_ids: list[Any] = []
        self.category_ids: list[Any] = []
        self.bbox = array("d")
        self.crowd = bytearray()
        self._ids: dict[Any, Any] = {}  # one object per distinct id value

    def __len__(self) -> int:
        return len(self.crowd)

    def __call__(self, obj: dict) -> Any:
        if "bbox" in obj and "image_id" in obj and "category_id" in obj:
            bbox = obj["bbox"]
            if type(bbox) is not list or len(bbox) != 4 or not all(type(v) in _NUMBER for v in bbox):
                return obj
            try:
                values = [float(v) for v in bbox]  # a JSON integer of 400 digits overflows here
            except OverflowError:
                return obj
            if not all(map(math.isfinite, values)):
                return obj
            crowd = obj.get("iscrowd", 0)
            ids = self._ids
            image_id, category_id = obj["image_id"], obj["category_id"]
            self.image_ids.append(ids.setdefault((type(image_id), image_id), image_id))
            self.category_ids.append(ids.setdefault((type(category_id), category_id), category_id))
            self.bbox.extend(values)
            self.crowd.append(1 if crowd else 0)
            return _STORED
        if "file_name" in obj and "id" in obj and "image_id" not in obj:
            return _Img(obj["id"], obj["file_name"], obj.get("width"), obj.get("height"))
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


def _opt_size(value: Any, *, source: Path, field_name: str) -> int | None:
    if value is None:
        return None
    size = _num(value, source=source, field_name=field_name)
    if size < 0:
        raise AnnotationError(f"invalid image size {value!r}", path=source, field=field_name)
    return int(round(size)) or None


def _root_category(cats: list[tuple[Any, str, str | None]], used: set) -> Any | None:
    """Roboflow's id-0 category: named after every other category's supercategory, and unused."""
    zero = [c for c in cats if c[0] == 0]
    others = [c for c in cats if c[0] != 0]
    if len(zero) != 1 or not others or 0 in used:
        return None
    name = zero[0][1]
    if all(c[2] == name for c in others):
        return 0
    return None


def parse_coco(doc: Any, *, source: Path, on_error: OnError = _raise, consume: bool = False,
               store: _AnnStore | None = None) -> CocoData:
    """Parse a loaded COCO document. Structural problems raise; per-item ones go to ``on_error``.

    ``consume`` empties ``doc["annotations"]`` while reading it (read_coco owns its document);
    ``store`` holds the annotations read_coco's object hook packed (see _AnnStore).
    """
    if not isinstance(doc, dict):
        raise AnnotationError("top level is not a JSON object", path=source)
    for key in ("images", "categories"):
        if not isinstance(doc.get(key), list):
            raise AnnotationError(f"missing or invalid '{key}' list", path=source, field=key)
    anns = doc.get("annotations", [])
    if not isinstance(anns, list):
        raise AnnotationError("'annotations' is not a list", path=source, field="annotations")

    cats: list[tuple[Any, str, str | None]] = []
    for i, cat in enumerate(doc["categories"]):
        where = f"categories[{i}]"
        if not isinstance(cat, dict) or not _is_id(cat.get("id")) or not isinstance(cat.get("name"), str):
            raise AnnotationError("category needs an 'id' and a string 'name'", path=source, field=where)
        if any(c[0] == cat["id"] for c in cats):
            raise AnnotationError(f"duplicate category id {cat['id']!r}", path=source, field=where)
        cats.append((cat["id"], cat["name"].strip(), cat.get("supercategory")))

    images: dict[Any, CocoImage] = {}
    names_seen: dict[str, Any] = {}
    for i, img in enumerate(doc["images"]):
        where = f"images[{i}]"
        if isinstance(img, _Img):
            img = {k: v for k, v in img._asdict().items() if v is not None or k in ("id", "file_name")}
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
    box_lists: dict[Any, BoxPacker] = {}

    cat_names = {c[0]: c[1] for c in cats}
    used: set = set()
    stored = 0
    for i, ann in enumerate(anns):
        if consume:
            anns[i] = None  # free each annotation once read
        try:
            if ann is _STORED:  # well-formed numbers, packed by the object hook
                if store is None or stored >= len(store):
                    raise AnnotationError("annotation is not an object", path=source, field=f"annotations[{i}]")
                image_id, category_id = store.image_ids[stored], store.category_ids[stored]
                x, y, w, h = store.bbox[4 * stored:4 * stored + 4]
                iscrowd = store.crowd[stored]
                stored += 1
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
            if ann is not _STORED:
                if not isinstance(bbox, list) or len(bbox) != 4:
                    raise AnnotationError(f"bbox must be [x, y, w, h], got {bbox!r}", path=source,
                                          field=f"annotations[{i}].bbox")
                x, y, w, h = (_num(v, source=source, field_name=f"annotations[{i}].bbox") for v in bbox)
        except YoloTLError as err:
            on_error(err)
            continue
        used.add(category_id)
        x1, y1, x2, y2 = coco_to_xyxy(x, y, w, h)
        boxes = box_lists.get(image_id)
        if boxes is None:
            boxes = box_lists[image_id] = BoxPacker()
        boxes.add(cat_names[category_id], x1, y1, x2, y2, crowd=bool(iscrowd))
    if store is not None and stored != len(store):
        raise AnnotationError("an object with 'bbox', 'image_id' and 'category_id' lies outside the "
                              "'annotations' list", path=source)
    for image_id, image in images.items():
        image.boxes = box_lists.pop(image_id).packed() if image_id in box_lists else PackedBoxes.pack(())

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
        store = _AnnStore()
        doc = json.loads(text, object_hook=store)
        del text
    except OSError as err:
        raise AnnotationError(f"cannot read file ({err.strerror})", path=json_path) from None
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError, integers over 4300 digits
        raise AnnotationError(f"malformed JSON ({err})", path=json_path) from None
    except RecursionError:
        raise AnnotationError("malformed JSON (nested too deeply)", path=json_path) from None
    return parse_coco(doc, source=json_path, on_error=on_error, consume=True, store=store)
