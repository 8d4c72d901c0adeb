"""The types every benchmark module shares: sizes (``Config``), a table row (``Row``), the run context
(``Ctx``), and small helpers: ``verdict``, ``spread``, ``epoch_timer``, ``command_line``, ``fmt`` (a number
or "-") and ``written_by`` (a results file's "Written by ..." sentence). Imports no other benchmark module,
so each ``benchmarks/*.py`` imports on its own."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmarks.harness import Case


@dataclass
class Config:
    """Sizes and repeat counts; ``quick()`` is the smoke-test size."""

    voc_images: int = 5000
    coco_images: int = 10000
    scaling: tuple[int, ...] = (1000, 10000, 50000)
    train_images: tuple[int, int] = (64, 16)
    train_imgsz: int = 128
    train_epochs: int = 2
    ingest_images: int = 2000
    ingest_boxes: int = 20
    eval_images: int = 500  # the first N of the ingest set: evaluation costs ~0.1 s per sample
    profile_images: int = 200
    predict_images: int = 500
    predict_imgsz: int = 160
    repeats: int = 3
    repeats_slow: int = 2  # FiftyOne VOC import+export, ingest, freeze runs
    repeats_train: int = 5  # finetune vs direct train(): a 3% target in +-15% run-to-run noise
    repeats_eval: int = 1  # evaluate_detections at 2,000 samples takes minutes on 2 cores
    profile: bool = True

    @classmethod
    def quick(cls) -> Config:
        return cls(voc_images=200, coco_images=300, scaling=(100, 300, 1000),
                   train_images=(8, 4), train_imgsz=64, train_epochs=1, ingest_images=40,
                   ingest_boxes=5, eval_images=40, profile_images=20, predict_images=10, predict_imgsz=64,
                   repeats=1, repeats_slow=1, repeats_train=1, repeats_eval=1, profile=False)


@dataclass
class Row:
    what: str
    against: str
    metric: str
    ours: float | None
    base: float | None
    ratio: float | None
    target: str
    verdict: str  # pass / FAIL / report / skipped
    notes: list[str] = field(default_factory=list)


@dataclass
class Ctx:
    cfg: Config
    work: Path
    env: dict
    log: Callable[[str], None]
    extras: dict = field(default_factory=dict)  # profiles and other findings for the report

    def data(self, name: str) -> Path:
        return self.work / "data" / name


def verdict(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def spread(case: Case, key: str) -> str:
    vals = case.values(key)
    return (f"{case.name}: " + ", ".join(f"{v:.2f}" for v in vals) + " s") if vals else ""


def epoch_timer(times: list[float]) -> dict[str, Callable]:
    """Ultralytics callbacks that append each training epoch's seconds to ``times``."""
    start: list[float] = []
    return {"on_train_epoch_start": lambda t: start.append(time.perf_counter()),
            "on_train_epoch_end": lambda t: times.append(time.perf_counter() - start[-1])}


def command_line(module: str, settings: dict) -> str:
    """The ``python -m benchmarks.MODULE --key value ...`` that reproduces a run with ``settings``."""
    args = (f"--{k.replace('_', '-')}" + (f" {v}" if v != "" else "") for k, v in settings.items())
    return f"python -m benchmarks.{module} " + " ".join(args)


def fmt(v: float | None, digits: int = 3) -> str:
    """``v`` with ``digits`` decimals, or "-" for None."""
    return "-" if v is None else f"{v:.{digits}f}"


def written_by(command: str) -> str:
    """The sentence that opens a results file: the command, the machine, Ultralytics and torch versions, the time."""
    import torch
    import ultralytics

    return (f"Written by `{command}` on the CPU ({platform.processor() or platform.machine()}, shared 2-core "
            f"machine), Ultralytics {ultralytics.__version__}, torch {torch.__version__}, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.")
