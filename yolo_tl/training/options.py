"""Every finetune option once: its default, the values it accepts and a one-line help.

``finetune()``, ``yolo-tl finetune`` (its defaults and ``--help``), ``--config`` files and run.json all
read this one class, so an option is added in one place. ``from_yaml`` merges a config file with the
options the caller set explicitly (those win), the way ``--config`` works on the command line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Union

from yolo_tl.errors import TrainingError

PathLike = Union[str, Path]

# the YAML key of ``extra``: further Ultralytics train arguments
ULTRALYTICS_KEY = "ultralytics"


def _opt(default: Any, help: str, kinds: tuple[type, ...], nullable: bool = False) -> Any:
    return field(default=default, metadata={"help": help, "kinds": kinds, "nullable": nullable})


@dataclass(frozen=True)
class FinetuneOptions:
    """What ``finetune`` does, as plain values (run.json records them with ``to_dict``)."""

    data: str | None = _opt(None, "data.yaml of a YOLO dataset (from yolo-tl prepare).", (str,), True)
    weights: str = _opt("yolov8n.pt", "Start checkpoint: a .pt path, a name like yolo11n.pt (cache or download), "
                        "or a model .yaml (from scratch).", (str,))
    freeze: str | int | tuple[int, ...] | None = _opt(
        "auto", "Layers to freeze: backbone, none, N (layers 0..N-1) or a list 0,1,2. Default auto: backbone for "
        ".pt weights, none for a model .yaml (random weights; freezing them is refused).", (str, int, tuple), True)
    epochs: int = _opt(100, "Total epochs (both stages together).", (int,))
    imgsz: int = _opt(640, "Training image size.", (int,))
    batch: int = _opt(16, "Batch size (-1: Ultralytics AutoBatch on one GPU).", (int,))
    device: str | None = _opt(None, "auto, cpu, mps, 0, or 0,1,2,3 for multi-GPU DDP.", (str,), True)
    seed: int = _opt(0, "Random seed.", (int,))
    patience: int = _opt(100, "Early-stopping patience in epochs.", (int,))
    workers: int = _opt(8, "Dataloader workers.", (int,))
    project: str = _opt("runs", "Folder of the run directories.", (str,))
    name: str | None = _opt(None, "Run name (default train, train2, ...).", (str,), True)
    resume: bool = _opt(False, "Resume the interrupted run PROJECT/NAME (name is required).", (bool,))
    unfreeze_at: int | str | tuple[int, ...] | None = _opt(
        None, "Unfreeze after these epochs: 5 (two-stage: all at once) or 5,10 (gradual: frozen layers split "
        "into groups, top first).", (int, str, tuple), True)
    unfreeze_lr_factor: float = _opt(0.1, "Learning-rate factor from the first unfreeze step on.", (float,))
    lr_factors: str | Mapping[str, float] | None = _opt(
        None, "Per-part learning-rate factors: backbone=0.1,neck=0.5,head=1 or layer ranges 0-4=0.05 "
        "(later entries win).", (str, Mapping), True)
    keep_classes: bool = _opt(False, "Keep the start model's classes: train on the data's classes plus its, with "
                              "its pseudo-labels on the images (a derived dataset in the run folder).", (bool,))
    pseudo_conf: float = _opt(0.5, "keep_classes: confidence of the start model's boxes kept as pseudo-labels.",
                              (float,))
    distill: bool = _opt(False, "keep_classes: also distil from the start model (Ultralytics distill_model).",
                         (bool,))
    on_error: str = _opt("fail", "A bad label line: fail (stop, name file:line) or skip (train without that "
                         "image; listed in run.json).", (str,))
    extra: Mapping[str, Any] = field(default_factory=dict, metadata={
        "help": "Further Ultralytics train arguments (lr0, optimizer, plots, ...); 'ultralytics:' in a config file.",
        "kinds": (Mapping,), "nullable": False})

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _checked(f, getattr(self, f.name)))
        if self.on_error not in ("fail", "skip"):
            raise TrainingError(f"expected fail or skip, got {self.on_error!r}", field="on_error")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names, in declaration order."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def help(cls, name: str) -> str:
        """The one-line help of option ``name`` (the CLI's ``--help`` text)."""
        return next(f.metadata["help"] for f in fields(cls) if f.name == name)

    @classmethod
    def default(cls, name: str) -> Any:
        """The default of option ``name``."""
        f = next(f for f in fields(cls) if f.name == name)
        return f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]

    def replace(self, **changes: Any) -> FinetuneOptions:
        """A copy with ``changes``; an unknown name is a TypeError, as for any Python call."""
        _known(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (tuples as lists), the form run.json records."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else dict(value) if isinstance(
                value, Mapping) else value
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> FinetuneOptions:
        """Options from ``to_dict``'s form (run.json's ``options``)."""
        _known(values)
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: PathLike, **overrides: Any) -> FinetuneOptions:
        """Options from a YAML file of ``option: value`` (keys may use - or _), ``overrides`` winning.

        An ``ultralytics:`` mapping passes extra Ultralytics train arguments (an ``extra`` override is
        merged over it). Relative paths stay relative to the working directory, as on the command line.
        An unknown key or a value of the wrong type is one error naming the file and the key.
        """
        path = Path(path).expanduser()
        values = read_config(path)
        for key, value in values.items():
            f = next(f for f in fields(cls) if f.name == key)
            try:
                _checked(f, value)
            except TrainingError as err:
                raise TrainingError(err.reason, path=path, field=key if key != "extra" else ULTRALYTICS_KEY) from None
        _known(overrides)
        if "extra" in overrides and "extra" in values:
            overrides = {**overrides, "extra": {**values["extra"], **dict(overrides["extra"] or {})}}
        return cls(**{**values, **overrides})


def read_config(path: Path) -> dict[str, Any]:
    """A config file's keys as option names (``ultralytics`` -> ``extra``), unknown keys refused."""
    import yaml

    if not path.is_file():
        raise TrainingError("config file not found", path=path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise TrainingError(f"not valid YAML ({first})", path=path) from None
    if not isinstance(data, dict):
        raise TrainingError("expected a mapping of option: value", path=path)
    known = FinetuneOptions.names()
    out: dict[str, Any] = {}
    for key, value in data.items():
        norm = str(key).replace("-", "_").lstrip("_")
        if norm == ULTRALYTICS_KEY:
            norm = "extra"
        elif norm == "extra" or norm not in known:
            shown = [k for k in known if k != "extra"] + [ULTRALYTICS_KEY]
            raise TrainingError(f"unknown option (known: {', '.join(shown)})", path=path, field=str(key))
        out[norm] = value
    return out


def _known(names: Mapping[str, Any]) -> None:
    unknown = sorted(set(names) - set(FinetuneOptions.names()))
    if unknown:
        raise TypeError(f"unknown finetune option {unknown[0]!r} (known: {', '.join(FinetuneOptions.names())})")


_KIND_WORDS = {str: "text", int: "an integer", float: "a number", bool: "true or false",
               tuple: "a list of integers", Mapping: "a mapping"}


def _checked(f: dataclasses.Field, value: Any) -> Any:
    """``value`` in the field's normal form (Path -> str, list -> tuple, int -> float), or a TrainingError."""
    kinds: tuple[type, ...] = f.metadata["kinds"]
    if value is None and f.metadata["nullable"]:
        return None
    if isinstance(value, Path) and str in kinds:
        return str(value)
    if isinstance(value, bool):
        if bool in kinds:
            return value
    elif float in kinds and isinstance(value, (int, float)):
        return float(value)
    elif int in kinds and isinstance(value, int):
        return value
    elif str in kinds and isinstance(value, str):
        return value
    elif f.name == "device" and isinstance(value, int):  # YAML reads `device: 0` as a number
        return str(value)
    elif tuple in kinds and isinstance(value, (list, tuple)):
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return tuple(value)
    elif Mapping in kinds and isinstance(value, Mapping):
        if all(isinstance(k, str) for k in value):
            return dict(value)
    wanted = " or ".join(_KIND_WORDS[k] for k in kinds) + (" or null" if f.metadata["nullable"] else "")
    raise TrainingError(f"expected {wanted}, got {value!r}", field=f.name)
