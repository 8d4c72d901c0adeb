"""Discriminative learning rates: ``--lr-factors backbone=0.1,neck=0.5,0-4=0.05``.

Each part of the model trains at the base learning rate times its factor. Parts come from the
model's own architecture yaml: ``backbone`` is its ``backbone:`` list, ``head`` the final (Detect)
module, ``neck`` everything between; ``A-B`` or ``N`` name layer indices. Later entries win, so
``backbone=0.1,0-2=0`` trains layers 0-2 not at all and the rest of the backbone at 0.1x.

How the factor reaches every update. Ultralytics builds its optimizer with three parameter groups
(weights with decay, BatchNorm weights, biases; MuSGD adds more) and then drives each group's
``lr`` from ``group["initial_lr"]`` during warm-up and from the LambdaLR scheduler's ``base_lrs``
after it. ``split_param_groups`` wraps the trainer's ``build_optimizer`` so that each of those
groups is split by factor *before* the scheduler is built: the scheduler then takes the scaled
``lr`` as ``initial_lr`` and ``base_lrs``, and warm-up, decay, unfreeze steps and ``--resume``
(which rebuilds the optimizer the same way, so its saved state fits) all keep the ratio. The one
exception is the bias warm-up, which Ultralytics starts from a fixed ``warmup_bias_lr``; the hooks
in ``schedule.py`` scale that start too (see ``ScheduleHooks._scale_bias_warmup``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from yolo_tl.errors import TrainingError

PARTS = ("backbone", "neck", "head")
_LAYER = re.compile(r"(?:^|\.)model\.(\d+)\.")
FIELD = "--lr-factors"


def parse_lr_factors(value: str | Mapping[str, float] | None) -> list[tuple[str, float]]:
    """``"backbone=0.1,0-4=0.05"`` (or a mapping) -> ``[("backbone", 0.1), ("0-4", 0.05)]``, checked."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        items = [(str(k), v) for k, v in value.items()]
    else:
        items = []
        for entry in str(value).replace(" ", "").split(","):
            if not entry:
                continue
            if "=" not in entry:
                raise TrainingError(f"expected PART=FACTOR, got {entry!r}", field=FIELD,
                                    hint="e.g. backbone=0.1,neck=0.5 or 0-4=0.05")
            key, _, number = entry.partition("=")
            items.append((key, number))
    out = []
    for key, number in items:
        key = key.strip().lower()
        if key not in PARTS and not re.fullmatch(r"\d+(-\d+)?", key):
            raise TrainingError(f"unknown part {key!r}: use backbone, neck, head, N or A-B", field=FIELD)
        try:
            factor = float(number)
        except (TypeError, ValueError):
            raise TrainingError(f"{key}: factor must be a number, got {number!r}", field=FIELD) from None
        if not math.isfinite(factor) or factor < 0:
            raise TrainingError(f"{key}: factor must be >= 0, got {number!r}", field=FIELD)
        out.append((key, factor))
    return out


def format_lr_factors(entries: list[tuple[str, float]]) -> str:
    return ",".join(f"{k}={f:g}" for k, f in entries)


def resolve_lr_factors(entries: list[tuple[str, float]], model_yaml: Mapping[str, Any]) -> dict[int, float]:
    """Per-layer factor for the layers that differ from 1.0, e.g. ``{0: 0.1, ..., 9: 0.1}``."""
    from yolo_tl.training.freeze import architecture_lengths

    if not entries:
        return {}
    n_backbone, n_layers = architecture_lengths(model_yaml)
    parts = {"backbone": range(0, n_backbone), "neck": range(n_backbone, n_layers - 1),
             "head": range(n_layers - 1, n_layers)}
    factors: dict[int, float] = {}
    for key, factor in entries:
        if key in parts:
            layers = parts[key]
        else:
            a, _, b = key.partition("-")
            lo, hi = int(a), int(b or a)
            if lo > hi or hi >= n_layers:
                raise TrainingError(f"layers {key} do not exist: the model has {n_layers} layers "
                                    f"(0..{n_layers - 1})", field=FIELD)
            layers = range(lo, hi + 1)
        for i in layers:
            factors[i] = factor
    return {i: f for i, f in sorted(factors.items()) if f != 1.0}


def layer_of(param_name: str) -> int | None:
    """``model.12.cv1.conv.weight`` (also under ``student_model.``) -> 12."""
    m = _LAYER.search(param_name)
    return int(m.group(1)) if m and not param_name.startswith("teacher_model.") else None


def split_param_groups(optimizer: Any, model: Any, factors: Mapping[int, float]) -> None:
    """Split every parameter group by per-layer factor, in place; each new group's lr = lr x factor.

    The groups keep every other setting of the group they came from (weight decay, momentum, betas,
    Ultralytics' ``param_group`` tag) and carry ``lr_factor``. The order is deterministic, so an
    optimizer rebuilt on resume has the same groups as the saved one.
    """
    from ultralytics.utils.torch_utils import unwrap_model

    layer_by_param = {id(p): layer_of(name) for name, p in unwrap_model(model).named_parameters()}
    groups = []
    for group in optimizer.param_groups:
        by_factor: dict[float, list[Any]] = {}
        for p in group["params"]:
            f = factors.get(layer_by_param.get(id(p)), 1.0)  # type: ignore[arg-type]
            by_factor.setdefault(f, []).append(p)
        for f, params in by_factor.items():
            settings = {k: v for k, v in group.items() if k != "params"}
            groups.append({**settings, "params": params, "lr": group["lr"] * f, "lr_factor": f})
    optimizer.param_groups = []
    for g in groups:
        optimizer.add_param_group(g)


def zero_factor_prefixes(factors: Mapping[int, float]) -> tuple[str, ...]:
    """``model.N.`` of the layers whose factor is 0: their weights must come out bit-identical."""
    return tuple(f"model.{i}." for i, f in factors.items() if f == 0)


__all__ = ["parse_lr_factors", "resolve_lr_factors", "format_lr_factors", "split_param_groups",
           "zero_factor_prefixes", "layer_of"]
