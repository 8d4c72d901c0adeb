"""Every use of an Ultralytics private name and every patch of Ultralytics: the only place.

Each touch point has a canary in tests/_upstream/test_ultralytics_canaries.py that fails, naming the
upstream name, when Ultralytics moves it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from yolo_tl.network import offline

log = logging.getLogger(__name__)


@contextlib.contextmanager
def offline_guards() -> Iterator[None]:
    """Keep Ultralytics from reaching for the network when we are offline.

    - Fonts: ``check_font('Arial.ttf')`` would download the font; offline we hand it matplotlib's
      bundled DejaVuSans instead, so labels and plots are still drawn.
    - AMP check (CUDA only): it loads ``yolo26n.pt``, downloading it if missing; offline and not
      cached we skip the check and keep AMP on, which is what Ultralytics itself does when its
      download fails, minus the retries.
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
