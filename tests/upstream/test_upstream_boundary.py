"""Only ``yolo_tl/_upstream/`` touches Ultralytics' or FiftyOne's private names or patches their objects.

Read from the source with ``ast`` (every module outside ``_upstream/``, lazy imports included):

- a private name (``x._name``, ``getattr(x, "_name")``, ``from ... import _name``) that yolo-tl does not
  define itself is someone else's private name: refused;
- FiftyOne's raw database layer (``fiftyone.core.odm``) is imported only in ``_upstream/``;
- ``setattr`` / ``delattr`` on anything but ``self``, an assignment to an attribute of an imported
  Ultralytics / FiftyOne module, and an assignment to an attribute of an object that is not ours
  (neither a field nor a ``self.`` attribute of a yolo-tl class) are patches: refused, except the
  public setters listed in ``PUBLIC_SETTERS``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import yolo_tl

PACKAGE = Path(yolo_tl.__file__).parent
UPSTREAMS = ("ultralytics", "fiftyone")
RAW_DATABASE = "fiftyone.core.odm"
# private names of the standard library's own types that yolo-tl uses (NamedTuple)
STDLIB_PRIVATE = frozenset({"_asdict", "_replace", "_fields", "_make"})
# attributes of objects that are not ours which yolo-tl sets, and why that is public API, not a patch
PUBLIC_SETTERS = {
    "name": "fo.Dataset.name: renaming a dataset",
    "tags": "fo.Dataset.tags: the dataset's tags",
    "color_scheme": "fo.Dataset.app_config.color_scheme: the App's colours, saved with the dataset",
    "param_groups": "torch.optim.Optimizer.param_groups: rebuilt with add_param_group (lr_factors.py)",
    "filename": "OSError.filename: the path an error names",
    "stream": "logging.StreamHandler.stream: where the CLI's log lines go",
    "no_wrap": "rich.table.Column.no_wrap",
    "overflow": "rich.table.Column.overflow",
    "StartDoctypeDeclHandler": "xml.parsers.expat handlers (VOC reader)",
    "StartElementHandler": "xml.parsers.expat handlers (VOC reader)",
}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _our_names(trees: dict[Path, ast.AST]) -> tuple[set[str], set[str]]:
    """(every name yolo-tl defines, the attribute names of yolo-tl's own objects)."""
    names: set[str] = set()
    attributes: set[str] = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
                if isinstance(node, ast.ClassDef):  # fields and class attributes
                    for item in node.body:
                        targets = item.targets if isinstance(item, ast.Assign) else \
                            [item.target] if isinstance(item, ast.AnnAssign) else []
                        attributes |= {t.id for t in targets if isinstance(t, ast.Name)}
                        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                            attributes.add(item.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.alias):
                names.add((node.asname or node.name).split(".")[0])
            elif (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                  and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                attributes.add(node.attr)
    return names | attributes, attributes


def _upstream_module_names(tree: ast.AST) -> set[str]:
    """Local names bound to an Ultralytics / FiftyOne module or object by an import."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bound |= {(a.asname or a.name.split(".")[0]) for a in node.names if a.name.split(".")[0] in UPSTREAMS}
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] in UPSTREAMS:
            bound |= {a.asname or a.name for a in node.names}
    return bound


def violations(rel: Path, tree: ast.AST, ours: set[str], our_attributes: set[str]) -> list[str]:
    """What module ``rel`` (relative to the package) does that only ``_upstream/`` may."""
    if rel.parts[0] == "_upstream":
        return []
    found = []
    upstream_names = _upstream_module_names(tree)

    def say(node: ast.AST, what: str) -> None:
        found.append(f"yolo_tl/{rel}:{node.lineno}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in ours | STDLIB_PRIVATE:
            say(node, f"private name {ast.unparse(node)} (not yolo-tl's)")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
            fn, args = node.func.id, node.args
            if fn in ("getattr", "hasattr", "setattr", "delattr") and len(args) > 1 \
                    and isinstance(args[1], ast.Constant) and isinstance(args[1].value, str) \
                    and _private(args[1].value) and args[1].value not in ours:
                say(node, f"private name {args[1].value!r} through {fn}")
            if fn in ("setattr", "delattr") and not (isinstance(args[0], ast.Name) and args[0].id == "self"):
                say(node, f"patch: {ast.unparse(node)[:80]}")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for module in modules:
                if module == RAW_DATABASE or module.startswith(RAW_DATABASE + "."):
                    say(node, f"FiftyOne's raw database layer {module}")
                if module.split(".")[0] in UPSTREAMS and any(_private(p) for p in module.split(".")):
                    say(node, f"private module {module}")
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UPSTREAMS:
                for a in node.names:
                    if _private(a.name):
                        say(node, f"private name {node.module}.{a.name}")
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in upstream_names:
                say(node, f"patch of an upstream module: {ast.unparse(node)} = ...")
            elif not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")) \
                    and node.attr not in our_attributes and node.attr not in PUBLIC_SETTERS:
                say(node, f"patch: {ast.unparse(node)} = ... sets an attribute of an object that is not yolo-tl's")
    return found


def _trees() -> dict[Path, ast.AST]:
    return {p: ast.parse(p.read_text(encoding="utf-8"), filename=str(p)) for p in sorted(PACKAGE.rglob("*.py"))}


def test_no_module_outside_upstream_touches_private_names_or_patches():
    trees = _trees()
    ours, our_attributes = _our_names(trees)
    found = [v for path, tree in trees.items()
             for v in violations(path.relative_to(PACKAGE), tree, ours, our_attributes)]
    assert not found, "move these into yolo_tl/_upstream/ (with a canary):\n" + "\n".join(found)


def test_the_scanner_sees_each_kind_of_touch():
    """Each rule can fail: a module that is only read (nothing is written) with one touch of each kind."""
    ours, our_attributes = _our_names(_trees())
    source = '''
import fiftyone.core.odm.database as fod
import ultralytics.utils.checks as checks
from fiftyone.core.odm.sample import _generate_rand
from ultralytics.utils.patches import _image_open

def f(trainer, ds, det, mod):
    trainer._get_warmup_iterations(3)
    ds._sample_collection.insert_many([])
    getattr(mod, "_image_open")
    setattr(mod, "check_font", None)
    trainer.validate = lambda: None
    det._id = 1
    checks.check_requirements = None
'''
    found = violations(Path("training/probe.py"), ast.parse(source), ours, our_attributes)
    for expected in ("fiftyone.core.odm.database", "_generate_rand", "ultralytics.utils.patches._image_open",
                     "trainer._get_warmup_iterations", "ds._sample_collection", "'_image_open' through getattr",
                     "patch: setattr(mod", "patch: trainer.validate", "det._id",
                     "patch of an upstream module: checks.check_requirements"):
        assert any(expected in v for v in found), (expected, found)
    assert not violations(Path("_upstream/probe.py"), ast.parse(source), ours, our_attributes)
    clean = '''
class Hooks:
    def __init__(self):
        self._ni = 0

    def step(self, other: "Hooks"):
        other._ni += 1
        self._ni = other._ni
'''
    assert not violations(Path("training/probe.py"), ast.parse(clean), ours | {"_ni"}, our_attributes | {"_ni"})
