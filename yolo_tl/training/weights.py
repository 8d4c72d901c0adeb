"""Resolve ``--weights``: a local file, a name in Ultralytics' weights cache, or a download.

Offline-ness (``yolo_tl.network.offline``) is decided before Ultralytics is asked for anything:
with ``YOLO_OFFLINE`` set or no network reachable within a few seconds, a weights name that is not
cached gives one clear error that says where to put the file, instead of Ultralytics' retry loop.
A model ``.yaml`` trains from scratch (logged as a warning: that is not transfer learning).
Non-detection checkpoints are refused.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yolo_tl.errors import WeightsError
from yolo_tl.network import offline

log = logging.getLogger(__name__)

ASSETS_URL = "https://github.com/ultralytics/assets/releases/download"


@dataclass(frozen=True)
class ResolvedWeights:
    """Where the starting weights came from and what they are."""

    spec: str  # what the user asked for
    path: Path  # the local .pt or .yaml file
    source: str  # "local" | "cache" | "download" | "scratch"
    sha256: str | None
    task: str
    model_yaml: dict[str, Any] = field(repr=False)  # the architecture (backbone/head lists)
    nc: int | None = None  # classes in the checkpoint's head (None for a .yaml)
    names: dict[int, str] | None = None

    @property
    def from_scratch(self) -> bool:
        return self.source == "scratch"

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "path": str(self.path),
            "source": self.source,
            "sha256": self.sha256,
            "task": self.task,
            "nc": self.nc,
        }


def weights_cache_dir() -> Path:
    """Ultralytics' weights cache (``weights_dir`` in its settings)."""
    from ultralytics.utils import SETTINGS

    return Path(SETTINGS["weights_dir"])


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_weights(spec: str | Path) -> ResolvedWeights:
    """Find (or download) the weights named by ``spec`` and check that they are a detection model."""
    text = str(spec).strip()
    if not text:
        raise WeightsError("empty weights name", field="--weights", hint="e.g. yolov8n.pt")
    path = Path(text).expanduser()
    if path.suffix.lower() in (".yaml", ".yml"):
        return _resolve_yaml(text, path)
    if path.is_file():
        return _load_pt(text, path, "local")
    if path.exists():
        raise WeightsError("is not a file", path=path, field="--weights")
    if path.suffix.lower() != ".pt":
        raise WeightsError(
            "not found (expected a .pt checkpoint or a model .yaml)", path=path, field="--weights"
        )
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

    if len(path.parts) > 1 or path.name not in GITHUB_ASSETS_NAMES:
        raise WeightsError(
            "file not found, and not a model name Ultralytics can download",
            path=path,
            field="--weights",
            hint="pass the path of a .pt file, or a name like yolov8n.pt or yolo11n.pt",
        )
    cached = weights_cache_dir() / path.name
    if cached.is_file():
        return _load_pt(text, cached, "cache")
    url = f"{ASSETS_URL}/v8.4.0/{path.name}"
    if offline():
        raise WeightsError(
            f"{path.name} is not in the Ultralytics weights cache and the network is unavailable",
            field="--weights",
            hint=f"download {url} on a connected machine and put it at {cached}, "
            f"or pass --weights /path/to/{path.name}",
        )
    return _download(text, path.name, cached, url)


def _download(text: str, name: str, cached: Path, url: str) -> ResolvedWeights:
    from ultralytics.utils.downloads import attempt_download_asset

    cached.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s to %s", name, cached)
    try:
        got = Path(attempt_download_asset(cached))
    except Exception as err:
        raise WeightsError(
            f"download of {name} failed: {err}", field="--weights", hint=f"download {url} to {cached}"
        ) from err
    if not got.is_file():
        raise WeightsError(f"download of {name} failed", field="--weights", hint=f"download {url} to {cached}")
    return _load_pt(text, got, "download")


def _resolve_yaml(text: str, path: Path) -> ResolvedWeights:
    from ultralytics.nn.tasks import guess_model_task, yaml_model_load

    try:
        model_yaml = yaml_model_load(path)
    except Exception as err:  # noqa: BLE001
        raise WeightsError(
            f"not a model architecture yaml that Ultralytics knows ({err})", path=path, field="--weights"
        ) from None
    task = guess_model_task(model_yaml) or "detect"
    _check_task(task, path)
    log.warning(
        "%s is a model architecture: training from scratch, not transfer learning "
        "(pass a .pt checkpoint such as yolov8n.pt to fine-tune pretrained weights)",
        text,
    )
    local = Path(model_yaml.get("yaml_file", path))
    sha = sha256_file(path) if path.is_file() else None
    return ResolvedWeights(text, local, "scratch", sha, task, model_yaml, None, None)


def _load_pt(text: str, path: Path, source: str) -> ResolvedWeights:
    from ultralytics.nn.tasks import guess_model_task, load_checkpoint

    try:
        model, _ = load_checkpoint(path)
    except Exception as err:  # noqa: BLE001
        raise WeightsError(f"not an Ultralytics checkpoint ({err})", path=path, field="--weights") from None
    task = getattr(model, "task", None) or guess_model_task(model)
    _check_task(task, path)
    model_yaml = dict(getattr(model, "yaml", None) or {})
    names = getattr(model, "names", None)
    names = {int(k): str(v) for k, v in dict(names).items()} if names else None
    nc = model_yaml.get("nc") or (len(names) if names else None)
    return ResolvedWeights(text, path.resolve(), source, sha256_file(path), task, model_yaml, nc, names)


def _check_task(task: str | None, path: Path) -> None:
    if task != "detect":
        raise WeightsError(
            f"is a {task or 'unknown'}-task model; yolo-tl fine-tunes object detection models only",
            path=path,
            field="--weights",
            hint="use a detection checkpoint such as yolov8n.pt or yolo11n.pt",
        )
