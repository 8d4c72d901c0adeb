"""Read a classic YOLOv5 checkpoint (the ``ultralytics/yolov5`` repository's ``.pt``) without running its code.

Such a file pickles classes of the yolov5 repository (``models.yolo.Model``, ``models.common.C3``, ...), so
``torch.load`` needs that repository on ``sys.path`` and would run whatever the pickle names. Here a restricted
unpickler (passed to ``torch.load`` as its ``pickle_module``) hands back only torch's tensor-rebuild
functions, ``collections.OrderedDict`` and a few plain builtins; every other class or function the file names
becomes a :class:`Placeholder` that records its module and name and keeps the state the pickle gives it.
Nothing from the file is called. From the placeholders we take the module tree's tensors (a state_dict by
name), the model yaml, the class names, and from those the scale (n/s/m/l/x) and P5/P6.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yolo_tl._upstream.torch import TENSOR_REBUILD, tensor_rebuild
from yolo_tl.errors import WeightsError

# (depth_multiple, width_multiple) of the official scales, the same in yolov5 and Ultralytics' yolov5u
SCALES = {(0.33, 0.25): "n", (0.33, 0.5): "s", (0.67, 0.75): "m", (1.0, 1.0): "l", (1.33, 1.25): "x"}
WIDTH_OF_STEM = {16: "n", 32: "s", 48: "m", 64: "l", 80: "x"}  # out channels of model.0.conv -> scale
CLASSIC_MODULES = ("models.yolo", "models.common", "models.experimental", "utils.general")
_DTYPES = {"float16", "float32", "float64", "bfloat16", "half", "float", "double", "int8", "int16", "int32", "int64",
           "uint8", "bool", "long", "int", "short", "complex64", "complex128"}
_BUILTINS = {"set": set, "frozenset": frozenset, "list": list, "dict": dict, "tuple": tuple, "slice": slice,
             "complex": complex, "bytearray": bytearray, "int": int, "float": float, "bool": bool, "str": str}


class Placeholder:
    """Stands in for a class or function named by the file: records what it was given, runs nothing."""

    module = ""
    qualname = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> Placeholder:
        obj = object.__new__(cls)
        obj.__dict__["_args"] = args
        obj.__dict__["_items"] = []
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and all(s is None or isinstance(s, dict) for s in state):
            for part in state:
                self.__dict__.update(part or {})
        elif isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["_state"] = state

    def append(self, item: Any) -> None:
        self.__dict__["_items"].append(item)

    def extend(self, items: Any) -> None:
        self.__dict__["_items"].extend(items)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.__dict__.setdefault("_mapping", {})[key] = value

    @property
    def kind(self) -> str:
        return f"{self.module}.{self.qualname}"

    def __repr__(self) -> str:
        return f"<placeholder {self.kind}>"


_PLACEHOLDERS: dict[tuple[str, str], type] = {}


def placeholder_class(module: str, name: str) -> type:
    """One Placeholder subclass per (module, name), so the tree keeps what each object was."""
    key = (str(module), str(name))
    if key not in _PLACEHOLDERS:
        short = "".join(c if c.isalnum() or c == "_" else "_" for c in key[1]) or "Unknown"
        _PLACEHOLDERS[key] = type(short, (Placeholder,), {"module": key[0], "qualname": key[1]})
    return _PLACEHOLDERS[key]


def _safe_reconstructor(cls: Any, base: Any, state: Any = None) -> Any:
    """copyreg._reconstructor for protocol 0/1 pickles: builds placeholders only."""
    obj = cls.__new__(cls) if isinstance(cls, type) and issubclass(cls, Placeholder) else \
        placeholder_class("copyreg", "_reconstructor")(cls, base, state)
    return obj


class Unpickler(pickle.Unpickler):
    """``find_class`` that returns only tensor-rebuild functions, OrderedDict, plain builtins and placeholders."""

    def find_class(self, module: str, name: str) -> Any:
        import torch

        if module == "torch._utils" and name in TENSOR_REBUILD:
            return tensor_rebuild(name)
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module in ("builtins", "__builtin__") and name in _BUILTINS:
            return _BUILTINS[name]
        if module in ("copyreg", "copy_reg") and name == "_reconstructor":
            return _safe_reconstructor
        if module == "torch" and name == "Size":
            return torch.Size
        if module == "torch" and name in _DTYPES:
            return getattr(torch, name)
        return placeholder_class(module, name)


def load(file: Any, **kwargs: Any) -> Any:
    """``pickle.load`` with the restricted Unpickler (torch's legacy, non-zip format calls this)."""
    return Unpickler(file, **kwargs).load()


def loads(data: bytes, **kwargs: Any) -> Any:
    return Unpickler(io.BytesIO(data), **kwargs).load()


def read_restricted(path: str | Path) -> Any:
    """The checkpoint's top object, tensors real and every other class a Placeholder. Raises WeightsError."""
    import sys

    import torch

    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=sys.modules[__name__])
    except Exception as err:  # noqa: BLE001  (torch raises many kinds for a damaged file)
        raise WeightsError(f"cannot be read as a torch checkpoint: {_why(path, err)}", path=path,
                           field="weights") from None


def _why(path: Path, err: Exception) -> str:
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == b"PK\x03\x04" and not zipfile.is_zipfile(path):
        return "the file is truncated or damaged (an incomplete torch zip archive)"
    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return f"{type(err).__name__}: {first[:160]}"


def is_classic_yolov5(path: str | Path) -> bool:
    """True when the file's pickle names yolov5-repository classes (``models.yolo`` ...). Reads opcodes only."""
    path = Path(path)
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as zf:
            pkl = next((n for n in zf.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
            if pkl is None:
                return False
            data = zf.read(pkl)
        return any(mod.split(".")[0] == "models" for mod, _ in _globals(data))
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return False


def _globals(data: bytes) -> list[tuple[str, str]]:
    """(module, name) of every GLOBAL / STACK_GLOBAL in a pickle, without running it."""
    out: list[tuple[str, str]] = []
    strings: list[str] = []
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL":
            mod, _, name = str(arg).partition(" ")
            out.append((mod, name))
        elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
            strings.append(str(arg))
        elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
            out.append((strings[-2], strings[-1]))
    return out


@dataclass
class ClassicCheckpoint:
    """What a classic YOLOv5 checkpoint holds, as plain data: tensors by name, yaml, names, scale."""

    path: Path
    state_dict: dict[str, Any] = field(repr=False)  # "model.{i}.{...}" -> tensor, in module order
    layer_types: list[str]  # class name of model.{i}, e.g. Conv, C3, SPPF, Upsample, Concat, Detect
    yaml: dict[str, Any] = field(repr=False)
    names: dict[int, str]
    nc: int
    scale: str  # n / s / m / l / x
    p6: bool
    head_index: int  # index of the Detect layer (24 for P5, 33 for P6)
    source: str  # "ema" or "model": which object of the checkpoint the tensors come from
    model_class: str

    @property
    def ultralytics_yaml(self) -> str:
        return f"yolov5{self.scale}-p6u.yaml" if self.p6 else f"yolov5{self.scale}u.yaml"

    def carried_keys(self) -> list[str]:
        """The backbone + neck tensors: every ``model.{i}.`` key with i < the Detect index."""
        return [k for k in self.state_dict if _layer_of(k) < self.head_index]


def read_classic_yolov5(path: str | Path) -> ClassicCheckpoint:
    """Read and check a classic YOLOv5 detection checkpoint; one WeightsError line for what cannot be used."""
    path = Path(path)
    top = read_restricted(path)
    if not isinstance(top, dict):
        raise WeightsError("not a YOLOv5 training checkpoint (expected a dict with 'model')", path=path,
                           field="weights")
    source = "ema" if isinstance(top.get("ema"), Placeholder) else "model"
    model = top.get(source)
    if not isinstance(model, Placeholder) or not model.module.startswith("models."):
        raise WeightsError("not a classic YOLOv5 checkpoint: its 'model' is not a yolov5 model", path=path,
                           field="weights")
    layers = _children(_children(model).get("model"))
    if not layers:
        raise WeightsError(f"{model.kind} has no 'model' layer list", path=path, field="weights")
    head_index = len(layers) - 1
    head = layers[str(head_index)]
    layer_types = [_type_name(layers[str(i)]) for i in range(len(layers))]
    if not isinstance(head, Placeholder) or head.qualname != "Detect":
        what = head.qualname if isinstance(head, Placeholder) else type(head).__name__
        task = "a segmentation checkpoint" if what == "Segment" else "not a detection checkpoint"
        raise WeightsError(f"{task}: layer {head_index} (the head) is {what}, not Detect; only YOLOv5 "
                           "detection checkpoints can be converted", path=path, field="weights")
    state = _state_dict(model)
    yaml = _plain(model.__dict__.get("yaml")) or {}
    names = _names(model.__dict__.get("names"), head)
    nc = int(yaml.get("nc") or head.__dict__.get("nc") or len(names))
    scale = _scale(yaml, state, path)
    p6 = len(_plain(head.__dict__.get("f")) or yaml.get("anchors") or [0, 0, 0]) == 4 or head_index == 33
    return ClassicCheckpoint(path.resolve(), state, layer_types, yaml, names, nc, scale, p6, head_index, source,
                             model.kind)


def _children(module: Any) -> dict[str, Any]:
    if not isinstance(module, Placeholder):
        return {}
    mods = module.__dict__.get("_modules")
    return dict(mods) if isinstance(mods, dict) else {}


def _type_name(module: Any) -> str:
    return module.qualname if isinstance(module, Placeholder) else type(module).__name__


def _state_dict(module: Any, prefix: str = "") -> dict[str, Any]:
    """nn.Module.state_dict() of a placeholder tree: parameters, then persistent buffers, then children."""
    import torch

    out: dict[str, Any] = {}
    d = module.__dict__
    skip = d.get("_non_persistent_buffers_set") or set()
    for kind in ("_parameters", "_buffers"):
        for name, tensor in (d.get(kind) or {}).items():
            if isinstance(tensor, torch.Tensor) and name not in skip:
                out[prefix + name] = tensor.detach()
    for name, child in _children(module).items():
        if isinstance(child, Placeholder):
            out.update(_state_dict(child, f"{prefix}{name}."))
    return out


def _layer_of(key: str) -> int:
    parts = key.split(".")
    return int(parts[1]) if len(parts) > 2 and parts[0] == "model" and parts[1].isdigit() else 1 << 30


def _plain(value: Any) -> Any:
    """Placeholders dropped from nested plain data (dict / list / tuple / scalars)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if not isinstance(v, Placeholder)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value if not isinstance(v, Placeholder)]
    return None if isinstance(value, Placeholder) else value


def _names(value: Any, head: Placeholder) -> dict[int, str]:
    value = _plain(value)
    if isinstance(value, dict):
        return {int(k): str(v) for k, v in value.items()}
    if isinstance(value, list):
        return dict(enumerate(str(v) for v in value))
    nc = int(head.__dict__.get("nc") or 0)
    return {i: f"class{i}" for i in range(nc)}


def _scale(yaml: dict[str, Any], state: dict[str, Any], path: Path) -> str:
    if "depth_multiple" in yaml and "width_multiple" in yaml:
        key = (round(float(yaml["depth_multiple"]), 2), round(float(yaml["width_multiple"]), 2))
        if key not in SCALES:
            raise WeightsError(f"custom architecture: depth_multiple {key[0]} / width_multiple {key[1]} match no "
                               "YOLOv5 scale (n, s, m, l, x)", path=path, field="weights")
        return SCALES[key]
    stem = state.get("model.0.conv.weight")
    scale = WIDTH_OF_STEM.get(int(stem.shape[0])) if stem is not None else None
    if scale is None:
        raise WeightsError("custom architecture: no yaml in the checkpoint and layer 0 (model.0.conv.weight) "
                           "matches no YOLOv5 scale", path=path, field="weights")
    return scale


__all__ = ["ClassicCheckpoint", "Placeholder", "Unpickler", "is_classic_yolov5", "load", "loads",
           "read_classic_yolov5", "read_restricted"]
