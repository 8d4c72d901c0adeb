"""yolo-tl leans on a few Ultralytics 8.4 internals; each test here fails when one changes shape.

pyproject.toml bounds Ultralytics to the versions these tests pass on (>=8.4,<8.5). When a new
Ultralytics release is allowed, these are the tests that say which patch needs work.
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


def test_the_installed_ultralytics_is_inside_the_bound_pyproject_declares():
    from packaging.requirements import Requirement

    import ultralytics

    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    req = next(Requirement(d) for d in deps if Requirement(d).name == "ultralytics")
    assert any(s.operator == "<" for s in req.specifier), f"no upper bound on ultralytics: {req}"
    assert ultralytics.__version__ in req.specifier, (ultralytics.__version__, str(req))


def test_offline_guards_patch_check_font_where_ultralytics_calls_it():
    """offline_guards swaps check_font in three modules; each must still own and call that name."""
    import ultralytics.data.utils as data_utils
    from ultralytics.utils import checks, plotting

    assert list(inspect.signature(checks.check_font).parameters) == ["font"]
    assert inspect.signature(checks.check_font).parameters["font"].default == "Arial.ttf"
    for mod in (data_utils, plotting):
        assert mod.check_font is checks.check_font, f"{mod.__name__} no longer imports check_font"
        assert "check_font(" in _source(mod), f"{mod.__name__} no longer calls check_font"


def test_offline_guards_patch_check_amp_where_the_trainer_calls_it():
    import ultralytics.engine.trainer as trainer_mod
    from ultralytics.utils import checks

    assert trainer_mod.check_amp is checks.check_amp
    assert list(inspect.signature(checks.check_amp).parameters)[:1] == ["model"]
    assert re.search(r"\bcheck_amp\(self\.model\)", _source(trainer_mod.BaseTrainer))


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


def test_pillow_open_bypass_finds_the_original_behind_ultralytics_patch():
    """dataset/images.py reads headers with Pillow's own Image.open, kept by Ultralytics as _image_open."""
    import PIL.Image

    import ultralytics.utils.patches as patches

    assert PIL.Image.open.__module__ == patches.__name__, "Ultralytics no longer patches Image.open"
    original = patches._image_open
    assert original.__module__ == "PIL.Image" and original.__name__ == "open"


def test_the_trainer_attributes_the_freeze_schedule_uses_are_still_there():
    """schedule.py clears trainer.freeze_layer_names when unfreezing (BatchNorm layers matching it stay in
    eval mode) and rescales scheduler.base_lrs / group['initial_lr'] (what warm-up and LambdaLR read)."""
    from ultralytics.engine.trainer import BaseTrainer

    src = _source(BaseTrainer)
    assert "self.freeze_layer_names = freeze_layer_names" in src
    assert re.search(r"self\.freeze_layer_names\)\) and isinstance\(m, nn\.BatchNorm2d\)", src)
    assert re.search(r"x\[\"initial_lr\"\]", src), "warm-up no longer reads each group's initial_lr"
    assert "LambdaLR" in _source(BaseTrainer._setup_scheduler)
