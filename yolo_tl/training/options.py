"""Every finetune option once: its default, the values it accepts and a one-line help.

``finetune()``, ``yolo-tl finetune`` (its defaults and ``--help``), ``--config`` files and run.json all
read this one class, so an option is added in one place. ``from_yaml`` merges a config file with the
options the caller set explicitly (those win), the way ``--config`` works on the command line; the
machinery is shared with ``AnalyzeOptions`` in ``yolo_tl/options.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from yolo_tl.errors import TrainingError, YoloTLError
from yolo_tl.options import Options, option


@dataclass(frozen=True)
class FinetuneOptions(Options):
    """What ``finetune`` does, as plain values (run.json records them with ``to_dict``)."""

    data: str | None = option(None, "data.yaml of a YOLO dataset (from yolo-tl prepare).", (str,), nullable=True)
    weights: str = option("yolov8n.pt", "Start checkpoint: a .pt path, a name like yolo11n.pt (cache or download), "
                        "or a model .yaml (from scratch).", (str,))
    freeze: str | int | tuple[int, ...] | None = option(
        "auto", "Layers to freeze: backbone, none, N (layers 0..N-1) or a list 0,1,2. Default auto: backbone for "
        ".pt weights, none for a model .yaml (random weights; freezing them is refused).", (str, int, tuple),
        nullable=True)
    epochs: int = option(100, "Total epochs (both stages together).", (int,))
    imgsz: int = option(640, "Training image size.", (int,))
    batch: int = option(16, "Batch size (-1: Ultralytics AutoBatch on one GPU).", (int,))
    device: str | None = option(None, "auto, cpu, mps, 0, or 0,1,2,3 for multi-GPU DDP.", (str,), nullable=True)
    seed: int = option(0, "Random seed.", (int,))
    patience: int = option(100, "Early-stopping patience in epochs.", (int,))
    workers: int = option(8, "Dataloader workers.", (int,))
    project: str = option("runs", "Folder of the run directories.", (str,))
    name: str | None = option(None, "Run name (default train, train2, ...).", (str,), nullable=True)
    resume: bool = option(False, "Resume the interrupted run PROJECT/NAME (name is required).", (bool,))
    unfreeze_at: int | str | tuple[int, ...] | None = option(
        None, "Unfreeze after these epochs: 5 (two-stage: all at once) or 5,10 (gradual: frozen layers split "
        "into groups, top first).", (int, str, tuple), nullable=True)
    unfreeze_lr_factor: float = option(0.1, "Learning-rate factor from the first unfreeze step on.", (float,))
    lr_factors: str | Mapping[str, float] | None = option(
        None, "Per-part learning-rate factors: backbone=0.1,neck=0.5,head=1 or layer ranges 0-4=0.05 "
        "(later entries win).", (str, Mapping), nullable=True)
    keep_classes: bool = option(False, "Keep the start model's classes: train on the data's classes plus its, with "
                              "its pseudo-labels on the images (a derived dataset in the run folder).", (bool,))
    pseudo_conf: float = option(0.5, "keep_classes: confidence of the start model's boxes kept as pseudo-labels.",
                              (float,))
    distill: bool = option(False, "keep_classes: also distil from the start model (Ultralytics distill_model).",
                         (bool,))
    on_error: str = option("fail", "A bad label line: fail (stop, name file:line) or skip (train without that "
                         "image; listed in run.json).", (str,))
    extra: Mapping[str, Any] = option(None, "Further Ultralytics train arguments (lr0, optimizer, plots, ...); "
                                    "'ultralytics:' in a config file.", (Mapping,), factory=dict)

    error: ClassVar[type[YoloTLError]] = TrainingError
    aliases: ClassVar[dict[str, str]] = {"ultralytics": "extra"}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.on_error not in ("fail", "skip"):
            raise TrainingError(f"expected fail or skip, got {self.on_error!r}", field="on_error")
