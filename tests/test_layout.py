"""The package layout: layering between the workflow folders, module size, the public API.

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

# The layers, bottom to top: _upstream <- dataset <- model <- training, deploy, analysis <- demo <- cli.
# A folder imports only from the folders below it. training, deploy and analysis sit side by side on
# the model layer and import none of each other (analysis needs a model, never a trainer); inside
# analysis, metrics/ is pure numpy (no store/, app/, FiftyOne).
FOLDERS = ("_upstream", "dataset", "model", "training", "deploy", "analysis", "demo", "cli")
FORBIDDEN = {
    "_upstream": FOLDERS[1:],
    "dataset": ("model", "training", "deploy", "analysis", "demo", "cli"),
    "model": ("training", "deploy", "analysis", "demo", "cli"),
    "training": ("deploy", "analysis", "demo", "cli"),
    "deploy": ("training", "analysis", "demo", "cli"),
    "analysis": ("training", "deploy", "demo", "cli"),
    "demo": ("cli",),
}
# sub-folders with their own rule: (folder, sub-folder) -> module prefixes it must never import
FORBIDDEN_INSIDE = {
    ("analysis", "metrics"): ("yolo_tl.analysis.store", "yolo_tl.analysis.app", "yolo_tl.analysis.analyze",
                              "yolo_tl.analysis.collect", "fiftyone"),
    ("analysis", "store"): ("yolo_tl.analysis.app", "yolo_tl.analysis.analyze"),
}
# the exceptions, each narrow and named: module -> the modules of a forbidden folder it may import
ALLOWED = {
    # analyze --folds trains its K fold models through the sweep's runners and skips finished ones by the
    # sweep's own rule: the one place analysis reaches a trainer (nothing else of training)
    "analysis/folds.py": ("yolo_tl.training.sweep", "yolo_tl.training.sweep_runners"),
}
MAX_LINES = 400


def _imports(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path`` (or in ``source``, read as if it were
    ``path``); relative imports resolved."""
    text = path.read_text(encoding="utf-8") if source is None else source
    tree = ast.parse(text, filename=str(path))
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


def _violations(rel: Path, imports: list[tuple[int, str]]) -> list[str]:
    """The imports of module ``rel`` (relative to the package) that its layer forbids."""
    banned = [f"yolo_tl.{b}" for b in FORBIDDEN.get(rel.parts[0], ())] if len(rel.parts) >= 2 else []
    if len(rel.parts) >= 3:
        banned += FORBIDDEN_INSIDE.get(rel.parts[:2], ())
    allowed = ALLOWED.get(rel.as_posix(), ())
    return [f"yolo_tl/{rel}:{line} imports {module}" for line, module in imports
            for b in banned if _within(module, b) and not any(_within(module, a) for a in allowed)]


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def test_the_import_reader_sees_lazy_and_relative_imports():
    """The checker itself must be able to fail: a lazy and a relative forbidden import are both seen,
    in a module that is only read (nothing is written into the source tree)."""
    probe = PACKAGE / "dataset" / "_layering_probe.py"
    source = "def f():\n    from yolo_tl.training import finetune\n\nfrom ..cli import app\n"
    names = [m for _, m in _imports(probe, source)]
    assert "yolo_tl.training" in names and "yolo_tl.training.finetune" in names
    assert "yolo_tl.cli" in names
    assert not probe.exists()


def test_the_layer_rules_catch_upward_and_sideways_imports():
    """Each rule can fail: analysis -> training, model -> training, deploy <-> training, metrics -> store."""
    cases = {
        "analysis/collect.py": "from yolo_tl.training.finetune import finetune\n",
        "model/weights.py": "def f():\n    import yolo_tl.training.freeze\n",
        "deploy/export.py": "from yolo_tl.training import runs\n",
        "training/finetune.py": "from yolo_tl.deploy.export import export\n",
        "analysis/metrics/plots.py": "from yolo_tl.analysis.store import mongod\n",
        "analysis/metrics/evaluation.py": "import fiftyone as fo\n",
        "_upstream/ultralytics.py": "from yolo_tl.dataset import prepare\n",
    }
    for rel, source in cases.items():
        assert _violations(Path(rel), _imports(PACKAGE / rel, source)), rel
    assert not _violations(Path("analysis/collect.py"), _imports(PACKAGE / "analysis/collect.py",
                                                                  "from yolo_tl.model.predict import predict\n"))
    # the folds exception is that module and those runners only
    folds = Path("analysis/folds.py")
    assert not _violations(folds, _imports(PACKAGE / folds, "from yolo_tl.training.sweep_runners import run_jobs\n"))
    assert _violations(folds, _imports(PACKAGE / folds, "from yolo_tl.training.finetune import finetune\n"))
    assert _violations(Path("analysis/analyze.py"), _imports(PACKAGE / "analysis/analyze.py",
                                                             "from yolo_tl.training.sweep_runners import run_jobs\n"))


def test_each_folder_imports_only_from_the_folders_below_it():
    violations = []
    for path in _modules():
        violations += _violations(path.relative_to(PACKAGE), _imports(path))
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
                 "delete_dataset", "fix_labels"]
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
            "sample", "fix-labels"} <= commands, commands
    assert {"list", "delete"} <= set(root.commands["datasets"].commands)
