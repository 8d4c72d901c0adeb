"""``--device``: auto, cpu, mps, 0 or 0,1,2,3, checked against the GPUs this machine has."""

from __future__ import annotations

from yolo_tl.errors import TrainingError


def check_device(device: str | int | None) -> str | None:
    """Normalise ``--device`` (auto, cpu, mps, 0, 0,1,...) and refuse GPUs this machine lacks."""
    if device is None:
        return None
    text = str(device).strip().lower().replace(" ", "")
    if text in ("", "auto", "none"):
        return None
    if text == "cpu":
        return "cpu"
    import torch

    if text == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise TrainingError("device mps requested but MPS is not available", field="device",
                                hint="use --device cpu")
        return "mps"
    parts = [p.replace("cuda:", "") for p in text.split(",") if p]
    parts = ["0" if p == "cuda" else p for p in parts]
    if not parts or not all(p.isdigit() for p in parts):
        raise TrainingError(f"unknown device {device!r}", field="device", hint="use auto, cpu, mps, 0 or 0,1,2,3")
    if not torch.cuda.is_available():
        raise TrainingError(
            f"CUDA device {device} requested but this machine has no usable CUDA GPU",
            field="device",
            hint="use --device cpu",
        )
    count = torch.cuda.device_count()
    missing = [p for p in parts if int(p) >= count]
    if missing:
        raise TrainingError(
            f"CUDA device {missing[0]} requested but only {count} GPU(s) are visible", field="device"
        )
    return ",".join(parts)
