"""The packages an export format needs, and Ultralytics kept from pip-installing them at run time.

Ultralytics' exporter and its inference backends call ``check_requirements``, which pip-installs a
missing package unless ``YOLO_AUTOINSTALL`` is false (read once, at import). yolo-tl never lets it:
:func:`no_autoinstall` switches the flag off and turns any unmet requirement into one WeightsError
line naming the extra to install, before Ultralytics gets half-way through an export.
"""

from __future__ import annotations

import contextlib
import importlib.util
from importlib import metadata

from yolo_tl.errors import WeightsError

EXTRA_HINT = "pip install 'yolo-tl[export]'"

# format -> (what exporting it needs, what running it needs); import names
EXPORT_FORMATS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "onnx": (("onnx", "onnxslim", "onnxruntime"), ("onnxruntime",)),
    "openvino": (("openvino",), ("openvino",)),
    "torchscript": ((), ()),
}
# import name -> distribution name (for versions)
_DIST = {"onnx": "onnx", "onnxslim": "onnxslim", "onnxruntime": "onnxruntime", "openvino": "openvino"}
# the runtime whose version export.json records, per format
RUNTIME_OF = {"onnx": "onnxruntime", "openvino": "openvino", "torchscript": "torch"}


def check_format(fmt: str) -> str:
    """Normalise ``--format`` and refuse the ones yolo-tl does not export."""
    text = str(fmt).strip().lower()
    if text not in EXPORT_FORMATS:
        raise WeightsError(f"unknown format {fmt!r} (known: {', '.join(EXPORT_FORMATS)})", field="format")
    return text


def missing_packages(fmt: str, *, purpose: str = "export") -> list[str]:
    """The packages ``fmt`` needs for ``purpose`` ("export" or "run") that cannot be imported."""
    export_needs, run_needs = EXPORT_FORMATS[fmt]
    needs = export_needs if purpose == "export" else run_needs
    return [name for name in needs if importlib.util.find_spec(name) is None]


def check_runtime(fmt: str, *, purpose: str = "export") -> None:
    """Raise one line naming the extra when a package ``fmt`` needs is missing."""
    missing = missing_packages(fmt, purpose=purpose)
    if missing:
        verb = "exporting to" if purpose == "export" else "running a model in"
        raise WeightsError(f"{verb} {fmt} needs {', '.join(missing)}, which is not installed",
                           field="format" if purpose == "export" else None, hint=EXTRA_HINT)


def package_version(name: str) -> str | None:
    try:
        return metadata.version(_DIST.get(name, name))
    except metadata.PackageNotFoundError:
        return None


def no_autoinstall() -> contextlib.AbstractContextManager[None]:
    """Within the block, Ultralytics installs nothing: an unmet requirement raises WeightsError naming
    the extra to install (the patch itself: ``yolo_tl._upstream.ultralytics.no_autoinstall``)."""
    from yolo_tl._upstream.ultralytics import no_autoinstall as guard

    return guard(hint=EXTRA_HINT)
