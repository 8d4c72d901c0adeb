"""Every use of an Ultralytics private name and every patch of Ultralytics: the only place.

Each touch point has a canary in tests/upstream/test_ultralytics_canaries.py that fails, naming the
upstream name, when Ultralytics moves it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from yolo_tl.errors import WeightsError
from yolo_tl.network import offline

log = logging.getLogger(__name__)


@contextlib.contextmanager
def offline_guards() -> Iterator[None]:
    """Keep Ultralytics from reaching for the network when we are offline.

    - Fonts: ``check_font('Arial.ttf')`` would download the font; offline we hand it matplotlib's
      bundled DejaVuSans instead, so labels and plots are still drawn.
    - AMP check (CUDA only): it loads ``yolo26n.pt``, downloading it if missing; offline and not
      cached we skip the check and keep AMP on, which is what Ultralytics itself does when its
      download fails, minus the retries. On the CPU and MPS Ultralytics answers False (AMP off)
      before any download, so there it runs unchanged (this guard once answered True there too,
      which put every CPU training under bfloat16 autocast: ~10x slower, other numbers).
    Online, both fall through to Ultralytics unchanged.
    """
    import ultralytics.data.utils as data_utils
    import ultralytics.engine.trainer as trainer_mod
    from ultralytics.utils import checks, plotting

    original_font = checks.check_font
    original_amp = trainer_mod.check_amp

    def safe_check_font(font: str = "Arial.ttf") -> Any:
        from ultralytics.utils import USER_CONFIG_DIR

        local = USER_CONFIG_DIR / Path(font).name
        if local.exists() or not offline():
            return original_font(font)
        from matplotlib import font_manager

        return font_manager.findfont("DejaVu Sans", fallback_to_default=True)

    def safe_check_amp(model: Any) -> Any:
        from ultralytics.utils import WEIGHTS_DIR

        device = next(model.parameters()).device
        if device.type in {"cpu", "mps"}:  # Ultralytics answers False there before any download: AMP off
            return original_amp(model)
        if offline() and not (Path(WEIGHTS_DIR) / "yolo26n.pt").is_file():
            log.warning("AMP check skipped: offline and yolo26n.pt is not cached; AMP stays on")
            return True
        return original_amp(model)

    patches = [
        (checks, "check_font", safe_check_font),
        (data_utils, "check_font", safe_check_font),
        (plotting, "check_font", safe_check_font),
        (trainer_mod, "check_amp", safe_check_amp),
    ]
    saved = [(mod, name, getattr(mod, name)) for mod, name, _ in patches]
    try:
        for mod, name, value in patches:
            setattr(mod, name, value)
        yield
    finally:
        for mod, name, value in saved:
            setattr(mod, name, value)


@contextlib.contextmanager
def no_autoinstall(*, hint: str) -> Iterator[None]:
    """Within the block, Ultralytics installs nothing: an unmet requirement raises WeightsError(hint=hint).

    Touches ``ultralytics.utils.checks.check_requirements`` (imported by name into many Ultralytics
    modules, so every loaded module that holds the original gets the guard for the block) and the
    ``AUTOINSTALL`` flags of ``ultralytics.utils`` and ``ultralytics.utils.checks`` (read once, at import,
    from ``YOLO_AUTOINSTALL``).
    """
    import ultralytics.utils as ul_utils
    import ultralytics.utils.checks as checks

    original = checks.check_requirements

    def guarded(requirements: Any = (), exclude: Any = (), install: bool = True, cmds: str = "",
                constrain: Any = ()) -> bool:
        if original(requirements, exclude=exclude, install=False, cmds=cmds, constrain=constrain):
            return True
        if not install:  # a probe ("is X there?"), not a need: let the caller choose another path
            return False
        wanted = requirements if isinstance(requirements, (list, tuple)) else [requirements]
        names = ", ".join(str(r[0] if isinstance(r, (list, tuple)) else r) for r in wanted)
        raise WeightsError(f"Ultralytics needs {names}, which is not installed (yolo-tl never installs "
                           "packages at run time)", hint=hint)

    def holders(fn: Any) -> list[Any]:
        return [mod for name, mod in list(sys.modules.items())
                if name.startswith("ultralytics") and getattr(mod, "check_requirements", None) is fn]

    saved_env = os.environ.get("YOLO_AUTOINSTALL")
    saved_flags = (ul_utils.AUTOINSTALL, checks.AUTOINSTALL)
    os.environ["YOLO_AUTOINSTALL"] = "false"
    ul_utils.AUTOINSTALL = checks.AUTOINSTALL = False
    for mod in holders(original):  # checks itself too, so modules imported inside the block get the guard
        mod.check_requirements = guarded
    try:
        yield
    finally:
        for mod in holders(guarded):
            mod.check_requirements = original
        ul_utils.AUTOINSTALL, checks.AUTOINSTALL = saved_flags
        if saved_env is None:
            os.environ.pop("YOLO_AUTOINSTALL", None)
        else:
            os.environ["YOLO_AUTOINSTALL"] = saved_env


def pillow_open(path: Path) -> Any:
    """Pillow's own ``Image.open``, past the wrapper Ultralytics puts in its place.

    Importing Ultralytics replaces ``PIL.Image.open`` with ``ultralytics.utils.patches.image_open``, which,
    on any file Pillow cannot identify (a corrupt or empty image), runs ``check_requirements("pi-heif")``:
    a pip install when online, a ModuleNotFoundError offline. Reading a header must do neither; the
    original is kept there as the private ``_image_open``. Ultralytics is never imported here.
    """
    from PIL import Image

    opener = Image.open
    patched = sys.modules.get(getattr(opener, "__module__", "") or "")
    if patched is not None and patched.__name__.startswith("ultralytics"):
        opener = getattr(patched, "_image_open", opener)
    return opener(path)


# --- weights: names Ultralytics can download, export metadata, checkpoint fields ---
ASSETS_REPO = "ultralytics/assets"
ASSETS_RELEASE = "v8.4.0"  # attempt_download_asset's default release in Ultralytics 8.4


def downloadable_weights() -> frozenset[str]:
    """The weights file names Ultralytics downloads from its assets release (``downloads.GITHUB_ASSETS_NAMES``)."""
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

    return frozenset(GITHUB_ASSETS_NAMES)


def asset_url(name: str) -> str:
    """Where ``attempt_download_asset`` fetches ``name`` from (its default repo and release)."""
    return f"https://github.com/{ASSETS_REPO}/releases/download/{ASSETS_RELEASE}/{name}"


def read_export_metadata(path: Path) -> dict[str, Any]:
    """The metadata Ultralytics wrote into an exported model (task, names, imgsz, args), read without
    loading it (``ultralytics.nn.backends.base.BaseBackend.read_metadata``); ``{}`` when there is none."""
    from ultralytics.nn.backends.base import BaseBackend

    return dict(BaseBackend.read_metadata(path) or {})


def resume_epoch(ckpt: Mapping[str, Any]) -> int | None:
    """The epoch a checkpoint saved during training resumes at; None for a finished one.

    ``BaseTrainer.save_model`` stores ``epoch`` and ``optimizer``; ``strip_optimizer`` (run on the final
    checkpoints) sets ``optimizer`` to None and ``epoch`` to -1.
    """
    if ckpt.get("optimizer") is None or int(ckpt.get("epoch", -1)) < 0:
        return None
    return int(ckpt["epoch"]) + 1


def checkpoint_train_args(ckpt: Mapping[str, Any]) -> dict[str, Any]:
    """The train arguments a checkpoint was saved with (``train_args``, ``vars(trainer.args)``)."""
    return dict(ckpt.get("train_args") or {})


def prediction_matcher() -> Callable[[Any, Any, Any], Any]:
    """``BaseValidator.match_predictions(pred_classes, true_classes, iou)`` without a validator.

    The method reads one attribute of its validator, ``iouv`` (the IoU thresholds 0.5:0.95, 10 of
    them), so it is called on a stand-in that has only that.
    """
    from types import SimpleNamespace

    import torch
    from ultralytics.engine.validator import BaseValidator

    stand_in = SimpleNamespace(iouv=torch.linspace(0.5, 0.95, 10))

    def match(pred_classes: Any, true_classes: Any, iou: Any) -> Any:
        return BaseValidator.match_predictions(stand_in, pred_classes, true_classes, iou)

    return match


# --- the trainer: what training/schedule.py changes on a running BaseTrainer ---
def detection_model(model: Any) -> Any:
    """The detection model itself: unwrapped from DDP / compile (``torch_utils.unwrap_model``), and the
    student under ``--distill`` (``DistillationModel.student_model``)."""
    from ultralytics.utils.torch_utils import unwrap_model

    m = unwrap_model(model)
    return getattr(m, "student_model", m)


def after_build_optimizer(trainer: Any, fn: Callable[[Any, Any], None]) -> None:
    """Call ``fn(optimizer, model)`` on every optimizer ``trainer.build_optimizer`` builds, before the trainer
    builds its scheduler from it (``_setup_train``; also on resume). The method is replaced on the instance."""
    build = trainer.build_optimizer

    def build_optimizer(model: Any, *args: Any, **kwargs: Any) -> Any:
        optimizer = build(model, *args, **kwargs)
        fn(optimizer, model)
        return optimizer

    trainer.build_optimizer = build_optimizer


def before_optimizer_step(trainer: Any, fn: Callable[[], None]) -> None:
    """Call ``fn()`` before each ``trainer.optimizer_step()`` (after the warm-up has set this batch's lrs).
    The method is replaced on the instance."""
    step = trainer.optimizer_step

    def optimizer_step() -> Any:
        fn()
        return step()

    trainer.optimizer_step = optimizer_step


def replace_fitness(trainer: Any, fitness: Callable[[Any], float]) -> None:
    """Choose best.pt and stop early by ``fitness(box_metrics)`` instead of Ultralytics' fitness.

    ``trainer.validate`` is replaced on the instance: it returns ``(metrics, fitness)`` and updates
    ``trainer.best_fitness``, which ``save_model`` / the early stopper read; the wrapper recomputes both
    from ``trainer.validator.metrics.box`` (a ``DetMetrics``' ``Metric``, with ``ap`` and ``ap_class_index``).
    """
    validate = trainer.validate

    def validate_with_own_fitness() -> Any:
        best = trainer.best_fitness
        metrics, value = validate()
        box = getattr(getattr(trainer.validator, "metrics", None), "box", None)
        if metrics is None or box is None:
            return metrics, value
        value = fitness(box)
        trainer.best_fitness = value if best is None or best < value else best
        return metrics, value

    trainer.validate = validate_with_own_fitness


def scale_bias_warmup(trainer: Any, ni: int) -> None:
    """Scale the start of the bias warm-up by each parameter group's ``lr_factor``.

    Ultralytics' warm-up (``_do_train``) moves every group's lr from a start to ``initial_lr * lf(epoch)``
    over ``_get_warmup_iterations`` batches; biases (``param_group == "bias"``) start at the fixed
    ``args.warmup_bias_lr`` whatever the group. This redoes that interpolation from ``warmup_bias_lr x
    factor`` for the bias groups whose ``lr_factor`` is not 1; ``ni`` is the batch index since the start.
    """
    nw = trainer._get_warmup_iterations(len(trainer.train_loader))
    if not nw or ni > nw:
        return
    import numpy as np

    start = float(trainer.args.warmup_bias_lr)
    for g in trainer.optimizer.param_groups:
        f = g.get("lr_factor", 1.0)
        if g.get("param_group") == "bias" and f != 1.0:
            g["lr"] = float(np.interp(ni, [0, nw], [start * f, g["initial_lr"] * trainer.lf(trainer.epoch)]))


def unfreeze_layers(trainer: Any, prefixes: tuple[str, ...]) -> None:
    """Make the layers under ``prefixes`` (``model.N.``) trainable in a running trainer.

    Their parameters get ``requires_grad`` back, except the DFL's (``.dfl``, which Ultralytics always
    keeps frozen), and their names leave ``trainer.freeze_layer_names``, which ``_model_train`` reads
    each epoch to keep frozen BatchNorm layers in eval mode.
    """
    for key, param in detection_model(trainer.model).named_parameters():
        if key.startswith(prefixes) and param.dtype.is_floating_point and ".dfl" not in key:
            param.requires_grad_(True)
    trainer.freeze_layer_names = [n for n in trainer.freeze_layer_names if n not in prefixes]


def scale_base_lrs(trainer: Any, factor: float) -> None:
    """Multiply every group's base learning rate by ``factor``: the LambdaLR scheduler's ``base_lrs``
    (what it scales by ``lf(epoch)`` after the warm-up) and each group's ``initial_lr`` (what the
    warm-up moves towards)."""
    base = list(trainer.scheduler.base_lrs)
    trainer.scheduler.base_lrs = [b * factor for b in base]
    for g, b in zip(trainer.optimizer.param_groups, base):
        g["initial_lr"] = b * factor
