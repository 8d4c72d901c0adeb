"""The data.yaml Ultralytics is handed: its splits checked, resolved as Ultralytics would, fingerprinted.

Everything here runs before Ultralytics is asked to do anything, so bad input becomes one
YoloTLError line instead of a traceback from deep inside the trainer.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from yolo_tl.dataset.formats.safe_paths import IMAGE_SUFFIXES
from yolo_tl.dataset.formats.yolo import DataYaml, label_dir_for, load_data_yaml
from yolo_tl.errors import TrainingError
from yolo_tl.files import write_text_atomic

log = logging.getLogger(__name__)

def read_data_info(data_yaml: str | Path, *, need: tuple = ("train", "val")) -> DataYaml:
    """Read data.yaml and check that its classes and the image folders / lists of ``need`` exist.

    Labels are checked separately (``yolo_tl.dataset.yolo_check``), once, before training.
    """
    data = load_data_yaml(data_yaml, error=TrainingError)
    log.info("%s: dataset root %s (%s)", data.path, data.root, data.root_from)
    for split in need:
        if split not in data.entries:
            hint = "Ultralytics needs one; it may point to the same images as train" if split == "val" else None
            raise TrainingError(f"no '{split}' split", path=data.path, field=split, hint=hint)
    for split, entries in data.entries.items():
        for p in entries:
            if not p.exists():
                raise TrainingError(f"images not found at {p} (dataset root {data.root}: {data.root_from})",
                                    path=data.path, field=split)
            if p.is_dir() and not any(f.suffix.lower() in IMAGE_SUFFIXES for f in p.rglob("*") if f.is_file()):
                raise TrainingError(f"no images in {p}", path=data.path, field=split)
    return data


def label_dirs(data: DataYaml) -> list[Path]:
    """The label folders beside the image folders of every split (Ultralytics' images -> labels rule)."""
    # Ultralytics resolves a split entry (check_det_dataset), then swaps /images/ for /labels/
    return [label_dir_for(p.resolve()) for entries in data.entries.values() for p in entries if p.is_dir()]


def ultralytics_root(data: DataYaml) -> Path:
    """The dataset root Ultralytics 8.4 would use for this data.yaml (``check_det_dataset``)."""
    from ultralytics.utils import DATASETS_DIR

    path = Path(str(data.raw.get("path") or "") or data.path.parent)
    if not path.exists() and not path.is_absolute():
        path = Path(DATASETS_DIR) / path
    return path.resolve()


@dataclass
class TrainingData:
    """The data.yaml handed to Ultralytics after the label check, and what the check found."""

    data_yaml: Path
    record: dict[str, Any]


def _ultralytics_agrees(data: DataYaml) -> bool:
    """Whether Ultralytics would read the same images as we do from the user's own data.yaml."""
    if ultralytics_root(data) != data.root:
        return False
    for entries in data.entries.values():
        for p in entries:
            if p.is_file() and p.suffix == ".txt":
                lines = (s.strip() for s in p.read_text(encoding="utf-8-sig").splitlines())
                # Ultralytics reads a relative line without './' against the current folder
                if any(s and not s.startswith("./") and not Path(s).is_absolute() for s in lines):
                    return False
    return True


def check_training_data(data: DataYaml, *, on_error: str = "fail", workdir: Path,
                        splits: tuple = ("train", "val")) -> TrainingData:
    """Check every label of ``splits`` once (``yolo_tl.dataset.yolo_check``) before training.

    ``on_error="fail"`` stops at the first bad line; ``"skip"`` leaves the bad images out. When
    images are left out, or Ultralytics would resolve the user's data.yaml differently (a relative
    ``path:``, relative lines in a .txt list), a resolved data.yaml with absolute .txt image lists
    is written to ``workdir`` and handed to Ultralytics instead; the user's files are never changed.
    """
    from yolo_tl.dataset.yolo_check import check_dataset

    checked = check_dataset(data, splits, on_error=on_error, error=TrainingError,
                            hint="or pass --on-error skip to train without this image")
    record = {"on_error": on_error, **checked.to_dict(), "data_yaml_used": str(data.path)}
    out = data.path
    if checked.bad or not _ultralytics_agrees(data):
        out = write_resolved_data_yaml(data, workdir, lists=checked.images,
                                       note=f"{len(checked.bad)} image(s) left out")
    record["data_yaml_used"] = str(out)
    return TrainingData(out, record)


def ultralytics_data_yaml(data: DataYaml, workdir: Path, splits: tuple = ("train", "val", "test")) -> Path:
    """The data.yaml to hand Ultralytics so that it reads the images we read: the user's own file when
    Ultralytics resolves it the same way, else a resolved copy in ``workdir`` (the user's files are
    never changed). Every command that gives Ultralytics a data.yaml goes through here: Ultralytics
    reads a relative ``path:`` against the current folder, yolo-tl against the data.yaml's folder."""
    if _ultralytics_agrees(data):
        return data.path
    lists = {split: data.images(split, error=TrainingError) for split in splits if split in data.entries}
    return write_resolved_data_yaml(data, workdir, lists=lists, note="paths resolved")


def write_resolved_data_yaml(data: DataYaml, workdir: Path, *, lists: dict[str, list[Path]], note: str) -> Path:
    """``workdir/data.yaml``: absolute ``path:``, each split in ``lists`` as a .txt list of absolute image
    paths (what Ultralytics reads without resolving anything), the same names."""
    workdir.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {"path": str(data.root)}
    for split in ("train", "val", "test"):
        if split in lists:
            listing = workdir / f"{split}_images.txt"
            write_text_atomic(listing, "".join(f"{p}\n" for p in lists[split]))
            doc[split] = str(listing)
        elif split in data.entries:
            doc[split] = [str(p) for p in data.entries[split]]
    doc["nc"], doc["names"] = data.nc, data.names_dict
    out = workdir / "data.yaml"
    header = f"# {data.path} as yolo-tl handed it to Ultralytics ({note})\n"
    write_text_atomic(out, header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return out


def fingerprint(info: DataYaml) -> dict[str, Any]:
    """sha256 of data.yaml and of all label files (relative name + content), in a fixed order."""
    digest = hashlib.sha256()
    count = 0
    for label_dir in sorted(set(label_dirs(info))):
        if not label_dir.is_dir():
            continue
        for f in sorted(label_dir.rglob("*.txt")):
            digest.update(str(f.relative_to(label_dir.parent)).encode() + b"\0")
            digest.update(hashlib.sha256(f.read_bytes()).digest())
            count += 1
    return {
        "data_yaml": str(info.path),
        "data_yaml_sha256": hashlib.sha256(info.path.read_bytes()).hexdigest(),
        "labels_sha256": digest.hexdigest(),
        "label_files": count,
        "nc": info.nc,
        "names": info.names_dict,
        "root": str(info.root),
        "root_from": info.root_from,
    }
