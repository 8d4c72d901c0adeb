"""``yolo-tl doctor``: check in one go what breaks these setups most often, and say how to fix it.

Each check returns ok / warn / fail, a one-line detail and, unless ok, the fix. Only a ``fail``
(something the workflow cannot run without) makes the command exit non-zero.
"""

from __future__ import annotations

import logging
import os
import platform
import socket
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from yolo_tl.errors import first_line
from yolo_tl.network import download_host_reachable, offline_requested

log = logging.getLogger(__name__)

OK, WARN, FAIL = "ok", "warn", "fail"
APP_PORT = 5151
PRETRAINED = "yolov8n.pt"


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True unless a check failed (warnings do not count)."""
        return all(c.status != FAIL for c in self.checks)

    def as_dict(self) -> dict:
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks]}


def check_python() -> Check:
    from yolo_tl import __version__

    v = sys.version_info
    detail = f"Python {platform.python_version()} ({sys.executable}), yolo-tl {__version__}"
    if v < (3, 10):
        return Check("python", FAIL, detail, "use Python 3.10 or newer")
    return Check("python", OK, detail)


def check_torch() -> Check:
    try:
        import torch
    except Exception as err:  # noqa: BLE001  ImportError, or a broken CUDA build (OSError)
        return Check("torch", FAIL, f"cannot import torch: {first_line(err)}",
                     "pip install torch torchvision (see https://pytorch.org for the CUDA build)")
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(n))
        return Check("torch + CUDA", OK,
                     f"torch {torch.__version__}, CUDA {torch.version.cuda}, {n} GPU(s): {names}")
    cuda_build = torch.version.cuda
    if cuda_build:
        return Check("torch + CUDA", WARN,
                     f"torch {torch.__version__} built for CUDA {cuda_build}, but no GPU is visible; "
                     "training runs on the CPU",
                     "check nvidia-smi and CUDA_VISIBLE_DEVICES; the driver must support CUDA "
                     f"{cuda_build}")
    return Check("torch + CUDA", WARN,
                 f"torch {torch.__version__} (CPU-only build); training runs on the CPU (slow but works)",
                 "for a GPU, install a CUDA build of torch: https://pytorch.org/get-started/locally/")


def check_opencv() -> Check:
    try:
        import cv2
    except Exception as err:  # noqa: BLE001  (any import failure is the finding)
        return Check("opencv", FAIL, f"cannot import cv2: {first_line(err)}",
                     "pip uninstall -y opencv-python opencv-python-headless && "
                     "pip install opencv-python-headless (or install libGL: apt-get install libgl1)")
    return Check("opencv", OK, f"OpenCV {cv2.__version__}")


def _writable(d: Path) -> bool:
    try:
        d.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=d):
            pass
        return True
    except OSError:
        return False


def check_ultralytics() -> Check:
    try:
        import ultralytics
        from ultralytics.utils import SETTINGS_FILE, USER_CONFIG_DIR
    except Exception as err:  # noqa: BLE001  (any import failure is the finding)
        return Check("ultralytics", FAIL, f"cannot import ultralytics: {first_line(err)}",
                     "pip install 'ultralytics>=8.3'")
    detail = f"Ultralytics {ultralytics.__version__}, settings {SETTINGS_FILE}"
    if offline_requested():
        detail += f", YOLO_OFFLINE={os.environ['YOLO_OFFLINE'].strip()} (no downloads)"
    if not _writable(Path(USER_CONFIG_DIR)):
        return Check("ultralytics", FAIL, f"{detail}: settings dir {USER_CONFIG_DIR} not writable",
                     "set YOLO_CONFIG_DIR to a writable directory")
    return Check("ultralytics", OK, detail)


def weights_dir() -> Path | None:
    """Ultralytics' weights directory (settings ``weights_dir``), or None if unreadable."""
    try:
        from ultralytics.utils import SETTINGS

        return Path(SETTINGS["weights_dir"])
    except Exception:  # noqa: BLE001
        return None


def find_local_weights(name: str = PRETRAINED) -> Path | None:
    """Where Ultralytics would find ``name`` without downloading: as given / in the current
    directory, then in its settings' ``weights_dir``. None when neither has it."""
    p = Path(name)
    if p.is_file():
        return p.resolve()
    wd = weights_dir()
    if wd is not None and (wd / p.name).is_file():
        return (wd / p.name).resolve()
    return None


def can_download(timeout_s: float = 3.0) -> tuple[bool, str]:
    """Whether Ultralytics could download release assets now (``yolo_tl.network``'s one rule)."""
    if offline_requested():
        return False, f"YOLO_OFFLINE={os.environ['YOLO_OFFLINE'].strip()}: Ultralytics will not download"
    return download_host_reachable(timeout_s)


def check_weights(name: str = PRETRAINED, *, online: bool = True) -> Check:
    local = find_local_weights(name)
    if local is not None:
        return Check("pretrained weights", OK, f"{name} found at {local}")
    wd = weights_dir()
    where = f"{wd}/{name}" if wd else f"./{name}"
    if online:
        reachable, why = can_download()
        if reachable:
            return Check("pretrained weights", OK,
                         f"{name} not on disk; Ultralytics will download it on first use ({why})")
    else:
        why = "download check skipped"
    return Check("pretrained weights", WARN,
                 f"{name} not on disk and cannot be downloaded ({why}); "
                 "`yolo-tl demo` pretrains on a synthetic task instead, and finetune needs --weights",
                 f"copy {name} (from https://github.com/ultralytics/assets/releases) to {where} "
                 "or pass --weights PATH")


def check_fiftyone() -> Check:
    from yolo_tl.analysis.store.mongod import check_database
    from yolo_tl.errors import DatabaseError

    try:
        msg = check_database()
    except DatabaseError as err:
        return Check("FiftyOne database", FAIL, err.reason, err.hint or "")
    import fiftyone as fo

    detail = f"FiftyOne {fo.__version__}: {msg}"
    uri = os.environ.get("FIFTYONE_DATABASE_URI")
    detail += f" ({uri})" if uri else f" (dir {fo.config.database_dir})"
    if os.environ.get("FIFTYONE_DO_NOT_TRACK", "").lower() != "true":
        return Check("FiftyOne database", WARN, detail + "; usage tracking is on",
                     "export FIFTYONE_DO_NOT_TRACK=true (avoids network calls offline)")
    return Check("FiftyOne database", OK, detail)


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def check_app_port(port: int = APP_PORT) -> Check:
    if port_free(port):
        return Check("App port", OK, f"port {port} is free for the FiftyOne App")
    return Check("App port", WARN,
                 f"port {port} is in use (an App already running, or another service)",
                 f"open that App in the browser, stop it, or pass --port {port + 1} to yolo-tl app")


def run_checks(*, database: bool = True, online: bool = True, port: int = APP_PORT,
               weights: str = PRETRAINED) -> DoctorReport:
    """Run every check; never raises (a check that crashes is reported as failed)."""
    report = DoctorReport()
    steps: list[tuple[str, Callable[[], Check]]] = [
        ("python", check_python),
        ("torch + CUDA", check_torch),
        ("opencv", check_opencv),
        ("ultralytics", check_ultralytics),
        ("pretrained weights", lambda: check_weights(weights, online=online)),
    ]
    if database:
        steps.append(("FiftyOne database", check_fiftyone))
    steps.append(("App port", lambda: check_app_port(port)))
    for name, fn in steps:
        try:
            report.checks.append(fn())
        except Exception as err:  # a doctor must report, not crash
            log.debug("check %s crashed", name, exc_info=True)
            report.checks.append(Check(name, FAIL, f"check crashed: {first_line(err)}",
                                       "run with --debug and report it"))
    return report
