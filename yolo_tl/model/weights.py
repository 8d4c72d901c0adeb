"""Resolve ``--weights``: a local file, a name in Ultralytics' weights cache, or a download.

Offline-ness (``yolo_tl.network.offline``) is decided before Ultralytics is asked for anything:
with ``YOLO_OFFLINE`` set or no network reachable within a few seconds, a weights name that is not
cached gives one clear error that says where to put the file, instead of Ultralytics' retry loop.
A model ``.yaml`` trains from scratch (logged as a warning: that is not transfer learning).
Non-detection checkpoints are refused.

``resolve_detector`` / ``load_detector`` are for inference (evaluate, predict, analyze): they also take
a model made by ``yolo-tl export`` (``best.onnx``, ``best_openvino_model/``, ``best.torchscript``) and
read its task and class names from the metadata Ultralytics wrote into it. ``finetune`` refuses those.

A classic YOLOv5 checkpoint (from the ``ultralytics/yolov5`` repository) is recognised by the classes its
pickle names, read without running its code (``classic_yolov5.py``) and resolved to the matching
Ultralytics YOLOv5u architecture: finetune carries its backbone and neck (``convert.py``); inference and
export ask for a conversion or a fine-tune first, since its anchor-based head does not run here.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yolo_tl._upstream.ultralytics import asset_url, downloadable_weights, read_export_metadata
from yolo_tl.errors import WeightsError, first_line
from yolo_tl.network import offline

log = logging.getLogger(__name__)

CLASSIC = "classic-yolov5"


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
    kind: str = "ultralytics"  # "ultralytics" | "classic-yolov5" (carried into yolov5{scale}u on use)

    @property
    def from_scratch(self) -> bool:
        return self.source == "scratch"

    @property
    def classic(self) -> bool:
        return self.kind == CLASSIC

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "path": str(self.path),
            "source": self.source,
            "sha256": self.sha256,
            "task": self.task,
            "nc": self.nc,
            "kind": self.kind,
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
        raise WeightsError("empty weights name", field="weights", hint="e.g. yolov8n.pt")
    path = Path(text).expanduser()
    fmt = exported_format(path)
    if fmt is not None and path.exists():
        raise WeightsError(
            f"is an exported {fmt} model; finetune and export need the PyTorch checkpoint (.pt) it was exported from",
            path=path, field="weights", hint="pass best.pt, not the exported model")
    if path.suffix.lower() in (".yaml", ".yml"):
        return _resolve_yaml(text, path)
    if path.is_file():
        return _load_pt(text, path, "local")
    if path.exists():
        raise WeightsError("is not a file", path=path, field="weights")
    if path.suffix.lower() != ".pt":
        raise WeightsError(
            "not found (expected a .pt checkpoint or a model .yaml)", path=path, field="weights"
        )
    if len(path.parts) > 1 or path.name not in downloadable_weights():
        raise WeightsError(
            "file not found, and not a model name Ultralytics can download",
            path=path,
            field="weights",
            hint="pass the path of a .pt file, or a name like yolov8n.pt or yolo11n.pt",
        )
    cached = weights_cache_dir() / path.name
    if cached.is_file():
        return _load_pt(text, cached, "cache")
    url = asset_url(path.name)
    if offline():
        raise WeightsError(
            f"{path.name} is not in the Ultralytics weights cache and the network is unavailable",
            field="weights",
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
            f"download of {name} failed: {err}", field="weights", hint=f"download {url} to {cached}"
        ) from err
    if not got.is_file():
        raise WeightsError(f"download of {name} failed", field="weights", hint=f"download {url} to {cached}")
    return _load_pt(text, got, "download")


def _resolve_yaml(text: str, path: Path) -> ResolvedWeights:
    from ultralytics.nn.tasks import guess_model_task, yaml_model_load

    try:
        model_yaml = yaml_model_load(path)
    except Exception as err:  # noqa: BLE001
        raise WeightsError(
            f"not a model architecture yaml that Ultralytics knows ({err})", path=path, field="weights"
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

    from yolo_tl.model.classic_yolov5 import is_classic_yolov5

    if is_classic_yolov5(path):
        return _resolve_classic(text, path, source)

    try:
        model, _ = load_checkpoint(path)
    except Exception as err:  # noqa: BLE001
        raise WeightsError(f"not an Ultralytics checkpoint: {_why_unreadable(path, err)}", path=path,
                           field="weights") from None
    task = getattr(model, "task", None) or guess_model_task(model)
    _check_task(task, path)
    model_yaml = dict(getattr(model, "yaml", None) or {})
    names = getattr(model, "names", None)
    names = {int(k): str(v) for k, v in dict(names).items()} if names else None
    nc = model_yaml.get("nc") or (len(names) if names else None)
    return ResolvedWeights(text, path.resolve(), source, sha256_file(path), task, model_yaml, nc, names)


def _resolve_classic(text: str, path: Path, source: str) -> ResolvedWeights:
    from ultralytics.nn.tasks import yaml_model_load

    from yolo_tl.model.classic_yolov5 import read_classic_yolov5

    classic = read_classic_yolov5(path)
    model_yaml = yaml_model_load(classic.ultralytics_yaml)
    log.info("%s is a classic YOLOv5%s checkpoint (%s, %d classes): its backbone and neck go into %s",
             text, classic.scale, classic.model_class, classic.nc, classic.ultralytics_yaml)
    return ResolvedWeights(text, path.resolve(), source, sha256_file(path), "detect", model_yaml, classic.nc,
                           classic.names, CLASSIC)


def refuse_classic(resolved: ResolvedWeights, *, field: str = "WEIGHTS") -> None:
    """Predict / evaluate / export cannot run a classic checkpoint's anchor-based head: say what to do."""
    if resolved.classic:
        raise WeightsError(
            "is a classic YOLOv5 checkpoint (ultralytics/yolov5), whose anchor-based head does not run here: "
            "convert or fine-tune it first", path=resolved.path, field=field,
            hint=f"yolo-tl finetune data.yaml --weights {resolved.spec}, or yolo-tl weights convert "
                 f"{resolved.spec} new.pt --data data.yaml")


def _check_task(task: str | None, path: Path) -> None:
    if task != "detect":
        raise WeightsError(
            f"is a {task or 'unknown'}-task model; yolo-tl fine-tunes object detection models only",
            path=path,
            field="weights",
            hint="use a detection checkpoint such as yolov8n.pt or yolo11n.pt",
        )


def _why_unreadable(path: Path, err: Exception) -> str:
    """A short reason for a .pt that torch cannot load: truncated, not a torch file, or the error's first line."""
    import zipfile

    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == b"PK\x03\x04" and not zipfile.is_zipfile(path):
        return "the file is truncated or damaged (an incomplete torch zip archive)"
    if head != b"PK\x03\x04" and not head.startswith(b"\x80"):
        return "not a PyTorch file (no torch archive header)"
    first = first_line(err)
    return f"{type(err).__name__}: {first[:200]}"


# --- inference weights: a .pt checkpoint or a model made by `yolo-tl export` ---
EXPORT_SUFFIXES = {".onnx": "onnx", ".torchscript": "torchscript"}


def exported_format(path: Path) -> str | None:
    """``onnx`` / ``openvino`` / ``torchscript`` for an exported model's path, None for anything else."""
    path = Path(path)
    if path.name.endswith("_openvino_model") or (path.is_dir() and (path / "metadata.yaml").is_file()
                                                and any(path.glob("*.xml"))):
        return "openvino"
    if path.suffix.lower() == ".xml" and (path.parent / "metadata.yaml").is_file():
        return "openvino"
    return EXPORT_SUFFIXES.get(path.suffix.lower())


@dataclass(frozen=True)
class DetectorWeights:
    """A detection model ready for inference: where it is, its format, and the classes it predicts."""

    path: Path
    format: str  # "pt" | "onnx" | "openvino" | "torchscript"
    names: dict[int, str]
    sha256: str
    imgsz: tuple[int, int] | None = None  # input size of a fixed-size export; None for .pt or --dynamic
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def exported(self) -> bool:
        return self.format != "pt"


def resolve_detector(spec: str | Path, *, field: str = "WEIGHTS") -> DetectorWeights:
    """A trained detection model for evaluate / predict / analyze: a .pt or an exported model."""
    path = Path(str(spec).strip()).expanduser()
    fmt = exported_format(path)
    if fmt is None:
        resolved = resolve_weights(spec)
        refuse_classic(resolved, field=field)
        if resolved.from_scratch:
            raise WeightsError("needs trained weights (.pt or an exported model), not a model .yaml",
                               path=path, field=field)
        names = resolved.names or {i: str(i) for i in range(resolved.nc or 0)}
        return DetectorWeights(resolved.path, "pt", names, resolved.sha256 or "")
    if not path.exists():
        raise WeightsError(f"exported {fmt} model not found", path=path, field=field)
    if fmt == "openvino" and path.suffix.lower() == ".xml":
        path = path.parent
    meta = read_export_metadata(path)
    if not meta:
        raise WeightsError(f"no Ultralytics metadata (task, class names) in this {fmt} model: truncated, or "
                           "not exported by Ultralytics", path=path, field=field, hint="export it with yolo-tl export")
    task = meta.get("task")
    _check_task(task, path)
    names = _literal(meta.get("names"))
    imgsz = _literal(meta.get("imgsz"))
    dynamic = str((_literal(meta.get("args")) or {}).get("dynamic", False)).lower() == "true"
    if not isinstance(names, dict):
        raise WeightsError("its metadata has no class names", path=path, field=field)
    return DetectorWeights(path.resolve(), fmt, {int(k): str(v) for k, v in names.items()}, artifact_sha256(path),
                           None if dynamic or not imgsz else (int(imgsz[0]), int(imgsz[1])), dict(meta))


def load_detector(spec: str | Path, *, field: str = "WEIGHTS") -> tuple[Any, DetectorWeights]:
    """(Ultralytics YOLO model, DetectorWeights); an exported model is opened in its own runtime first.

    Ultralytics opens an exported model only at the first prediction, where a damaged file becomes a
    traceback; opening it here turns that into one line naming the file.
    """
    weights = resolve_detector(spec, field=field)
    if weights.exported:
        from yolo_tl.model.runtime import check_runtime

        check_runtime(weights.format, purpose="run")
        try:
            _open_in_runtime(weights)
        except Exception as err:  # noqa: BLE001  (each runtime raises its own kinds)
            first = first_line(err)
            raise WeightsError(f"the {weights.format} runtime cannot open it: {first[:200]}", path=weights.path,
                               field=field) from None
    from ultralytics import YOLO

    return YOLO(str(weights.path), task="detect"), weights


def _open_in_runtime(weights: DetectorWeights) -> None:
    if weights.format == "onnx":
        import onnxruntime

        onnxruntime.InferenceSession(str(weights.path), providers=["CPUExecutionProvider"])
    elif weights.format == "openvino":
        import openvino

        xml = next(weights.path.glob("*.xml"), None)
        if xml is None:
            raise FileNotFoundError("no .xml model in the folder")
        openvino.Core().read_model(str(xml))
    elif weights.format == "torchscript":
        import torch

        torch.jit.load(str(weights.path), map_location="cpu")


def artifact_sha256(path: Path) -> str:
    """sha256 of a model file; for a folder (OpenVINO), of its files' names and contents in order."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(f.relative_to(path)).encode() + b"\0" + bytes.fromhex(sha256_file(f)))
    return digest.hexdigest()


def _literal(value: Any) -> Any:
    import ast

    if isinstance(value, str):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    return value

