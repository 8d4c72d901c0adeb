"""Fine-tune cases: ``yolo_tl.finetune`` vs the same ``YOLO(...).train(...)`` call made directly.

Epoch times come from Ultralytics' own callbacks (``on_train_epoch_start`` / ``_end``), added to
its default callback table so they also reach the trainer that ``yolo_tl.finetune`` builds.
"""

from __future__ import annotations

import time


def _epoch_timer() -> list[float]:
    """Register global epoch-timing callbacks; return the list that collects train-epoch seconds."""
    from ultralytics.utils.callbacks import base

    times: list[float] = []
    start: list[float] = []
    base.default_callbacks["on_train_epoch_start"].append(
        lambda trainer: start.append(time.perf_counter()))
    base.default_callbacks["on_train_epoch_end"].append(
        lambda trainer: times.append(time.perf_counter() - start[-1]))
    return times


def make_checkpoint(out: str, cfg: str = "yolov8n.yaml") -> dict:
    """An untrained checkpoint built from a model YAML (nothing is downloaded)."""
    from ultralytics import YOLO

    YOLO(cfg).save(out)
    return {"seconds": 0.0}


def direct_train(model: str, data: str, project: str, name: str, train_args: dict) -> dict:
    """``YOLO(model).train(data=..., project=..., name=..., **train_args)``, nothing else."""
    from ultralytics import YOLO

    times = _epoch_timer()
    t0 = time.perf_counter()
    YOLO(model).train(data=data, project=project, name=name, **train_args)
    return {"seconds": time.perf_counter() - t0, "epoch_seconds": times}


def ours_finetune(model: str, data: str, project: str, name: str, ours_args: dict) -> dict:
    """``yolo_tl.finetune`` with the arguments that map to the direct call."""
    from yolo_tl import finetune

    times = _epoch_timer()
    t0 = time.perf_counter()
    result = finetune(data, weights=model, project=project, name=name, **ours_args)
    return {"seconds": time.perf_counter() - t0, "epoch_seconds": times,
            "result": repr(result)[:300]}


def epoch_times(model: str, data: str, project: str, name: str, freeze: str,
                ours_args: dict, train_args: dict) -> dict:
    """Train-epoch seconds with ``freeze`` (``none`` / ``backbone``) through yolo-tl when it is
    importable, else through Ultralytics directly with the equivalent ``freeze`` value."""
    try:
        from yolo_tl import finetune
    except (ImportError, AttributeError):
        finetune = None
    times = _epoch_timer()
    t0 = time.perf_counter()
    if finetune is not None:
        finetune(data, weights=model, project=project, name=name, freeze=freeze,
                 **ours_args)
        via = "yolo_tl.finetune"
    else:
        from ultralytics import YOLO

        YOLO(model).train(data=data, project=project, name=name,
                          freeze=10 if freeze == "backbone" else None, **train_args)
        via = "ultralytics"
    return {"seconds": time.perf_counter() - t0, "epoch_seconds": times, "via": via}
