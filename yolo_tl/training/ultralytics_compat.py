"""Checks and guards around Ultralytics: data.yaml, device, and no network calls when offline.

Everything here runs before Ultralytics is asked to do anything, so bad input becomes one
YoloTLError line instead of a traceback from deep inside the trainer.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from yolo_tl.errors import OutputError, TrainingError, is_disk_full
from yolo_tl.network import offline
from yolo_tl.dataset.formats.safe_paths import IMAGE_SUFFIXES
from yolo_tl.dataset.formats.yolo import DataYaml, label_dir_for, load_data_yaml

log = logging.getLogger(__name__)

DataInfo = DataYaml  # the one data.yaml model (yolo_tl.dataset.formats.yolo); old name kept for callers


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
    if not checked.bad and _ultralytics_agrees(data):
        return TrainingData(data.path, record)
    workdir.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {"path": str(data.root)}
    for split in ("train", "val", "test"):
        if split in checked.images:
            listing = workdir / f"{split}_images.txt"
            _write_atomic(listing, "".join(f"{p}\n" for p in checked.images[split]))
            doc[split] = str(listing)
        elif split in data.entries:
            doc[split] = [str(p) for p in data.entries[split]]
    doc["nc"], doc["names"] = data.nc, data.names_dict
    out = workdir / "data.yaml"
    header = f"# {data.path} as yolo-tl handed it to Ultralytics ({len(checked.bad)} image(s) left out)\n"
    _write_atomic(out, header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    record["data_yaml_used"] = str(out)
    return TrainingData(out, record)


@contextlib.contextmanager
def disk_full_guard(run_dir: Path, *, fresh: bool) -> Iterator[None]:
    """A full disk during training becomes one OutputError line; a run folder this call created is
    removed (its last.pt may be cut short), a resumed run's folder is kept as it was."""
    try:
        yield
    except (OSError, RuntimeError) as err:
        if not is_disk_full(err):
            raise
        if fresh:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise OutputError(f"no space left on the device while writing the run ({err.__class__.__name__})",
                          path=run_dir, hint="free some space or pass --project on another disk"
                          + ("; the partial run folder was removed" if fresh else "")) from None


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write ({err.strerror})", path=path) from None


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


def check_device(device: str | int | None) -> str | None:
    """Normalise ``--device`` (auto, cpu, mps, 0, 0,1,...) and refuse GPUs this machine lacks."""
    if device is None:
        return None
    text = str(device).strip().lower().replace(" ", "")
    if text in ("", "auto", "none"):
        return None
    if text == "cpu":
        return "cpu"
    import torch

    if text == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise TrainingError("device mps requested but MPS is not available", field="--device",
                                hint="use --device cpu")
        return "mps"
    parts = [p.replace("cuda:", "") for p in text.split(",") if p]
    parts = ["0" if p == "cuda" else p for p in parts]
    if not parts or not all(p.isdigit() for p in parts):
        raise TrainingError(f"unknown device {device!r}", field="--device", hint="use auto, cpu, mps, 0 or 0,1,2,3")
    if not torch.cuda.is_available():
        raise TrainingError(
            f"CUDA device {device} requested but this machine has no usable CUDA GPU",
            field="--device",
            hint="use --device cpu",
        )
    count = torch.cuda.device_count()
    missing = [p for p in parts if int(p) >= count]
    if missing:
        raise TrainingError(
            f"CUDA device {missing[0]} requested but only {count} GPU(s) are visible", field="--device"
        )
    return ",".join(parts)


@contextlib.contextmanager
def offline_guards() -> Iterator[None]:
    """Keep Ultralytics from reaching for the network when we are offline.

    - Fonts: ``check_font('Arial.ttf')`` would download the font; offline we hand it matplotlib's
      bundled DejaVuSans instead, so labels and plots are still drawn.
    - AMP check (CUDA only): it loads ``yolo26n.pt``, downloading it if missing; offline and not
      cached we skip the check and keep AMP on, which is what Ultralytics itself does when its
      download fails, minus the retries.
    Online, both fall through to Ultralytics unchanged.
    """
    import ultralytics.data.utils as data_utils
    import ultralytics.engine.trainer as trainer_mod
    from ultralytics.utils import checks, plotting

    original_font = checks.check_font
    original_amp = trainer_mod.check_amp

    def safe_check_font(font: str = "Arial.ttf") -> Any:
        from ultralytics.utils import USER_CONFIG_DIR

        local = USER_CONFIG_DIR / Path(font).name
        if local.exists() or not offline():
            return original_font(font)
        from matplotlib import font_manager

        return font_manager.findfont("DejaVu Sans", fallback_to_default=True)

    def safe_check_amp(model: Any) -> Any:
        from ultralytics.utils import WEIGHTS_DIR

        if offline() and not (Path(WEIGHTS_DIR) / "yolo26n.pt").is_file():
            log.warning("AMP check skipped: offline and yolo26n.pt is not cached; AMP stays on")
            return True
        return original_amp(model)

    patches = [
        (checks, "check_font", safe_check_font),
        (data_utils, "check_font", safe_check_font),
        (plotting, "check_font", safe_check_font),
        (trainer_mod, "check_amp", safe_check_amp),
    ]
    saved = [(mod, name, getattr(mod, name)) for mod, name, _ in patches]
    try:
        for mod, name, value in patches:
            setattr(mod, name, value)
        yield
    finally:
        for mod, name, value in saved:
            setattr(mod, name, value)
