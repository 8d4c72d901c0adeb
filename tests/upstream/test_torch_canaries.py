"""Canaries for yolo_tl/_upstream/torch.py: each fails, naming the torch name, when torch moves it."""

from __future__ import annotations

import io

import torch

from yolo_tl._upstream.torch import TENSOR_REBUILD, tensor_rebuild


def test_the_tensor_rebuild_functions_still_exist():
    import torch._utils

    missing = [n for n in ("_rebuild_tensor_v2", "_rebuild_parameter") if not hasattr(torch._utils, n)]
    assert not missing, f"torch._utils lost {missing}: the restricted checkpoint reader cannot rebuild tensors"
    for name in TENSOR_REBUILD:
        if hasattr(torch._utils, name):
            assert tensor_rebuild(name) is getattr(torch._utils, name)


def test_a_saved_tensor_pickles_through_the_rebuild_functions_only():
    """What torch.save writes names only torch._utils rebuild functions (plus storages, OrderedDict)."""
    import pickletools
    import zipfile

    buf = io.BytesIO()
    torch.save({"w": torch.arange(6, dtype=torch.float16).reshape(2, 3), "p": torch.nn.Parameter(torch.ones(2))}, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        pkl = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    globals_used = set()
    ops = list(pickletools.genops(pkl))
    strings = [arg for op, arg, _ in ops if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE")]
    for op, arg, _ in ops:
        if op.name == "GLOBAL":
            globals_used.add(tuple(arg.split(" ")))
    for i, s in enumerate(strings[:-1]):
        if s == "torch._utils":
            globals_used.add(("torch._utils", strings[i + 1]))
    rebuilds = {name for mod, name in globals_used if mod == "torch._utils"}
    assert rebuilds and rebuilds <= TENSOR_REBUILD, f"torch.save now uses torch._utils.{rebuilds - TENSOR_REBUILD}"


def test_tensor_rebuild_refuses_other_names():
    import pytest

    with pytest.raises(KeyError):
        tensor_rebuild("_load_from_bytes")
