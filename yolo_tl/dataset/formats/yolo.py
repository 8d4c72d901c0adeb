"""Ultralytics YOLO detection datasets: write labels and data.yaml, and read them back.

Layout: ``images/<split>/x.jpg`` with ``labels/<split>/x.txt`` beside (Ultralytics swaps the last
``/images/`` for ``/labels/``), one line ``cls cx cy w h`` per box, normalised to [0, 1], an empty file
for an image without boxes. ``data.yaml`` has an absolute ``path:``, splits relative to it and
``names`` as a dict.
"""

from __future__ import annotations

import glob
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from yolo_tl.dataset.formats.safe_paths import IMAGE_SUFFIXES
from yolo_tl.errors import AnnotationError, LayoutError, YoloTLError

SPLITS = ("train", "val", "test")
PREPARE_MARKER = "prepare_report.json"  # output.MARKER: the file every folder written by prepare holds
YoloBox = tuple[int, float, float, float, float]


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


def write_text(path: str | Path, text: str) -> None:
    """Write a whole file as UTF-8 with '\n' line ends (truncate, never append: a re-run must not
    duplicate lines). Plain os calls: prepare writes one per image, and open()'s text layers cost
    more than the write itself."""
    data = memoryview(text.encode("utf-8"))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)


@dataclass
class DataYaml:
    """A data.yaml, parsed: the one model that prepare's checks, training and analysis share.

    ``names`` is always a list (data.yaml may hold a list or a dict); ``names_dict`` is the
    ``{id: name}`` form Ultralytics and run.json use. Relative split entries are resolved against
    ``root``; ``root_from`` says in words how the root was chosen, for messages and logs.
    """

    path: Path  # the file itself, absolute
    root: Path  # the dataset root its split entries are relative to
    names: list[str]
    entries: dict[str, list[Path]]  # split -> absolute dirs / .txt lists / image files, unchecked
    root_from: str = "the data.yaml's folder"
    raw: dict[str, object] = field(default_factory=dict, repr=False)  # the parsed document

    @property
    def nc(self) -> int:
        return len(self.names)

    @property
    def names_dict(self) -> dict[int, str]:
        return dict(enumerate(self.names))

    def images(self, split: str, *, error: type[YoloTLError] = LayoutError) -> list[Path]:
        """The images of ``split`` (see ``split_images``)."""
        return split_images(self, split, error=error)


def _names(raw, nc, path: Path, error: type[YoloTLError]) -> list[str]:
    if isinstance(raw, dict) and raw:
        try:
            keys = sorted(int(k) for k in raw)
        except (TypeError, ValueError):
            raise error("class ids must be integers", path=path, field="names") from None
        if keys != list(range(len(keys))):
            raise error("class ids must be 0..N-1 without gaps", path=path, field="names")
        return [str(raw[k] if k in raw else raw[str(k)]) for k in keys]
    if isinstance(raw, list) and raw:
        return [str(n) for n in raw]
    if raw is None and isinstance(nc, int) and not isinstance(nc, bool) and nc > 0:
        return [f"class_{i}" for i in range(nc)]  # Ultralytics' own default when only nc is given
    raise error("missing or empty class list (give names: as a list or as {id: name})", path=path,
                field="names")


def _root(path: Path, value, error: type[YoloTLError]) -> tuple[Path, str]:
    """The dataset root and how it was chosen. A relative ``path:`` is read against the data.yaml's
    own folder (what users expect), then the current folder; never Ultralytics' ``datasets_dir``."""
    here = path.parent.resolve()
    if value in (None, ""):
        return here, "the data.yaml's folder (it has no path:)"
    root = Path(str(value)).expanduser()
    if root.is_absolute():
        if root.is_dir():
            return root, "path: in the data.yaml"
        if (here / PREPARE_MARKER).is_file():  # prepare's output, moved or copied since (to a GPU server, say)
            return here, f"the data.yaml's folder: path: {root} is gone, and yolo-tl prepare wrote this folder"
        raise error(f"dataset root {root} does not exist", path=path, field="path")
    if (here / root).is_dir():
        return (here / root).resolve(), f"path: {value} read against the data.yaml's folder"
    if (Path.cwd() / root).is_dir():
        return (Path.cwd() / root).resolve(), f"path: {value} read against the current folder"
    raise error(f"dataset root '{value}' not found: neither {here / root} (beside the data.yaml) nor "
                f"{Path.cwd() / root} (the current folder) is a folder", path=path, field="path")


def load_data_yaml(path, *, error: type[YoloTLError] = AnnotationError) -> DataYaml:
    """Parse data.yaml: names (dict or list), ``nc`` if given, the root, the split entries.

    ``error`` is the exception class to raise, so each caller reports in its own terms.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise error("data.yaml not found", path=path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise error(f"not valid YAML ({' '.join(str(err).split())})", path=path) from None
    except OSError as err:
        raise error(f"cannot read ({err.strerror})", path=path) from None
    if not isinstance(doc, dict):
        raise error("expected a mapping with path, train, val and names", path=path)
    names = _names(doc.get("names"), doc.get("nc"), path, error)
    if doc.get("nc") is not None:
        try:
            nc_ok = float(doc["nc"]) == len(names)
        except (TypeError, ValueError):
            nc_ok = False
        if not nc_ok:
            raise error(f"nc is {doc['nc']} but names lists {len(names)} classes", path=path, field="nc")
    root, root_from = _root(path, doc.get("path"), error)
    entries: dict[str, list[Path]] = {}
    for split in SPLITS:
        value = doc.get(split)
        if value in (None, "", []):
            continue
        items = value if isinstance(value, list) else [value]
        resolved = []
        for item in items:
            p = Path(str(item)).expanduser()
            if not p.is_absolute():
                p = root / p
                if not p.exists() and str(item).startswith("../"):  # Ultralytics' own fallback
                    p = root / str(item)[3:]
            resolved.append(p)
        entries[split] = resolved
    return DataYaml(path.resolve(), root, names, entries, root_from, doc)


def _list_file_images(entry: Path) -> list[Path]:
    """Image paths of a .txt split list; relative lines are read against the list's own folder."""
    images = []
    for line in entry.read_text(encoding="utf-8-sig").splitlines():
        line = line.strip()
        if line:
            p = Path(line[2:] if line.startswith("./") else line)
            images.append(p if p.is_absolute() else entry.parent / p)
    return images


def split_images(data: DataYaml, split: str, *, error: type[YoloTLError] = LayoutError) -> list[Path]:
    """The images of one split, listed as Ultralytics lists them (``BaseDataset.get_img_files``).

    A split entry (folder, .txt list or image) is resolved, as ``check_det_dataset`` does; the image
    files found in it are kept as found, never resolved: an image that is a symlink keeps its own
    path, and its label is looked up beside that path (``label_path_for``), not beside its target.
    """
    if split not in data.entries:
        have = ", ".join(data.entries) or "none"
        raise error(f"no split '{split}' (this file has: {have})", path=data.path, field=split)
    images: list[str] = []
    for raw_entry in data.entries[split]:
        entry = raw_entry.resolve()
        if entry.is_dir():
            pattern = os.path.join(glob.escape(str(entry)), "**", "*.*")  # hidden files are skipped, as there
            images += [p for p in glob.glob(pattern, recursive=True)
                       if p[p.rfind("."):].lower() in IMAGE_SUFFIXES and os.path.isfile(p)]
        elif entry.is_file() and entry.suffix == ".txt":
            images += [str(p) for p in _list_file_images(entry)]
        elif entry.is_file() and entry.suffix.lower() in IMAGE_SUFFIXES:
            images.append(str(entry))
        else:
            raise error(f"images not found at {raw_entry} (dataset root {data.root}: {data.root_from})",
                        path=data.path, field=split)
    if not images:
        raise error(f"split '{split}' has no images", path=data.path, field=split)
    return [Path(p) for p in sorted(set(images))]


def _images_to_labels(text: str) -> str:
    """The last ``/images/`` of a path string becomes ``/labels/`` (``img2label_paths``' swap)."""
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return sb.join(text.rsplit(sa, 1))


def label_path_for(image_path: str | Path) -> Path:
    """The label file of an image, by Ultralytics' own rule (``ultralytics.data.utils.img2label_paths``).

    The one place yolo-tl maps an image to its label: the path as given (a symlink is not followed),
    the last ``/images/`` becomes ``/labels/`` and everything after the last dot becomes ``txt``.
    """
    return Path(_images_to_labels(os.fspath(image_path)).rsplit(".", 1)[0] + ".txt")


def label_dir_for(images_dir: str | Path) -> Path:
    """The labels folder Ultralytics reads for the images below ``images_dir`` (same rule)."""
    return Path(_images_to_labels(os.fspath(images_dir).rstrip(os.sep) + os.sep).rstrip(os.sep))


def parse_yolo_labels(text: str, *, source: Path, nc: int) -> list[YoloBox]:
    """Parse one label file; refuses what Ultralytics would silently drop (coords > 1, cls >= nc)."""
    boxes: list[YoloBox] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            cls = int(float(parts[0]))
            vals = [float(p) for p in parts[1:]]
        except ValueError:
            raise AnnotationError(f"not numeric: {line.strip()!r}", path=source,
                                  field=f"line {lineno}") from None
        if len(vals) == 4:
            cx, cy, w, h = vals
        elif len(vals) >= 6 and len(vals) % 2 == 0:  # a polygon: its bounding box, as Ultralytics does
            xs, ys = vals[0::2], vals[1::2]
            w, h = max(xs) - min(xs), max(ys) - min(ys)
            cx, cy = min(xs) + w / 2, min(ys) + h / 2
        else:
            raise AnnotationError(f"expected 'cls cx cy w h', got {len(parts)} values", path=source,
                                  field=f"line {lineno}")
        if not 0 <= cls < nc:
            raise AnnotationError(f"class id {cls} is not in data.yaml names (0..{nc - 1})", path=source,
                                  field=f"line {lineno}")
        if not all(math.isfinite(v) and -0.01 <= v <= 1.01 for v in (cx, cy, w, h)):
            raise AnnotationError("coordinates outside [0, 1]", path=source, field=f"line {lineno}")
        # Ultralytics accepts 1% past the edge (yolo_check.py); such a box is clipped to the image
        cx, cy, w, h = (min(max(v, 0.0), 1.0) for v in (cx, cy, w, h))
        boxes.append((cls, cx, cy, w, h))
    return boxes


def read_yolo_labels(label_path: Path, *, nc: int) -> list[YoloBox]:
    """Boxes of one label file; a missing file means no boxes (as in Ultralytics)."""
    try:
        text = Path(label_path).read_text(encoding="utf-8-sig")  # a BOM, as Ultralytics reads it
    except FileNotFoundError:
        return []
    return parse_yolo_labels(text, source=Path(label_path), nc=nc)


def read_yolo_split(data: DataYaml, split: str) -> list[tuple[Path, list[YoloBox]]]:
    """(image path, boxes) for every image of a split of a data.yaml loaded by load_data_yaml."""
    images = split_images(data, split, error=AnnotationError)
    return [(img, read_yolo_labels(label_path_for(img), nc=data.nc)) for img in images]
