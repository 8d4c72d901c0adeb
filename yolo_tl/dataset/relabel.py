"""A derived YOLO dataset: the user's images (linked, never copied or touched), new label files.

Used by ``--keep-classes`` (the user's labels plus the pretrained model's pseudo-labels, under a
longer class list) and by ``evaluate`` when a model knows more classes than the data.yaml (labels
re-indexed to the model's class order). Image *files* are symlinked one by one (Ultralytics swaps the
last ``/images/`` of the image path it was given for ``/labels/``, so the links' own paths lead to the
new labels); where links are not allowed they are hard-linked, else copied.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import yaml

from yolo_tl.dataset.formats.yolo import DataYaml, label_path_for
from yolo_tl.errors import TrainingError

Box = tuple[int, float, float, float, float]  # cls cx cy w h, normalised
LabelFn = Callable[[str, Path, list[Box]], list[Box]]  # (split, image, its boxes) -> boxes to write


def read_boxes(path: Path) -> list[Box]:
    if not path.is_file():
        return []
    boxes: list[Box] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            boxes.append((int(parts[0]), *(float(v) for v in parts[1:5])))  # type: ignore[arg-type]
        except (ValueError, IndexError):
            raise TrainingError(f"line {n}: expected 'class cx cy w h', got {line.strip()!r}", path=path) from None
    return boxes


def write_derived_dataset(info: DataYaml, out: Path, names: list[str], relabel: LabelFn,
                          splits: tuple[str, ...] = ("train", "val", "test"),
                          aliases: tuple[str, ...] = ()) -> Path:
    """Write ``out/images/<split>/`` (links), ``out/labels/<split>/`` and ``out/data.yaml``; return it.

    ``aliases``: split keys that data.yaml needs but that were not written point at the first one.
    """
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    entries: dict[str, str] = {}
    for split in splits:
        if split not in info.entries:
            continue
        used: set[str] = set()
        for image in info.images(split, error=TrainingError):
            rel = _relative(info, split, image)
            name = rel if rel not in used else f"{len(used)}_{rel}"
            used.add(name)
            link = out / "images" / split / name
            link.parent.mkdir(parents=True, exist_ok=True)
            _link(image, link)
            boxes = relabel(split, image, read_boxes(label_path_for(image)))
            lab = out / "labels" / split / Path(name).with_suffix(".txt")
            lab.parent.mkdir(parents=True, exist_ok=True)
            lab.write_text("".join(f"{c} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n" for c, cx, cy, w, h in boxes))
        entries[split] = f"images/{split}"
    for alias in aliases:
        if alias not in entries and entries:
            entries[alias] = next(iter(entries.values()))
    data = {"path": str(out.resolve()), **entries, "names": dict(enumerate(names))}
    (out / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return out / "data.yaml"


def write_by_name_dataset(info: DataYaml, out: Path, model_names: dict[int, str], split: str,
                          class_map: dict[int, int]) -> Path:
    """``split`` of ``info`` with its labels re-indexed to the model's class order, for Ultralytics' validator.

    ``class_map``: data class id -> model class id (``model.class_names.match_classes``).
    """
    names = [str(model_names[i]) for i in sorted(model_names)]
    return write_derived_dataset(info, out, names, lambda _s, _i, boxes: [(class_map[c], *b) for c, *b in boxes],
                                 splits=(split,), aliases=("train", "val"))


def _relative(info: DataYaml, split: str, image: Path) -> str:
    for entry in info.entries.get(split, []):
        if entry.is_dir():
            try:
                return image.relative_to(entry.resolve()).as_posix()
            except ValueError:
                continue
    return image.name


def _link(src: Path, dst: Path) -> None:
    for make in (os.symlink, os.link):
        try:
            make(src.resolve(), dst)
            return
        except OSError:
            continue
    shutil.copy2(src, dst)


def iter_splits(info: DataYaml, splits: tuple[str, ...]) -> Iterator[tuple[str, list[Path]]]:
    for split in splits:
        if split in info.entries:
            yield split, info.images(split, error=TrainingError)
