"""Canaries: one per place yolo-tl leans on Ultralytics 8.4 internals (``yolo_tl/_upstream/ultralytics.py``).

Each test checks that the upstream name still exists with the shape we rely on (the attribute, the
parameters we pass, the call we patch still made where we patch it) and fails with a message naming
it. pyproject.toml bounds Ultralytics to the versions these pass on (>=8.4,<8.5); before allowing a
new release, run ``pytest tests/upstream`` against it: a failure names the patch that needs work.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _source(obj) -> str:
    return inspect.getsource(obj)


def _params(fn) -> list[str]:
    return list(inspect.signature(fn).parameters)


def test_the_installed_ultralytics_is_inside_the_bound_pyproject_declares():
    import ultralytics
    from packaging.requirements import Requirement

    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    req = next(Requirement(d) for d in deps if Requirement(d).name == "ultralytics")
    assert any(s.operator == "<" for s in req.specifier), f"no upper bound on ultralytics: {req}"
    assert ultralytics.__version__ in req.specifier, (ultralytics.__version__, str(req))


# --- offline_guards: check_font (3 modules) and check_amp ---
def test_offline_guards_patch_check_font_where_ultralytics_calls_it():
    """offline_guards swaps check_font in three modules; each must still own and call that name."""
    import ultralytics.data.utils as data_utils
    from ultralytics.utils import checks, plotting

    assert _params(checks.check_font) == ["font"], "ultralytics.utils.checks.check_font(font) changed"
    assert inspect.signature(checks.check_font).parameters["font"].default == "Arial.ttf"
    for mod in (data_utils, plotting):
        assert mod.check_font is checks.check_font, f"{mod.__name__}.check_font is no longer checks.check_font"
        assert "check_font(" in _source(mod), f"{mod.__name__} no longer calls check_font"


def test_offline_guards_patch_check_amp_where_the_trainer_calls_it():
    import ultralytics.engine.trainer as trainer_mod
    from ultralytics.utils import checks

    assert trainer_mod.check_amp is checks.check_amp, "ultralytics.engine.trainer.check_amp is not checks.check_amp"
    assert _params(checks.check_amp)[:1] == ["model"], "ultralytics.utils.checks.check_amp(model) changed"
    assert re.search(r"\bcheck_amp\(self\.model\)", _source(trainer_mod.BaseTrainer)), \
        "BaseTrainer no longer calls check_amp(self.model)"


def test_offline_guards_really_replace_and_restore_the_functions():
    import ultralytics.data.utils as data_utils
    import ultralytics.engine.trainer as trainer_mod
    from ultralytics.utils import checks, plotting

    from yolo_tl._upstream.ultralytics import offline_guards

    before = (checks.check_font, data_utils.check_font, plotting.check_font, trainer_mod.check_amp)
    with offline_guards():
        inside = (checks.check_font, data_utils.check_font, plotting.check_font, trainer_mod.check_amp)
        assert all(a is not b for a, b in zip(before, inside))
        font = checks.check_font("Arial.ttf")  # offline (conftest): matplotlib's bundled font, no download
        assert Path(font).is_file()
    assert (checks.check_font, data_utils.check_font, plotting.check_font, trainer_mod.check_amp) == before


# --- no_autoinstall: check_requirements in every module that holds it, the AUTOINSTALL flags ---
def test_no_autoinstall_patches_check_requirements_with_the_parameters_we_pass():
    import ultralytics.engine.exporter as exporter
    import ultralytics.utils as ul_utils
    from ultralytics.utils import checks

    params = _params(checks.check_requirements)
    assert params == ["requirements", "exclude", "install", "cmds", "constrain"], \
        f"ultralytics.utils.checks.check_requirements{tuple(params)}: the guard passes all five by name"
    assert isinstance(ul_utils.AUTOINSTALL, bool) and isinstance(checks.AUTOINSTALL, bool), \
        "ultralytics.utils.AUTOINSTALL / checks.AUTOINSTALL are gone"
    assert exporter.check_requirements is checks.check_requirements and "check_requirements(" in _source(exporter), \
        "ultralytics.engine.exporter no longer imports check_requirements by name"


def test_no_autoinstall_turns_a_missing_package_into_weights_error_and_restores():
    import ultralytics.engine.exporter as exporter
    from ultralytics.utils import checks

    from yolo_tl._upstream.ultralytics import no_autoinstall
    from yolo_tl.errors import WeightsError

    before = (checks.check_requirements, exporter.check_requirements, checks.AUTOINSTALL)
    with no_autoinstall(hint="pip install extra"):
        assert exporter.check_requirements is not before[0] and checks.AUTOINSTALL is False
        assert checks.check_requirements("numpy") is True  # installed: Ultralytics' own answer
        assert checks.check_requirements("yolo-tl-no-such-package>=1", install=False) is False
        with pytest.raises(WeightsError, match="yolo-tl-no-such-package"):
            exporter.check_requirements("yolo-tl-no-such-package>=1")
    assert (checks.check_requirements, exporter.check_requirements, checks.AUTOINSTALL) == before


# --- pillow_open: Pillow's own Image.open, kept by Ultralytics as patches._image_open ---
def test_pillow_open_bypass_finds_the_original_behind_ultralytics_patch():
    """dataset/images.py reads headers with Pillow's own Image.open, kept by Ultralytics as _image_open."""
    import PIL.Image
    import ultralytics.utils.patches as patches

    assert PIL.Image.open.__module__ == patches.__name__, "Ultralytics no longer patches PIL.Image.open"
    original = getattr(patches, "_image_open", None)
    assert original is not None, "ultralytics.utils.patches._image_open is gone"
    assert original.__module__ == "PIL.Image" and original.__name__ == "open"


def test_pillow_open_reports_a_corrupt_file_as_pillow_does(tmp_path):
    import PIL.Image
    import ultralytics.utils.patches  # noqa: F401  (the patch is in place)

    from yolo_tl._upstream.ultralytics import pillow_open

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(PIL.UnidentifiedImageError):
        pillow_open(bad)
    PIL.Image.new("RGB", (7, 5)).save(tmp_path / "ok.png")
    with pillow_open(tmp_path / "ok.png") as im:
        assert im.size == (7, 5)


# --- weights: downloadable names, the assets release, export metadata, checkpoint fields ---
def test_downloadable_weights_and_the_release_they_come_from():
    from ultralytics.utils import downloads

    from yolo_tl._upstream.ultralytics import ASSETS_RELEASE, ASSETS_REPO, asset_url, downloadable_weights

    names = downloadable_weights()
    assert {"yolov8n.pt", "yolo11n.pt"} <= names, "ultralytics.utils.downloads.GITHUB_ASSETS_NAMES changed"
    sig = inspect.signature(downloads.attempt_download_asset).parameters
    assert sig["repo"].default == ASSETS_REPO and sig["release"].default == ASSETS_RELEASE, \
        f"attempt_download_asset now downloads from {sig['repo'].default} {sig['release'].default}"
    assert asset_url("yolov8n.pt").endswith(f"/{ASSETS_RELEASE}/yolov8n.pt")


def test_export_metadata_is_read_by_base_backend(tmp_path):
    from ultralytics.nn.backends.base import BaseBackend

    from yolo_tl._upstream.ultralytics import read_export_metadata

    assert isinstance(inspect.getattr_static(BaseBackend, "read_metadata"), staticmethod), \
        "ultralytics.nn.backends.base.BaseBackend.read_metadata is no longer a staticmethod"
    folder = tmp_path / "best_openvino_model"
    folder.mkdir()
    (folder / "metadata.yaml").write_text("task: detect\nnames:\n  0: cell\nimgsz: [64, 64]\n")
    meta = read_export_metadata(folder)
    assert meta.get("task") == "detect" and meta.get("names") in ({0: "cell"}, "{0: 'cell'}"), meta


def test_checkpoint_fields_resume_reads():
    """resume_epoch / checkpoint_train_args read what save_model writes and strip_optimizer clears."""
    from ultralytics.engine.trainer import BaseTrainer
    from ultralytics.utils.torch_utils import strip_optimizer

    from yolo_tl._upstream.ultralytics import checkpoint_train_args, resume_epoch

    saved = _source(BaseTrainer.save_model)
    for key in ('"epoch": self.epoch', '"optimizer":', '"train_args": vars(self.args)'):
        assert key in saved, f"BaseTrainer.save_model no longer stores {key}"
    stripped = _source(strip_optimizer)
    assert re.search(r'for k in "optimizer",', stripped) and 'x["epoch"] = -1' in stripped, \
        "strip_optimizer no longer marks a finished checkpoint with optimizer None and epoch -1"
    assert resume_epoch({"epoch": 4, "optimizer": {}}) == 5
    assert resume_epoch({"epoch": -1, "optimizer": None}) is None
    assert checkpoint_train_args({"train_args": {"freeze": [0]}}) == {"freeze": [0]}


# --- prediction_matcher: BaseValidator.match_predictions on a stand-in with only iouv ---
def test_match_predictions_reads_only_iouv_and_agrees_with_a_real_validator():
    import torch
    from ultralytics.engine.validator import BaseValidator
    from ultralytics.models.yolo.detect import DetectionValidator

    from yolo_tl._upstream.ultralytics import prediction_matcher

    assert _params(BaseValidator.match_predictions)[:4] == ["self", "pred_classes", "true_classes", "iou"], \
        "BaseValidator.match_predictions(pred_classes, true_classes, iou) changed"
    used = set(re.findall(r"self\.(\w+)", _source(BaseValidator.match_predictions)))
    assert used == {"iouv"}, f"BaseValidator.match_predictions now reads self.{sorted(used)}"
    gen = torch.Generator().manual_seed(0)
    iou = torch.rand((6, 9), generator=gen)
    pred, true = torch.randint(0, 3, (9,), generator=gen), torch.randint(0, 3, (6,), generator=gen)
    want = DetectionValidator().match_predictions(pred, true, iou)
    assert torch.equal(prediction_matcher()(pred, true, iou), want)


# --- the trainer (training/schedule.py) ---
def test_detection_model_unwraps_and_finds_the_distillation_student():
    from ultralytics.nn.distill_model import DistillationModel
    from ultralytics.utils import torch_utils

    assert callable(getattr(torch_utils, "unwrap_model", None)), "ultralytics.utils.torch_utils.unwrap_model is gone"
    assert "student_model" in _params(DistillationModel.__init__) and "self.student_model" in _source(
        DistillationModel), "DistillationModel.student_model is gone"


def test_build_optimizer_is_wrapped_before_the_scheduler_is_built():
    from ultralytics.engine.trainer import BaseTrainer

    assert _params(BaseTrainer.build_optimizer)[:2] == ["self", "model"], "BaseTrainer.build_optimizer(model, ...)"
    src = _source(BaseTrainer)
    build, sched = src.find("self.optimizer = self.build_optimizer("), src.find("self._setup_scheduler()")
    assert 0 <= build < sched, "BaseTrainer no longer builds the optimizer (self.build_optimizer) before its scheduler"
    assert re.search(r'"param_group": "bias"', _source(BaseTrainer.build_optimizer)), \
        "build_optimizer no longer tags the bias group param_group='bias'"


def test_the_warmup_runs_before_optimizer_step_and_reads_what_we_scale():
    """scale_bias_warmup redoes the warm-up interpolation; it must still be this formula, before the step."""
    from ultralytics.engine.trainer import BaseTrainer

    assert _params(BaseTrainer._get_warmup_iterations) == ["self", "num_batches"], \
        "BaseTrainer._get_warmup_iterations(num_batches) changed"
    src = _source(BaseTrainer._do_train)
    assert "nw = self._get_warmup_iterations(nb)" in src and "ni = i + nb * epoch" in src, \
        "BaseTrainer._do_train's warm-up counters (nw, ni) changed"
    assert 'self.args.warmup_bias_lr if x.get("param_group") == "bias" else 0.0' in src, \
        "the bias warm-up no longer starts at args.warmup_bias_lr"
    warm, step = src.find('x["initial_lr"] * self.lf(epoch)'), src.find("self.optimizer_step()")
    assert 0 <= warm < step, "warm-up (initial_lr * lf(epoch)) no longer precedes self.optimizer_step()"
    assert _params(BaseTrainer.optimizer_step) == ["self"], "BaseTrainer.optimizer_step() changed"


def test_validate_returns_metrics_and_fitness_and_keeps_best_fitness():
    from ultralytics.engine.trainer import BaseTrainer
    from ultralytics.utils.metrics import DetMetrics

    src = _source(BaseTrainer.validate)
    assert "return metrics, fitness" in src and "self.best_fitness = fitness" in src, \
        "BaseTrainer.validate no longer returns (metrics, fitness) and updates best_fitness"
    assert "self.metrics, self.fitness = self.validate()" in _source(BaseTrainer._do_train), \
        "BaseTrainer._do_train no longer calls self.validate()"
    box = DetMetrics().box
    assert hasattr(box, "ap") and hasattr(box, "ap_class_index"), "DetMetrics.box.ap / ap_class_index are gone"


def test_the_trainer_attributes_the_freeze_schedule_uses_are_still_there():
    """unfreeze_layers clears trainer.freeze_layer_names (BatchNorm layers matching it stay in eval mode) and
    scale_base_lrs rescales scheduler.base_lrs / group['initial_lr'] (what warm-up and LambdaLR read)."""
    from ultralytics.engine.trainer import BaseTrainer

    src = _source(BaseTrainer)
    assert "self.freeze_layer_names = freeze_layer_names" in src, "BaseTrainer.freeze_layer_names is gone"
    assert 'always_freeze_names = [".dfl"]' in src, "Ultralytics no longer always freezes .dfl"
    assert re.search(r"self\.freeze_layer_names\)\) and isinstance\(m, nn\.BatchNorm2d\)",
                     _source(BaseTrainer._model_train)), "_model_train no longer reads freeze_layer_names"
    assert re.search(r"x\[\"initial_lr\"\]", src), "warm-up no longer reads each group's initial_lr"
    assert "LambdaLR" in _source(BaseTrainer._setup_scheduler), "BaseTrainer's scheduler is no longer LambdaLR"
