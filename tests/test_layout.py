"""The package layout (issue 11): layering between the workflow folders, module size, the public API.

Imports are read from the source with ``ast`` (every ``import`` / ``from ... import`` anywhere in a
module, including the lazy ones inside functions), so a forbidden import fails here even when no
test happens to call the function that makes it.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import yolo_tl

PACKAGE = Path(yolo_tl.__file__).parent

# folder -> folders it must never import from (dataset <- training <- analysis <- cli)
FORBIDDEN = {
    "dataset": ("training", "analysis", "cli", "demo"),
    "training": ("analysis", "cli", "demo"),
    "analysis": ("cli", "demo"),
}
MAX_LINES = 400


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``; relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(("yolo_tl",) + path.relative_to(PACKAGE).parent.parts)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # "from yolo_tl import analysis" imports the subpackage too
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_import_reader_sees_lazy_and_relative_imports(tmp_path):
    """The checker itself must be able to fail: a lazy and a relative forbidden import are both seen."""
    probe = PACKAGE / "dataset" / "_layering_probe.py"
    probe.write_text("def f():\n    from yolo_tl.training import finetune\n\nfrom ..cli import app\n")
    try:
        names = [m for _, m in _imports(probe)]
    finally:
        probe.unlink()
    assert "yolo_tl.training" in names and "yolo_tl.training.finetune" in names
    assert "yolo_tl.cli" in names


def test_each_folder_imports_only_from_the_folders_below_it():
    violations = []
    for path in _modules():
        rel = path.relative_to(PACKAGE)
        if len(rel.parts) < 2 or rel.parts[0] not in FORBIDDEN:
            continue
        for line, module in _imports(path):
            for banned in FORBIDDEN[rel.parts[0]]:
                if module == f"yolo_tl.{banned}" or module.startswith(f"yolo_tl.{banned}."):
                    violations.append(f"yolo_tl/{rel}:{line} imports {module}")
    assert not violations, "\n".join(violations)


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in _modules()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, long


def test_every_public_name_is_still_the_api_after_importing_every_submodule():
    """Importing a submodule must never shadow a public name (``import yolo_tl.predict`` once did)."""
    for info in pkgutil.walk_packages(yolo_tl.__path__, "yolo_tl."):
        importlib.import_module(info.name)
    functions = ["prepare", "finetune", "evaluate", "predict", "analyze", "launch_app", "list_datasets",
                 "delete_dataset"]
    for name in functions:
        value = getattr(yolo_tl, name)
        assert inspect.isfunction(value), f"yolo_tl.{name} is {value!r}, not a function"
        assert value.__name__ == name
    for name in ("PrepareReport", "AnalysisReport", "YoloTLError"):
        assert inspect.isclass(getattr(yolo_tl, name)), name
    assert issubclass(yolo_tl.YoloTLError, Exception)
    assert set(yolo_tl.__all__) >= set(functions) | {"PrepareReport", "AnalysisReport", "YoloTLError"}


def test_every_cli_command_is_still_there():
    from typer.main import get_command

    from yolo_tl.cli import app

    root = get_command(app)
    commands = set(root.commands)
    assert {"prepare", "finetune", "evaluate", "predict", "analyze", "app", "datasets", "demo", "doctor",
            "sample"} <= commands, commands
    assert {"list", "delete"} <= set(root.commands["datasets"].commands)
