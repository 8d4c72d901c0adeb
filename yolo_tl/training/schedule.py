"""The freeze / unfreeze schedule, as Ultralytics callbacks.

Freezing uses Ultralytics' own ``freeze=[indices]`` train argument. The two-stage schedule
(``unfreeze_at``) is one Ultralytics run with two callbacks, so both stages share one run
directory, one results.csv, one best.pt, and ``resume`` works across the stage boundary:

- ``on_train_epoch_start`` at epoch ``unfreeze_at``: make the frozen parameters trainable, let
  their BatchNorm layers train again, and scale every parameter group's base learning rate by
  ``unfreeze_lr_factor`` (the scheduler then follows its usual curve from there);
- ``on_train_epoch_end`` while frozen: copy the frozen layers from the live model into the EMA
  copy, which is what best.pt / last.pt store. The live frozen tensors never change, but the EMA
  update ``v = d*v + (1-d)*v`` is not exact in float arithmetic and can move them by an ulp.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


class ScheduleHooks:
    """Ultralytics callbacks: record what was frozen, keep frozen EMA exact, run stage 2."""

    def __init__(self, frozen: list[int], unfreeze_at: int | None, factor: float) -> None:
        self.frozen = list(frozen)
        self.unfreeze_at = unfreeze_at
        self.factor = factor
        self.unfrozen = False
        self.frozen_actual: list[int] | None = None
        self.device: str | None = None
        self.prefixes = tuple(f"model.{i}." for i in self.frozen)

    def attach(self, model: Any) -> None:
        model.add_callback("on_pretrain_routine_end", self.on_pretrain_routine_end)
        model.add_callback("on_train_epoch_start", self.on_train_epoch_start)
        model.add_callback("on_train_epoch_end", self.on_train_epoch_end)

    def on_pretrain_routine_end(self, trainer: Any) -> None:
        from ultralytics.utils.torch_utils import unwrap_model

        self.device = str(trainer.device)
        layers = unwrap_model(trainer.model).model
        self.frozen_actual = [
            i for i in self.frozen if i < len(layers) and all(not p.requires_grad for p in layers[i].parameters())
        ]

    def on_train_epoch_start(self, trainer: Any) -> None:
        if self.unfreeze_at is not None and not self.unfrozen and trainer.epoch >= self.unfreeze_at:
            self._unfreeze(trainer)

    def on_train_epoch_end(self, trainer: Any) -> None:
        if self.prefixes and not self.unfrozen and trainer.ema is not None:
            import torch
            from ultralytics.utils.torch_utils import unwrap_model

            live = unwrap_model(trainer.model).state_dict()
            with torch.no_grad():
                for key, value in trainer.ema.ema.state_dict().items():
                    if key.startswith(self.prefixes) and value.dtype.is_floating_point:
                        value.copy_(live[key])

    def _unfreeze(self, trainer: Any) -> None:
        from ultralytics.utils.torch_utils import unwrap_model

        for key, param in unwrap_model(trainer.model).named_parameters():
            if key.startswith(self.prefixes) and param.dtype.is_floating_point and ".dfl" not in key:
                param.requires_grad_(True)
        trainer.freeze_layer_names = [n for n in trainer.freeze_layer_names if n not in self.prefixes]
        # The scheduler was built fresh for this process (also on resume), so base_lrs are stage 1's.
        base = list(trainer.scheduler.base_lrs)
        trainer.scheduler.base_lrs = [b * self.factor for b in base]
        for group, b in zip(trainer.optimizer.param_groups, base):
            group["initial_lr"] = b * self.factor
        self.unfrozen = True
        log.info("stage 2 from epoch %d: all layers trainable, lr x %g", trainer.epoch + 1, self.factor)


def stages(frozen: list[int], epochs: int, unfreeze_at: int | None, factor: float) -> list[dict[str, Any]]:
    if unfreeze_at is None:
        return [{"epochs": [1, epochs], "frozen_layers": frozen, "lr_factor": 1.0}]
    return [
        {"epochs": [1, unfreeze_at], "frozen_layers": frozen, "lr_factor": 1.0},
        {"epochs": [unfreeze_at + 1, epochs], "frozen_layers": [], "lr_factor": factor},
    ]
