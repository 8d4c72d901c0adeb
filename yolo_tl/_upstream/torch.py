"""torch's private names yolo-tl relies on: the tensor-rebuild functions of its pickle format.

A checkpoint pickle rebuilds each tensor by calling ``torch._utils._rebuild_tensor_v2`` (and kin).
The restricted reader of classic YOLOv5 checkpoints (``model/classic_yolov5.py``) lets exactly these
functions through and nothing else. Canary: tests/upstream/test_torch_canaries.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TENSOR_REBUILD = frozenset({"_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
                            "_rebuild_parameter_with_state"})


def tensor_rebuild(name: str) -> Callable[..., Any]:
    """``torch._utils.<name>`` for a name in TENSOR_REBUILD (KeyError for any other)."""
    if name not in TENSOR_REBUILD:
        raise KeyError(name)
    import torch._utils

    return getattr(torch._utils, name)
