"""Ultralytics YOLO detection datasets: write labels and data.yaml, and read them back.

Layout: ``images/<split>/x.jpg`` with ``labels/<split>/x.txt`` beside (Ultralytics swaps the last
``/images/`` for ``/labels/``), one line ``cls cx cy w h`` per box, normalised to [0, 1], an empty file
for an image without boxes. ``data.yaml`` has an absolute ``path:``, splits relative to it and
``names`` as a dict.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Mapping, Sequence, Tuple

import yaml

from yolo_tl.errors import AnnotationError

SPLITS = ("train", "val", "test")
YoloBox = Tuple[int, float, float, float, float]


def render_data_yaml(dataset_root: Path, splits: Sequence[str], names: Sequence[str]) -> str:
    doc = {"path": str(dataset_root)}
    for split in SPLITS:
        if split in splits:
            doc[split] = f"images/{split}"
    if "val" not in doc and "train" in doc:
        doc["val"] = doc["train"]  # Ultralytics needs a val split; prepare notes this in its report
    doc["nc"] = len(names)
    doc["names"] = {i: name for i, name in enumerate(names)}
    header = "# Ultralytics YOLO detection dataset written by yolo-tl prepare\n"
    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=False)


def write_text(path: Path, text: str) -> None:
    """Write a whole file (mode 'w', never append: a re-run must not duplicate lines)."""
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


def read_data_yaml(path: Path) -> Dict:
    """Load data.yaml and resolve it: returns {'root', 'names' (list), 'splits': {split: images dir}}."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError("data.yaml not found", path=path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise AnnotationError(f"malformed YAML ({' '.join(str(err).split())})", path=path) from None
    if not isinstance(doc, dict) or "names" not in doc:
        raise AnnotationError("missing 'names'", path=path, field="names")
    raw = doc["names"]
    if isinstance(raw, dict):
        try:
            keys = sorted(int(k) for k in raw)
        except (TypeError, ValueError):
            raise AnnotationError("'names' keys must be integers", path=path, field="names") from None
        if keys != list(range(len(keys))):
            raise AnnotationError("'names' keys must be 0..N-1", path=path, field="names")
        names = [str(raw[k] if k in raw else raw[str(k)]) for k in keys]
    elif isinstance(raw, list):
        names = [str(n) for n in raw]
    else:
        raise AnnotationError("'names' must be a dict or a list", path=path, field="names")
    root = Path(doc.get("path") or path.parent)
    if not root.is_absolute():
        root = (path.parent / root).resolve()
    splits = {}
    for split in SPLITS:
        if doc.get(split):
            sub = Path(str(doc[split]))
            splits[split] = sub if sub.is_absolute() else root / sub
    return {"root": root, "names": names, "splits": splits, "yaml": path}


def label_path_for(image_path: Path) -> Path:
    """Ultralytics' rule: the last ``/images/`` in the path becomes ``/labels/``, suffix ``.txt``."""
    parts = list(image_path.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def parse_yolo_labels(text: str, *, source: Path, nc: int) -> List[YoloBox]:
    """Parse one label file; refuses what Ultralytics would silently drop (coords > 1, cls >= nc)."""
    boxes: List[YoloBox] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 5:
            raise AnnotationError(f"expected 5 values, got {len(parts)}", path=source,
                                  field=f"line {lineno}")
        try:
            cls = int(parts[0])
            cx, cy, w, h = (float(p) for p in parts[1:])
        except ValueError:
            raise AnnotationError(f"not numeric: {line.strip()!r}", path=source,
                                  field=f"line {lineno}") from None
        if not 0 <= cls < nc:
            raise AnnotationError(f"class {cls} outside 0..{nc - 1}", path=source, field=f"line {lineno}")
        if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in (cx, cy, w, h)):
            raise AnnotationError("coordinates outside [0, 1]", path=source, field=f"line {lineno}")
        boxes.append((cls, cx, cy, w, h))
    return boxes


def read_yolo_labels(label_path: Path, *, nc: int) -> List[YoloBox]:
    """Boxes of one label file; a missing file means no boxes (as in Ultralytics)."""
    try:
        text = Path(label_path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return parse_yolo_labels(text, source=Path(label_path), nc=nc)


def list_split_images(images_dir: Path) -> List[Path]:
    """Image files of one split folder, sorted."""
    from yolo_tl.formats.safe_paths import IMAGE_SUFFIXES

    return sorted(p for p in Path(images_dir).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def read_yolo_split(data: Mapping, split: str) -> List[Tuple[Path, List[YoloBox]]]:
    """(image path, boxes) for every image of a split of a data.yaml loaded by read_data_yaml."""
    if split not in data["splits"]:
        raise AnnotationError(f"no '{split}' split", path=data["yaml"], field=split)
    images_dir = data["splits"][split]
    if not Path(images_dir).is_dir():
        raise AnnotationError(f"images folder of split '{split}' not found: {images_dir}",
                              path=data["yaml"], field=split)
    nc = len(data["names"])
    return [(img, read_yolo_labels(label_path_for(img), nc=nc)) for img in list_split_images(images_dir)]
