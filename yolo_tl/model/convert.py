"""Carry a classic YOLOv5 checkpoint into the matching Ultralytics YOLOv5u model.

The backbone and neck of the yolov5 repository's models (layers 0..23 for P5, 0..32 for P6) have the
module names and tensor shapes of Ultralytics' ``yolov5{n,s,m,l,x}u.yaml`` (``-p6u`` for P6); only the
head differs (anchor-based vs anchor-free Detect). So every tensor before the head is copied by name,
bit-exactly, after checking the layer type, the name and the shape of each one; the Detect head is the
new model's own, freshly initialised for the data's classes.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from yolo_tl.errors import OutputError, WeightsError, is_disk_full
from yolo_tl.model.classic_yolov5 import ClassicCheckpoint, read_classic_yolov5

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConversionReport:
    """What was carried from the classic checkpoint and what is new."""

    source: Path
    sha256: str
    ultralytics_yaml: str  # e.g. yolov5nu.yaml
    scale: str
    p6: bool
    carried_layers: tuple[int, int]  # first and last layer index copied (0, 23)
    carried_tensors: int
    new_layers: tuple[int, ...]  # the head
    new_tensors: int
    source_nc: int
    nc: int
    names: dict[int, str]
    dtype: str  # dtype of the carried tensors in the file (and in a written checkpoint)

    @property
    def summary(self) -> str:
        first, last = self.carried_layers
        head = ", ".join(str(i) for i in self.new_layers)
        return (f"carried layers {first}-{last} ({self.carried_tensors} tensors, bit-exact) of {self.source.name} "
                f"into {self.ultralytics_yaml}; new: layer {head} Detect for {self.nc} classes "
                f"({self.new_tensors} tensors, freshly initialised)")

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": str(self.source), "sha256": self.sha256, "ultralytics_yaml": self.ultralytics_yaml,
            "scale": self.scale, "p6": self.p6, "carried_layers": list(self.carried_layers),
            "carried_tensors": self.carried_tensors, "new_layers": list(self.new_layers),
            "new_tensors": self.new_tensors, "source_nc": self.source_nc, "nc": self.nc, "dtype": self.dtype,
        }


def build_from_classic(classic: ClassicCheckpoint, *, names: dict[int, str] | None = None,
                       seed: int = 0) -> tuple[Any, ConversionReport]:
    """(Ultralytics DetectionModel in float32, report): backbone + neck copied, head new for ``names``."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    from yolo_tl.model.weights import sha256_file

    names = dict(names) if names else dict(classic.names)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the new head's initialisation is reproducible
        try:
            model = DetectionModel(classic.ultralytics_yaml, nc=len(names), verbose=False)
        except Exception as err:  # noqa: BLE001
            raise WeightsError(f"cannot build {classic.ultralytics_yaml}: {err}", path=classic.path,
                               field="weights") from None
    target = model.state_dict()
    _check_layers(classic, model, target)
    carried = classic.carried_keys()
    with torch.no_grad():
        for key in carried:
            target[key].copy_(classic.state_dict[key])
    model.names = names
    head = tuple(range(classic.head_index, len(model.model)))
    new = [k for k in target if _layer(k) >= classic.head_index]
    dtypes = {str(classic.state_dict[k].dtype).replace("torch.", "") for k in carried if
              classic.state_dict[k].is_floating_point()}
    report = ConversionReport(
        classic.path, sha256_file(classic.path), classic.ultralytics_yaml, classic.scale, classic.p6,
        (0, classic.head_index - 1), len(carried), head, len(new), classic.nc, len(names), names,
        ",".join(sorted(dtypes)))
    return model, report


def _check_layers(classic: ClassicCheckpoint, model: Any, target: dict[str, Any]) -> None:
    """The first layer whose type, tensor names or shapes differ -> one WeightsError naming the file and layer."""
    where = f"Ultralytics' {classic.ultralytics_yaml}"
    head = classic.head_index
    if len(model.model) - 1 != head:
        raise WeightsError(f"custom architecture: the head is layer {head} in the file, layer "
                           f"{len(model.model) - 1} in {where}", path=classic.path, field="weights")
    by_layer: dict[int, list[str]] = {}
    for key in target:
        by_layer.setdefault(_layer(key), []).append(key)
    for key in classic.state_dict:
        by_layer.setdefault(_layer(key), [])
    for i in range(head):
        ours = type(model.model[i]).__name__
        theirs = classic.layer_types[i]
        if ours != theirs:
            raise WeightsError(f"custom architecture: layer {i} is {theirs} in the file, {ours} in {where}",
                               path=classic.path, field="weights")
        file_keys = [k for k in classic.state_dict if _layer(k) == i]
        for key in file_keys:
            if key not in target:
                raise WeightsError(f"custom architecture: layer {i} has {key} in the file, not in {where}",
                                   path=classic.path, field="weights")
            a, b = tuple(classic.state_dict[key].shape), tuple(target[key].shape)
            if a != b:
                raise WeightsError(f"custom architecture: layer {i} ({key}) has shape {list(a)} in the file, "
                                   f"{list(b)} in {where}", path=classic.path, field="weights")
        missing = [k for k in by_layer.get(i, []) if k not in classic.state_dict]
        if missing:
            raise WeightsError(f"custom architecture: layer {i} lacks {missing[0]} that {where} has",
                               path=classic.path, field="weights")


def _layer(key: str) -> int:
    parts = key.split(".")
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else 1 << 30


def write_ultralytics_checkpoint(model: Any, report: ConversionReport, dest: str | Path) -> Path:
    """Save ``model`` the way Ultralytics saves its own (a dict with ``model``), atomically."""
    import copy

    import torch
    import ultralytics

    dest = Path(dest).expanduser()
    saved = copy.deepcopy(model)
    if report.dtype == "float16":
        saved = saved.half()  # fp16 -> fp32 -> fp16 gives back the file's own bits
    ckpt = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "version": ultralytics.__version__,
        "license": "AGPL-3.0 License (https://ultralytics.com/license)",
        "epoch": -1, "best_fitness": None, "model": saved, "ema": None, "updates": None, "optimizer": None,
        "train_args": {"model": report.ultralytics_yaml, "task": "detect"},
        "yolo_tl_conversion": report.to_dict(),
    }
    tmp = dest.with_name(f".{dest.name}.tmp")
    try:
        torch.save(ckpt, tmp)
        os.replace(tmp, dest)
    except (OSError, RuntimeError) as err:
        tmp.unlink(missing_ok=True)
        if is_disk_full(err):
            raise OutputError("no space left on the device while writing the converted checkpoint",
                              path=dest) from None
        if not isinstance(err, OSError):
            raise
        raise WeightsError(f"cannot write the converted checkpoint: {err.strerror or err}", path=dest) from None
    return dest


def convert_classic_yolov5(source: str | Path, dest: str | Path, *, nc: int | None = None,
                           data: str | Path | None = None, overwrite: bool = False,
                           seed: int = 0) -> ConversionReport:
    """Write an Ultralytics checkpoint made from a classic YOLOv5 one: backbone + neck carried, new head.

    The head has the classes of ``data`` (a data.yaml), or ``nc`` numbered classes, or the checkpoint's own.
    """
    source, dest = Path(source).expanduser(), Path(dest).expanduser()
    if nc is not None and data is not None:
        raise WeightsError("give --nc or --data, not both", field="nc")
    if dest.suffix.lower() != ".pt":
        raise WeightsError("the converted checkpoint must be a .pt file", path=dest, field="NEW")
    if not source.is_file():
        raise WeightsError("file not found", path=source, field="OLD")
    if dest.resolve() == source.resolve():
        raise WeightsError("would overwrite the classic checkpoint itself; give a new file name", path=dest,
                           field="NEW")
    if dest.exists() and not overwrite:
        raise WeightsError("already exists", path=dest, field="NEW", hint="choose another name or pass --force")
    if not dest.parent.is_dir():
        raise WeightsError("folder does not exist", path=dest.parent, field="NEW")
    names = None
    if data is not None:
        from yolo_tl.dataset.formats.yolo import load_data_yaml

        names = dict(load_data_yaml(data, error=WeightsError).names_dict)  # only its classes are needed
    elif nc is not None:
        if nc < 1:
            raise WeightsError(f"must be >= 1, got {nc}", field="nc")
        names = {i: f"class{i}" for i in range(nc)}
    classic = read_classic_yolov5(source)
    model, report = build_from_classic(classic, names=names, seed=seed)
    write_ultralytics_checkpoint(model, report, dest)
    log.info("%s; written to %s", report.summary, dest)
    return report


__all__ = ["ConversionReport", "build_from_classic", "convert_classic_yolov5", "write_ultralytics_checkpoint"]
