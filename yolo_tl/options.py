"""Options as frozen dataclasses: each option once, with its default, the values it accepts and a help line.

``FinetuneOptions`` and ``AnalyzeOptions`` are built on this: the library, the CLI (its defaults and
``--help``), config files and the JSON records all read the one declaration. Values are checked and
normalised when an options object is made (Path -> str, a list -> tuple, an int where a number is
expected -> float), so a bad type is one ``YoloTLError`` naming the Python parameter.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping
from dataclasses import field, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from yolo_tl.errors import YoloTLError

PathLike = str | Path
T = TypeVar("T", bound="Options")


def option(default: Any, help: str, kinds: tuple[type, ...], *, nullable: bool = False, factory: Any = None) -> Any:
    """A dataclass field with its help line and the Python types it accepts (``nullable``: also None)."""
    meta = {"help": help, "kinds": kinds, "nullable": nullable}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


class Options:
    """Shared behaviour of the options dataclasses (subclasses are ``@dataclass(frozen=True)``)."""

    error: ClassVar[type[YoloTLError]] = YoloTLError  # what a bad value raises
    aliases: ClassVar[dict[str, str]] = {}  # config-file key -> option name (ultralytics -> extra)

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            object.__setattr__(self, f.name, check_value(f, getattr(self, f.name), self.error))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names, in declaration order."""
        return tuple(f.name for f in fields(cls))  # type: ignore[arg-type]

    @classmethod
    def help(cls, name: str) -> str:
        """The one-line help of option ``name`` (the CLI's ``--help`` text)."""
        return _field(cls, name).metadata["help"]

    @classmethod
    def default(cls, name: str) -> Any:
        """The default of option ``name``."""
        f = _field(cls, name)
        return f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]

    def replace(self: T, **changes: Any) -> T:
        """A copy with ``changes``; an unknown name is a TypeError, as for any Python call."""
        self._known(changes)
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (tuples as lists, mappings as dicts)."""
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls: type[T], values: Mapping[str, Any]) -> T:
        """Options from ``to_dict``'s form (as a JSON record keeps them)."""
        cls._known(values)
        return cls(**values)

    @classmethod
    def from_yaml(cls: type[T], path: PathLike, **overrides: Any) -> T:
        """Options from a YAML file of ``option: value`` (keys may use - or _), ``overrides`` winning.

        A mapping option given both ways is merged (the override's keys win). Relative paths stay
        relative to the working directory, as on the command line. An unknown key or a value of the
        wrong type is one error naming the file and the key.
        """
        path = Path(path).expanduser()
        values, keys = read_config(cls, path)
        for name, value in values.items():
            try:
                check_value(_field(cls, name), value, cls.error)
            except YoloTLError as err:
                raise cls.error(err.reason, path=path, field=keys[name]) from None
        cls._known(overrides)
        merged = {**values, **overrides}
        for name, value in overrides.items():
            if isinstance(value, Mapping) and isinstance(values.get(name), Mapping):
                merged[name] = {**values[name], **value}
        return cls(**merged)

    @classmethod
    def _known(cls, names: Mapping[str, Any]) -> None:
        unknown = sorted(set(names) - set(cls.names()))
        if unknown:
            raise TypeError(f"{cls.__name__}: unknown option {unknown[0]!r} (known: {', '.join(cls.names())})")


def read_config(cls: type[Options], path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """A config file's values by option name, and the key each came from; unknown keys refused."""
    import yaml

    if not path.is_file():
        raise cls.error("config file not found", path=path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise cls.error(f"not valid YAML ({first})", path=path) from None
    if not isinstance(data, dict):
        raise cls.error("expected a mapping of option: value", path=path)
    hidden = set(cls.aliases.values())  # known in the file by their alias only
    shown = [n for n in cls.names() if n not in hidden] + list(cls.aliases)
    values: dict[str, Any] = {}
    keys: dict[str, str] = {}
    for key, value in data.items():
        norm = str(key).replace("-", "_").lstrip("_")
        name = cls.aliases.get(norm, norm)
        if norm in hidden or name not in cls.names():
            raise cls.error(f"unknown option (known: {', '.join(shown)})", path=path, field=str(key))
        values[name], keys[name] = value, str(key)
    return values, keys


def _field(cls: type, name: str) -> dataclasses.Field:
    for f in fields(cls):
        if f.name == name:
            return f
    raise KeyError(name)


_KIND_WORDS = {str: "text", int: "an integer", float: "a number", bool: "true or false",
               tuple: "a list of integers", Mapping: "a mapping"}


def check_value(f: dataclasses.Field, value: Any, error: type[YoloTLError] = YoloTLError) -> Any:
    """``value`` in the field's normal form (Path -> str, list -> tuple, int -> float), or ``error``."""
    kinds: tuple[type, ...] = f.metadata["kinds"]
    if value is None and f.metadata["nullable"]:
        return None
    if isinstance(value, bool):
        if bool in kinds:
            return value
    elif isinstance(value, Path) and str in kinds:
        return str(value)
    elif float in kinds and isinstance(value, numbers.Real):  # numpy numbers too
        return float(value)
    elif int in kinds and isinstance(value, numbers.Integral):
        return int(value)
    elif str in kinds and isinstance(value, str):
        return value
    elif str in kinds and f.name == "device" and isinstance(value, int):  # YAML reads `device: 0` as a number
        return str(value)
    elif tuple in kinds and isinstance(value, (list, tuple)):
        if all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value):
            return tuple(int(v) for v in value)
    elif Mapping in kinds and isinstance(value, Mapping):
        if all(isinstance(k, str) for k in value):
            return dict(value)
    wanted = " or ".join(_KIND_WORDS[k] for k in kinds) + (" or null" if f.metadata["nullable"] else "")
    raise error(f"expected {wanted}, got {value!r}", field=f.name)
