"""Checks and guards around Ultralytics: data.yaml, device, and no network calls when offline.

Everything here runs before Ultralytics is asked to do anything, so bad input becomes one
YoloTLError line instead of a traceback from deep inside the trainer.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from yolo_tl.errors import TrainingError
from yolo_tl.network import offline
from yolo_tl.dataset.formats.safe_paths import IMAGE_SUFFIXES
from yolo_tl.dataset.formats.yolo import label_dir_for, load_data_yaml

log = logging.getLogger(__name__)



@dataclass
class DataInfo:
    """What yolo-tl needs to know about a data.yaml before handing it to Ultralytics."""

    path: Path
    root: Path
    names: dict[int, str]
    splits: dict[str, list[Path]] = field(default_factory=dict)  # split -> dirs / list files
    label_dirs: list[Path] = field(default_factory=list)

    @property
    def nc(self) -> int:
        return len(self.names)


def read_data_info(data_yaml: str | Path, *, need: tuple = ("train", "val")) -> DataInfo:
    """Read data.yaml and check that its classes and image folders exist (not the labels)."""
    data = load_data_yaml(data_yaml, error=TrainingError)
    info = DataInfo(path=data.path, root=data.root, names=dict(enumerate(data.names)))
    for split in ("train", "val", "test"):
        if split not in data.entries:
            if split in need:
                raise TrainingError(f"no '{split}' split", path=data.path, field=split)
            continue
        resolved = []
        for p in data.entries[split]:
            if not p.exists():
                raise TrainingError(f"images not found at {p}", path=data.path, field=split)
            if p.is_dir():
                if not any(f.suffix.lower() in IMAGE_SUFFIXES for f in p.rglob("*") if f.is_file()):
                    raise TrainingError(f"no images in {p}", path=data.path, field=split)
                info.label_dirs.append(label_dir_for(p.resolve()))  # Ultralytics resolves the entry
            resolved.append(p.resolve())
        info.splits[split] = resolved
    return info


def fingerprint(info: DataInfo) -> dict[str, Any]:
    """sha256 of data.yaml and of all label files (relative name + content), in a fixed order."""
    digest = hashlib.sha256()
    count = 0
    for label_dir in sorted(set(info.label_dirs)):
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
        "names": info.names,
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
