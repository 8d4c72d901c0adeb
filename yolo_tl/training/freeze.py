"""Which layers to freeze: parse ``--freeze`` and resolve it against a model's own architecture.

``backbone`` is not looked up in a table of model names: it is the length of the ``backbone:``
section of the model's architecture yaml (``model.yaml["backbone"]``), which is 10 for YOLOv8 and
11 for YOLO11, and whatever it is for a custom yaml. Ultralytics then freezes the resolved indices
through its own ``freeze=[...]`` train argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from yolo_tl.errors import TrainingError


@dataclass(frozen=True)
class FreezeSpec:
    """A parsed ``--freeze`` value: ``none``, ``backbone``, a count N (layers 0..N-1) or a list."""

    kind: str
    count: int = 0
    indices: tuple[int, ...] = ()

    @classmethod
    def parse(cls, value: str | int | list[int] | tuple[int, ...] | None | FreezeSpec) -> FreezeSpec:
        """Parse ``"backbone"``, ``"none"``, ``"10"``, ``"0,1,2"``, an int, a list or ``None``."""
        if isinstance(value, FreezeSpec):
            return value
        if value is None:
            return cls("none")
        if isinstance(value, bool):
            raise TrainingError(f"expected backbone, none, N or a list, got {value!r}", field="freeze")
        if isinstance(value, int):
            return cls._count(value)
        if isinstance(value, (list, tuple)):
            return cls._list([_as_index(v) for v in value])
        text = str(value).strip().lower()
        if text in ("none", "", "0", "false", "no"):
            return cls("none")
        if text == "backbone":
            return cls("backbone")
        if "," in text or text.startswith("["):
            parts = [p for p in text.strip("[]").replace(" ", "").split(",") if p]
            return cls._list([_as_index(p) for p in parts])
        return cls._count(_as_index(text))

    @classmethod
    def _count(cls, n: int) -> FreezeSpec:
        if n < 0:
            raise TrainingError(f"layer count must be >= 0, got {n}", field="freeze")
        return cls("none") if n == 0 else cls("count", count=n)

    @classmethod
    def _list(cls, indices: list[int]) -> FreezeSpec:
        if not indices:
            return cls("none")
        return cls("list", indices=tuple(sorted(set(indices))))

    def resolve(self, model_yaml: Mapping[str, Any]) -> list[int]:
        """Layer indices to freeze for the model described by ``model_yaml`` (its architecture)."""
        n_backbone, n_layers = architecture_lengths(model_yaml)
        if self.kind == "none":
            return []
        if self.kind == "backbone":
            wanted = list(range(n_backbone))
        elif self.kind == "count":
            wanted = list(range(self.count))
        else:
            wanted = list(self.indices)
        too_big = [i for i in wanted if i >= n_layers]
        if too_big:
            raise TrainingError(
                f"layer {too_big[0]} does not exist: the model has {n_layers} layers (0..{n_layers - 1})",
                field="freeze",
            )
        if len(wanted) >= n_layers:
            raise TrainingError(
                f"freezing all {n_layers} layers leaves nothing to train",
                field="freeze",
                hint=f"use backbone ({n_backbone} layers) or a smaller N",
            )
        return wanted

    def __str__(self) -> str:
        if self.kind == "count":
            return str(self.count)
        if self.kind == "list":
            return ",".join(str(i) for i in self.indices)
        return self.kind


AUTO = "auto"  # the default --freeze: backbone for trained weights, none for an architecture .yaml


def freeze_for_weights(freeze: str | int | list[int] | tuple[int, ...] | None | FreezeSpec, *,
                       from_scratch: bool, weights: str) -> FreezeSpec:
    """The freeze to train with. ``auto`` (the default) is ``backbone`` for trained weights and
    ``none`` for random ones (a model .yaml); an explicit freeze on random weights is refused:
    frozen random layers never learn, so such a run could only be worse than not freezing."""
    if isinstance(freeze, str) and freeze.strip().lower() == AUTO:
        return FreezeSpec("none") if from_scratch else FreezeSpec("backbone")
    spec = FreezeSpec.parse(freeze)
    if from_scratch and spec.kind != "none":
        raise TrainingError(
            f"--freeze {spec} with {weights}: an architecture file has random weights, and frozen random "
            "layers never learn", field="freeze",
            hint="drop --freeze (the default for a .yaml is none), or start from trained .pt weights")
    return spec


def architecture_lengths(model_yaml: Mapping[str, Any] | None) -> tuple[int, int]:
    """(backbone length, total layer count) read from an Ultralytics architecture dict."""
    if not isinstance(model_yaml, Mapping) or not isinstance(model_yaml.get("backbone"), list):
        raise TrainingError(
            "the model's architecture has no 'backbone' section, so 'backbone' cannot be resolved",
            field="freeze",
            hint="pass a layer count or a list instead, e.g. --freeze 10",
        )
    backbone = model_yaml["backbone"]
    head = model_yaml.get("head") or []
    return len(backbone), len(backbone) + len(head)


def _as_index(value: Any) -> int:
    try:
        index = int(str(value).strip())
    except ValueError:
        raise TrainingError(
            f"expected backbone, none, N or a list like 0,1,2, got {value!r}", field="freeze"
        ) from None
    if index < 0:
        raise TrainingError(f"layer index must be >= 0, got {index}", field="freeze")
    return index


__all__ = ["AUTO", "FreezeSpec", "architecture_lengths", "freeze_for_weights"]
