"""The freeze / unfreeze / learning-rate schedule, as Ultralytics callbacks.

Freezing uses Ultralytics' own ``freeze=[indices]`` train argument. Unfreezing (``unfreeze_at``,
one epoch or several) happens inside the same Ultralytics run, so all stages share one run
directory, one results.csv, one best.pt, and ``resume`` works across every stage boundary:

- gradual unfreezing: the frozen layers are split into as many groups as ``unfreeze_at`` has
  epochs, from the top (nearest the head) down; after epoch ``unfreeze_at[k]`` group k becomes
  trainable and its BatchNorm layers train again (their names leave ``trainer.freeze_layer_names``,
  which Ultralytics' ``_model_train`` reads each epoch). At the first step every parameter group's
  base learning rate is scaled by ``unfreeze_lr_factor`` (the scheduler follows its usual curve
  from there); one value of ``unfreeze_at`` is the classic two-stage schedule;
- discriminative learning rates (``lr_factors``): ``on_pretrain_routine_start`` wraps the trainer's
  ``build_optimizer`` so that its parameter groups are split per factor before the scheduler
  exists (see ``lr_factors.py``); the bias warm-up start is scaled in a wrapped ``optimizer_step``;
- ``on_train_epoch_end``: copy the frozen layers (and the weights of layers with factor 0) from the
  live model into the EMA copy, which is what best.pt / last.pt store. The live tensors never change,
  but the EMA update ``v = d*v + (1-d)*v`` is not exact in float arithmetic and can move them by an
  ulp. BatchNorm buffers of factor-0 layers are left to the EMA: those statistics do move.

What these hooks change on Ultralytics' trainer (methods wrapped on the instance, the warm-up,
``freeze_layer_names``, the scheduler's ``base_lrs``) is done by ``yolo_tl._upstream.ultralytics``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from yolo_tl._upstream.ultralytics import (
    after_build_optimizer,
    before_optimizer_step,
    detection_model,
    replace_fitness,
    scale_base_lrs,
    scale_bias_warmup,
    unfreeze_layers,
)
from yolo_tl.training.lr_factors import split_param_groups, zero_factor_prefixes

log = logging.getLogger(__name__)


def unfreeze_groups(frozen: Sequence[int], steps: int) -> list[list[int]]:
    """Split the frozen layers into ``steps`` contiguous groups, the top (highest indices) first."""
    top_down = sorted(frozen, reverse=True)
    n, k = len(top_down), max(steps, 1)
    bounds = [round(i * n / k) for i in range(k + 1)]
    return [sorted(top_down[bounds[i]:bounds[i + 1]]) for i in range(k)]


class ScheduleHooks:
    """Ultralytics callbacks: record what was frozen, keep frozen EMA exact, unfreeze, scale lrs."""

    def __init__(self, frozen: list[int], unfreeze_at: Sequence[int] | int | None, factor: float,
                 lr_factors: Mapping[int, float] | None = None, fitness_classes: Sequence[int] | None = None) -> None:
        self.frozen = list(frozen)
        if isinstance(unfreeze_at, int):
            unfreeze_at = [unfreeze_at]
        self.unfreeze_at = list(unfreeze_at or [])
        self.factor = factor
        self.lr_factors = dict(lr_factors or {})
        self.groups = unfreeze_groups(self.frozen, len(self.unfreeze_at)) if self.unfreeze_at else []
        self.steps_done = 0
        self.frozen_actual: list[int] | None = None
        self.device: str | None = None
        self.zero_prefixes = zero_factor_prefixes(self.lr_factors)
        self.fitness_classes = set(fitness_classes or [])
        self._ni = -1

    @property
    def still_frozen(self) -> list[int]:
        done = {i for g in self.groups[:self.steps_done] for i in g}
        return [i for i in self.frozen if i not in done]

    def attach(self, model: Any) -> None:
        model.add_callback("on_pretrain_routine_start", self.on_pretrain_routine_start)
        model.add_callback("on_pretrain_routine_end", self.on_pretrain_routine_end)
        model.add_callback("on_train_epoch_start", self.on_train_epoch_start)
        model.add_callback("on_train_batch_start", self.on_train_batch_start)
        model.add_callback("on_train_epoch_end", self.on_train_epoch_end)

    def on_pretrain_routine_start(self, trainer: Any) -> None:
        if self.fitness_classes:
            self._select_best_on(trainer)
        if not self.lr_factors:
            return

        def split(optimizer: Any, model: Any) -> None:
            split_param_groups(optimizer, model, self.lr_factors)
            log.info("lr factors: %d parameter groups", len(optimizer.param_groups))

        after_build_optimizer(trainer, split)
        before_optimizer_step(trainer, lambda: scale_bias_warmup(trainer, self._ni))

    def on_pretrain_routine_end(self, trainer: Any) -> None:
        self.device = str(trainer.device)
        layers = detection_model(trainer.model).model
        self.frozen_actual = [
            i for i in self.frozen if i < len(layers) and all(not p.requires_grad for p in layers[i].parameters())
        ]

    def on_train_epoch_start(self, trainer: Any) -> None:
        self._ni = trainer.epoch * len(trainer.train_loader) - 1
        while self.steps_done < len(self.groups) and trainer.epoch >= self.unfreeze_at[self.steps_done]:
            self._unfreeze_next(trainer)

    def on_train_batch_start(self, trainer: Any) -> None:
        self._ni += 1

    def on_train_epoch_end(self, trainer: Any) -> None:
        prefixes = tuple(f"model.{i}." for i in self.still_frozen)
        if not (prefixes or self.zero_prefixes) or trainer.ema is None:
            return
        import torch

        live_model = detection_model(trainer.model)
        live = live_model.state_dict()
        params = {k for k, _ in live_model.named_parameters()}
        with torch.no_grad():
            for key, value in detection_model(trainer.ema.ema).state_dict().items():
                if key not in live or not value.dtype.is_floating_point:
                    continue
                if key.startswith(prefixes) or (key in params and key.startswith(self.zero_prefixes)):
                    value.copy_(live[key])

    def _select_best_on(self, trainer: Any) -> None:
        """best.pt and early stopping by mAP50-95 over ``fitness_classes`` only (Ultralytics: all classes).

        Used by --keep-classes: the val split's pseudo-labels are the start model's own guesses, often a
        handful of boxes, so their AP is agreement with the teacher, not truth, and a noisy one; the
        classes the user labelled choose the checkpoint.
        """

        def fitness(box: Any) -> float:
            rows = [i for i, c in enumerate(box.ap_class_index) if int(c) in self.fitness_classes]
            return float(box.ap[rows].mean()) if rows else 0.0

        replace_fitness(trainer, fitness)

    def _unfreeze_next(self, trainer: Any) -> None:
        group = self.groups[self.steps_done]
        prefixes = tuple(f"model.{i}." for i in group)
        unfreeze_layers(trainer, prefixes)
        if self.steps_done == 0:
            # The scheduler was built fresh for this process (also on resume), so base_lrs are stage 1's.
            scale_base_lrs(trainer, self.factor)
        self.steps_done += 1
        log.info("from epoch %d: layers %s trainable%s", trainer.epoch + 1, _span(group),
                 f", lr x {self.factor:g}" if self.steps_done == 1 else "")


def stages(frozen: list[int], epochs: int, unfreeze_at: Sequence[int] | int | None,
           factor: float) -> list[dict[str, Any]]:
    """The schedule as run.json records it: epochs (1-based, inclusive), frozen layers, lr factor."""
    if isinstance(unfreeze_at, int):
        unfreeze_at = [unfreeze_at]
    if not unfreeze_at:
        return [{"epochs": [1, epochs], "frozen_layers": frozen, "lr_factor": 1.0}]
    groups = unfreeze_groups(frozen, len(unfreeze_at))
    bounds = [0, *unfreeze_at, epochs]
    out, remaining = [], list(frozen)
    for k in range(len(bounds) - 1):
        out.append({"epochs": [bounds[k] + 1, bounds[k + 1]], "frozen_layers": list(remaining),
                    "lr_factor": 1.0 if k == 0 else factor})
        if k < len(groups):
            remaining = [i for i in remaining if i not in groups[k]]
    return out


def _span(layers: list[int]) -> str:
    return f"{layers[0]}-{layers[-1]}" if len(layers) > 1 else str(layers[0]) if layers else "none"
