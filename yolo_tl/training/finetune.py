"""finetune over Ultralytics: resolve weights and freezing, run one Ultralytics training, write run.json.

The freeze / unfreeze schedule is in ``schedule.py``; validation in ``evaluate.py``; inference in
``predict.py``.
"""


from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yolo_tl import __version__
from yolo_tl._upstream.ultralytics import checkpoint_train_args, offline_guards, resume_epoch
from yolo_tl.dataset.handoff import check_training_data, fingerprint, read_data_info
from yolo_tl.errors import TrainingError, first_line
from yolo_tl.files import write_text_atomic
from yolo_tl.model.device import check_device
from yolo_tl.model.metrics import DetectionMetrics
from yolo_tl.model.weights import resolve_weights
from yolo_tl.training.disk_guard import disk_full_guard
from yolo_tl.training.freeze import architecture_lengths, freeze_for_weights
from yolo_tl.training.lr_factors import format_lr_factors, parse_lr_factors, resolve_lr_factors
from yolo_tl.training.options import FinetuneOptions
from yolo_tl.training.schedule import ScheduleHooks, stages
from yolo_tl.training.ultralytics_defaults import transfer_defaults

log = logging.getLogger(__name__)
PathLike = str | Path


@dataclass
class FinetuneResult:
    run_dir: Path
    best: Path
    last: Path
    metrics: DetectionMetrics | None
    frozen_layers: list[int]
    run_json: Path
    record: dict[str, Any] = field(repr=False, default_factory=dict)


def finetune(
    data_yaml: PathLike | None = None,
    options: FinetuneOptions | None = None,
    *,
    callbacks: Mapping[str, Callable[[Any], None]] | None = None,
    **kwargs: Any,
) -> FinetuneResult:
    """Fine-tune a YOLO detector on ``data_yaml`` with frozen layers; write run.json beside best.pt.

    The options are a ``FinetuneOptions`` (see ``options.py`` for each one and its default) or its
    fields as keywords (``finetune(data, weights="yolov8n.pt", freeze="backbone", epochs=50)``);
    keywords win over ``options``, and ``data_yaml`` over ``options.data``. The main ones:
    ``freeze='auto'``: the backbone for trained weights, nothing for a model .yaml (random weights);
    ``unfreeze_at``: one epoch (two-stage) or several (gradual unfreezing, top layers first);
    ``lr_factors``: per-part learning-rate factors, ``"backbone=0.1,neck=0.5"`` or ``{"0-4": 0.05}``;
    ``keep_classes``: train on the data's classes plus the start model's, with its pseudo-labels at
    ``pseudo_conf`` (see ``keep_classes.py``); ``distill``: the start model is also the teacher of
    Ultralytics' ``distill_model``; ``extra`` passes further Ultralytics train arguments;
    ``on_error``: a bad label line stops before training (``fail``) or its image is left out and listed
    in run.json under ``label_check`` (``skip``).
    ``callbacks`` maps Ultralytics callback events to functions (for progress hooks and tests).
    """
    opts = (options or FinetuneOptions()).replace(**kwargs)
    if data_yaml is not None:
        opts = opts.replace(data=data_yaml)
    if opts.data is None:
        raise TrainingError("missing: give the data.yaml to train on", field="data")
    return _finetune(opts, callbacks)


def _finetune(opts: FinetuneOptions, callbacks: Mapping[str, Callable[[Any], None]] | None) -> FinetuneResult:
    weights, freeze, epochs, imgsz, batch = opts.weights, opts.freeze, opts.epochs, opts.imgsz, opts.batch
    unfreeze_lr_factor, keep_classes, distill = opts.unfreeze_lr_factor, opts.keep_classes, opts.distill
    t0 = time.time()
    info = read_data_info(opts.data)
    dev = check_device(opts.device)
    project_dir = Path(opts.project).expanduser().resolve()
    if opts.resume:
        return _resume(info, dev, project_dir, opts.name, opts.workers, callbacks, t0)

    if epochs < 1:
        raise TrainingError(f"must be >= 1, got {epochs}", field="epochs")
    source = resolve_weights(weights)
    if source.task != "detect":
        raise TrainingError("only detection models can be fine-tuned", field="weights")
    spec = freeze_for_weights(freeze, from_scratch=source.from_scratch, weights=str(weights))
    frozen = spec.resolve(source.model_yaml)
    steps = _check_unfreeze(parse_unfreeze_at(opts.unfreeze_at), frozen, epochs, unfreeze_lr_factor, dev)
    factor_entries = parse_lr_factors(opts.lr_factors)
    layer_factors = resolve_lr_factors(factor_entries, source.model_yaml)
    if layer_factors and dev and "," in dev:
        raise TrainingError("learning-rate factors run on one device; multi-GPU DDP is not supported",
                            field="lr_factors")

    if distill and not keep_classes:
        raise TrainingError("needs keep_classes (the start model is the teacher)", field="distill")
    if keep_classes and dev and "," in dev:
        raise TrainingError("runs on one device: its best.pt rule is an in-process callback, which "
                            "Ultralytics' DDP subprocesses do not carry", field="keep_classes")
    if (keep_classes or distill) and source.classic:
        raise TrainingError("needs the start model's own head, and a classic YOLOv5 checkpoint's anchor-based head "
                            "is not carried", field="keep_classes",
                            hint="fine-tune from it first, then keep_classes from that run's best.pt")
    if (keep_classes or distill) and source.from_scratch:
        raise TrainingError("needs trained start weights (.pt), not a model .yaml", field="keep_classes")

    from ultralytics.utils.files import increment_path

    run_dir = Path(increment_path(project_dir / (opts.name or "train"), exist_ok=False, mkdir=False))
    checked = check_training_data(info, on_error=opts.on_error, workdir=run_dir)  # every label line, once
    n_backbone, n_layers = architecture_lengths(source.model_yaml)
    resolved = opts.replace(  # what this run did: run.json records these
        data=str(info.path), freeze=str(spec), device=dev or "auto", project=str(project_dir), name=run_dir.name,
        unfreeze_at=tuple(steps) or None, lr_factors=format_lr_factors(factor_entries) or None)
    record: dict[str, Any] = {
        "status": "running",
        "options": resolved.to_dict(),
        "frozen_layers": frozen,
        "backbone_layers": n_backbone,
        "model_layers": n_layers,
        "stages": stages(frozen, epochs, steps, unfreeze_lr_factor),
        "lr_factors": {str(i): f for i, f in layer_factors.items()},
        "weights": source.to_dict(),
        "data": fingerprint(info),
        "label_check": checked.record,
        "versions": _versions(),
        "wall_time_s": 0.0,
        "sessions": 0,
    }
    train_data = checked.data_yaml  # the user's data.yaml, or a resolved copy without skipped images
    if keep_classes:
        from yolo_tl.training.keep_classes import build_keep_classes_data

        base = info if checked.data_yaml == info.path else read_data_info(checked.data_yaml)
        train_data, record["keep_classes"] = build_keep_classes_data(
            base, source.path, source.names or {}, run_dir / "keep_classes_data", conf=opts.pseudo_conf,
            imgsz=imgsz, batch=batch, device=dev)
    args: dict[str, Any] = {
        "data": str(train_data), "epochs": epochs, "imgsz": imgsz, "batch": batch, "seed": opts.seed,
        "patience": opts.patience, "workers": opts.workers, "project": str(project_dir), "name": run_dir.name,
        "exist_ok": True,
        "freeze": frozen or None,
    }
    if dev is not None:
        args["device"] = dev
    if distill:
        args["distill_model"] = str(source.path)
    defaults = {k: v for k, v in transfer_defaults(batch).items() if k not in opts.extra}
    record["ultralytics_defaults_changed"] = defaults  # yolo-tl's, where they differ from Ultralytics'
    args.update(defaults)
    args.update(opts.extra)

    start = _carry_classic(source, info, run_dir, opts.seed, record) if source.classic else source.path
    from ultralytics import YOLO

    model = YOLO(str(start), task="detect")
    labelled = list(range(info.nc)) if keep_classes else None  # the data's own classes come first
    hooks = ScheduleHooks(frozen, steps, unfreeze_lr_factor, layer_factors, fitness_classes=labelled)
    return _run(model, args, hooks, record, run_dir, callbacks, t0)


def _carry_classic(source: Any, info: Any, run_dir: Path, seed: int, record: dict[str, Any]) -> Path:
    """Backbone + neck of a classic YOLOv5 checkpoint into yolov5{scale}u with a new head for the data's
    classes, written as the run's start checkpoint (``start_converted.pt``, which a DDP worker reloads)."""
    from yolo_tl.model.classic_yolov5 import read_classic_yolov5
    from yolo_tl.model.convert import build_from_classic, write_ultralytics_checkpoint

    model, report = build_from_classic(read_classic_yolov5(source.path), names=dict(info.names_dict), seed=seed)
    with disk_full_guard(run_dir, fresh=True):
        run_dir.mkdir(parents=True, exist_ok=True)
        start = write_ultralytics_checkpoint(model, report, run_dir / "start_converted.pt")
    log.info("%s", report.summary)
    record["weights"]["conversion"] = {**report.to_dict(), "start_checkpoint": str(start)}
    return start


def parse_unfreeze_at(value: int | str | list[int] | None) -> list[int]:
    """``5``, ``"5,10"`` or ``[5, 10]`` -> ``[5, 10]``; ``None`` -> ``[]``."""
    if value is None:
        return []
    if isinstance(value, bool):
        raise TrainingError(f"expected epochs like 5 or 5,10, got {value!r}", field="unfreeze_at")
    items = [value] if isinstance(value, int) else value if isinstance(value, (list, tuple)) else \
        [p for p in str(value).replace(" ", "").split(",") if p]
    try:
        return [int(str(v)) for v in items]
    except ValueError:
        raise TrainingError(f"expected epochs like 5 or 5,10, got {value!r}", field="unfreeze_at") from None


def _check_unfreeze(steps: list[int], frozen: list[int], epochs: int, factor: float, dev: str | None) -> list[int]:
    if not steps:
        return []
    field_ = "unfreeze_at"
    if not frozen:
        raise TrainingError("needs frozen layers (freeze is none)", field=field_)
    for at in steps:
        if not 1 <= at < epochs:
            raise TrainingError(f"must be between 1 and epochs-1 ({epochs - 1}), got {at}", field=field_)
    if any(b <= a for a, b in zip(steps, steps[1:])):
        raise TrainingError(f"epochs must increase, got {','.join(map(str, steps))}", field=field_)
    if len(steps) > len(frozen):
        raise TrainingError(f"{len(steps)} steps for {len(frozen)} frozen layers", field=field_,
                            hint="give at most one epoch per frozen layer")
    if not factor > 0:
        raise TrainingError(f"must be > 0, got {factor}", field="unfreeze_lr_factor")
    if dev and "," in dev:
        raise TrainingError("the unfreeze schedule runs on one device; multi-GPU DDP is not supported", field=field_)
    return steps


def _resume(info: Any, dev: str | None, project_dir: Path, name: str | None, workers: int,
            callbacks: Mapping[str, Callable[[Any], None]] | None, t0: float) -> FinetuneResult:
    run_dir = _find_run(project_dir, name)
    last = run_dir / "weights" / "last.pt"
    from ultralytics.nn.tasks import load_checkpoint

    try:
        ckpt_model, ckpt = load_checkpoint(last)
    except Exception as err:  # noqa: BLE001
        raise TrainingError(f"cannot read checkpoint ({err})", path=last) from None
    start_epoch = resume_epoch(ckpt)
    if start_epoch is None:
        raise TrainingError("this run already finished; nothing to resume", path=last,
                            hint="start a new run without --resume")
    record_path = run_dir / "run.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    train_info = info
    derived = (record.get("keep_classes") or {}).get("data_yaml")
    if derived and Path(derived).is_file():  # --keep-classes trained on its derived dataset
        train_info = read_data_info(derived)
    head_nc = int((getattr(ckpt_model, "yaml", None) or {}).get("nc") or len(ckpt_model.names))
    if head_nc != train_info.nc:
        raise TrainingError(
            f"has {train_info.nc} classes but the checkpoint's head has {head_nc}",
            path=info.path, field="names", hint=f"resume {run_dir} with the data.yaml it was started with",
        )
    opts = record.get("options", {})
    train_args = checkpoint_train_args(ckpt)
    frozen = record.get("frozen_layers")
    if frozen is None:
        f = train_args.get("freeze")
        frozen = list(f) if isinstance(f, list) else list(range(f or 0))
    record.setdefault("options", {"data": str(info.path), "name": run_dir.name})
    record["status"] = "running"
    record["data"] = fingerprint(info)
    record["resumed_from_epoch"] = start_epoch
    args: dict[str, Any] = {"resume": True, "data": str(train_info.path), "workers": workers}
    if dev is not None:
        args["device"] = dev

    from ultralytics import YOLO

    model = YOLO(str(last), task="detect")
    factors = {int(i): float(f) for i, f in (record.get("lr_factors") or {}).items()}
    labelled = list(range(info.nc)) if derived else None
    hooks = ScheduleHooks(frozen, parse_unfreeze_at(opts.get("unfreeze_at")),
                          float(opts.get("unfreeze_lr_factor") or 0.1), factors, fitness_classes=labelled)
    return _run(model, args, hooks, record, run_dir, callbacks, t0)


def _run(model: Any, args: dict[str, Any], hooks: ScheduleHooks, record: dict[str, Any], run_dir: Path,
         callbacks: Mapping[str, Callable[[Any], None]] | None, t0: float) -> FinetuneResult:
    hooks.attach(model)
    for event, fn in (callbacks or {}).items():
        model.add_callback(event, fn)
    record_path = run_dir / "run.json"
    previous_wall = float(record.get("wall_time_s") or 0.0)
    record["sessions"] = int(record.get("sessions") or 0) + 1

    def save(status: str) -> None:
        record["status"] = status
        record["wall_time_s"] = round(previous_wall + time.time() - t0, 3)
        if hooks.device:
            record["device"] = hooks.device
        if hooks.frozen_actual is not None and "resumed_from_epoch" not in record:
            record["frozen_layers"] = hooks.frozen_actual
        _write_json(record_path, record)

    fresh = "resumed_from_epoch" not in record  # a full disk removes a new run's folder, never a resumed one
    with disk_full_guard(run_dir, fresh=fresh):
        run_dir.mkdir(parents=True, exist_ok=True)
        save("running")
    try:
        with offline_guards(), disk_full_guard(run_dir, fresh=fresh):
            results = model.train(**args)
    except KeyboardInterrupt:
        save("interrupted")
        raise
    except (RuntimeError, ValueError, FileNotFoundError, TypeError) as err:
        save("failed")
        first = first_line(err)
        raise TrainingError(f"Ultralytics training failed: {first}", path=run_dir) from err
    trainer = model.trainer
    metrics = DetectionMetrics.from_ultralytics(results) if results is not None else None
    best = Path(trainer.best)
    record["metrics"] = metrics.to_dict() if metrics else None
    record["best"] = str(best)
    record["last"] = str(trainer.last)
    record["epochs_completed"] = int(trainer.epoch) + 1
    save("finished")
    return FinetuneResult(run_dir=Path(trainer.save_dir), best=best, last=Path(trainer.last), metrics=metrics,
                          frozen_layers=list(record.get("frozen_layers") or []), run_json=record_path,
                          record=record)


def _find_run(project_dir: Path, name: str | None) -> Path:
    """The run to resume: always the one the user names, never a guess.

    Resuming loads a pickled checkpoint (torch.load), so yolo-tl only loads one from PROJECT/NAME
    given on the command line; without --name it lists the candidates instead of picking one.
    """
    if not name:
        runs = sorted(p.parent.parent.name for p in project_dir.glob("*/weights/last.pt"))
        found = f"runs with a last.pt: {', '.join(runs)}" if runs else "none found"
        raise TrainingError("--resume needs --name of the interrupted run", path=project_dir,
                            hint=found)
    run_dir = project_dir / name
    if not (run_dir / "weights" / "last.pt").is_file():
        raise TrainingError("no weights/last.pt to resume from", path=run_dir)
    return run_dir


def _versions() -> dict[str, str]:
    import torch
    import ultralytics

    return {"yolo_tl": __version__, "ultralytics": ultralytics.__version__, "torch": torch.__version__}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
