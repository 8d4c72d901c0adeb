"""``yolo-tl sweep``: several fine-tuning recipes on the same data, seed and epochs, one run each, ranked.

A recipe is a ``--try`` string of finetune keyword options (``"freeze=backbone,unfreeze-at=20"``); each
becomes the run ``PROJECT/<recipe name>`` made by yolo-tl's own :func:`finetune`, so schedules, lr factors
and run.json are the same as for a single run, and ``yolo-tl runs PROJECT`` shows them afterwards.

Runners: one after another (default); one trial per device when several GPUs are given
(``devices="0,1"``, each trial in its own process); or Ray Tune trials on an existing cluster
(``ray_address`` or ``RAY_ADDRESS``), each trial calling finetune and writing into the same project
folder, which must therefore be shared storage that every Ray node sees at the same path.
A recipe whose run already finished in the project folder with the same data, seed and epochs is
skipped, so an interrupted sweep continues where it stopped.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yolo_tl.errors import TrainingError
from yolo_tl.training.runs import RunRow, list_runs

log = logging.getLogger(__name__)
PathLike = str | Path

# finetune keyword options a recipe may set; their values go to finetune as text (it parses them)
TEXT_OPTIONS = {"weights", "freeze", "unfreeze_at", "lr_factors"}
VALUE_OPTIONS = {"unfreeze_lr_factor", "keep_classes", "pseudo_conf", "distill", "imgsz", "batch", "patience"}
SWEEP_FIXED = {"data", "epochs", "seed", "project", "name", "resume", "device", "callbacks", "extra"}


@dataclass(frozen=True)
class Recipe:
    """One ``--try`` value: finetune keyword options, and Ultralytics train arguments in ``extra``."""

    text: str
    options: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The run folder: the recipe text made safe for a file name (freeze-backbone_unfreeze-at-20)."""
        parts = [f"{k}-{v}" for k, v in _pairs(self.text)]
        slug = re.sub(r"[^A-Za-z0-9._+-]+", "-", "_".join(parts).replace("=", "-")).strip("-")
        return slug[:120] or "default"

    def kwargs(self) -> dict[str, Any]:
        return {**self.options, **({"extra": dict(self.extra)} if self.extra else {})}


def parse_recipe(text: str) -> Recipe:
    """``"freeze=backbone,unfreeze-at=5,10,lr-factors=backbone=0.1,neck=0.5"`` -> a Recipe.

    A comma starts a new option only where the next part is ``known-key=...``; otherwise the part
    continues the previous value (``unfreeze-at=5,10``, ``lr-factors=backbone=0.1,neck=0.5``).
    """
    from ultralytics.cfg import DEFAULT_CFG_DICT

    options: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in _pairs(text):
        if key in SWEEP_FIXED:
            raise TrainingError(f"{key} is the same for every recipe of a sweep; set it on the sweep itself",
                                field="tries", hint=text)
        if key in TEXT_OPTIONS:
            options[key] = value
        elif key in VALUE_OPTIONS:
            options[key] = _value(value)
        elif key in DEFAULT_CFG_DICT:
            extra[key] = _value(value)
        else:
            raise TrainingError(f"unknown option {key!r} in {text!r} (finetune options: "
                                f"{', '.join(sorted(TEXT_OPTIONS | VALUE_OPTIONS))}, or an Ultralytics train "
                                "argument such as lr0)", field="tries")
    return Recipe(text.strip(), options, extra)


def _pairs(text: str) -> list[tuple[str, str]]:
    from ultralytics.cfg import DEFAULT_CFG_DICT

    known = TEXT_OPTIONS | VALUE_OPTIONS | SWEEP_FIXED | set(DEFAULT_CFG_DICT)
    pairs: list[list[str]] = []
    for part in str(text).split(","):
        key, eq, value = part.partition("=")
        norm = key.strip().replace("-", "_")
        if eq and (norm in known or not pairs):
            pairs.append([norm, value.strip()])
        elif pairs:
            pairs[-1][1] += "," + part.strip()
        elif part.strip():
            raise TrainingError(f"expected option=value, got {part.strip()!r}", field="tries", hint=text)
    if not pairs:
        raise TrainingError("empty recipe", field="tries", hint='e.g. --try "freeze=backbone"')
    return [(k, v) for k, v in pairs]


def _value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


@dataclass
class SweepResult:
    """The sweep's runs, best first (by validation mAP50-95), and what was skipped as already done."""

    project: Path
    rows: list[RunRow]
    skipped: list[str]
    ran: list[str]
    runner: str
    failed: dict[str, str] = field(default_factory=dict)  # run name -> error line

    @property
    def best(self) -> RunRow | None:
        return self.rows[0] if self.rows and self.rows[0].map50_95 is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {"project": str(self.project), "runner": self.runner, "ran": self.ran, "skipped": self.skipped,
                "failed": self.failed, "best": self.best.name if self.best else None,
                "runs": [r.to_dict() for r in self.rows]}


def sweep(data_yaml: PathLike, tries: list[str], *, weights: PathLike = "yolov8n.pt", epochs: int = 30,
          seed: int = 0, project: PathLike = "runs/sweep", device: str | None = None,
          ray_address: str | None = None, cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0,
          **common: Any) -> SweepResult:
    """Run each recipe of ``tries`` as a finetune run under ``project``; rank them by mAP50-95.

    ``common`` are finetune keyword options shared by every recipe (imgsz, batch, workers, extra, ...);
    a recipe's own options win. ``device="0,1"`` runs one trial per GPU; ``ray_address`` (or
    ``RAY_ADDRESS``) runs Ray Tune trials on that cluster.
    """
    fixed = sorted(set(common) & {"data", "data_yaml", "project", "name", "resume"})
    if fixed:
        raise TrainingError(f"{fixed[0]} is set by the sweep itself (one run per recipe under project)",
                            field=fixed[0])
    recipes = [parse_recipe(t) for t in tries]
    if not recipes:
        raise TrainingError("give at least one --try recipe", field="tries", hint='e.g. --try "freeze=backbone"')
    names = [r.name for r in recipes]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise TrainingError(f"two recipes give the same run name {dup!r}", field="tries")
    if epochs < 1:
        raise TrainingError(f"must be >= 1, got {epochs}", field="epochs")
    from yolo_tl.dataset.handoff import read_data_info

    info = read_data_info(data_yaml)
    project_dir = Path(project).expanduser().resolve()
    project_dir.mkdir(parents=True, exist_ok=True)
    base = {"weights": str(weights), "epochs": epochs, "seed": seed, **common}
    todo, skipped = [], []
    for recipe in recipes:
        if finished_run(project_dir / recipe.name, info.path, _merge(base, recipe)):
            log.info("%s: already finished in %s, skipped", recipe.text, project_dir)
            skipped.append(recipe.name)
        else:
            todo.append(recipe)
    from yolo_tl.training.sweep_runners import pick_runner, run_jobs

    runner = pick_runner(device, ray_address)
    _write_plan(project_dir, info.path, base, recipes, runner)
    jobs = [(recipe.name, _merge(base, recipe)) for recipe in todo]
    for name, _ in jobs:
        _clear_unfinished(project_dir / name)
    log.info("sweep of %d recipe(s) in %s (%s): %d to run, %d already done", len(recipes), project_dir, runner,
             len(jobs), len(skipped))
    failed = run_jobs(runner, info.path, jobs, project_dir, device=device, ray_address=ray_address,
                      cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial)
    result = collect(project_dir, names, skipped=skipped, ran=[n for n, _ in jobs], runner=runner)
    result.failed = failed
    return result


def _merge(base: dict[str, Any], recipe: Recipe) -> dict[str, Any]:
    options = {**base, **recipe.options}
    if recipe.extra or base.get("extra"):
        options["extra"] = {**(base.get("extra") or {}), **recipe.extra}
    return options


def collect(project_dir: Path, names: list[str], *, skipped: list[str] | None = None, ran: list[str] | None = None,
            runner: str = "local") -> SweepResult:
    """The sweep's runs from their run.json (``yolo-tl runs``), best mAP50-95 first, unfinished last."""
    wanted = set(names)
    rows = [r for r in list_runs(project_dir) if r.name in wanted] if any(
        (project_dir / n / "run.json").is_file() for n in names) else []
    rows.sort(key=lambda r: (r.status != "finished" or r.map50_95 is None, -(r.map50_95 or 0.0), r.name))
    return SweepResult(project_dir, rows, list(skipped or []), list(ran or []), runner)


_SAME = ("epochs", "seed", "weights", "imgsz", "batch")  # besides data: what makes two runs of a recipe comparable


def finished_run(run_dir: Path, data_path: Path, options: dict[str, Any]) -> bool:
    """A finished run of the same data, epochs, seed, start weights and sizes (the recipe is its folder name)."""
    try:
        record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    opts = record.get("options") or {}
    same = all(str(opts.get(k)) == str(options[k]) for k in _SAME if k in options)
    return (record.get("status") == "finished" and same
            and Path(str(opts.get("data", ""))).resolve() == Path(data_path).resolve())


def _clear_unfinished(run_dir: Path) -> None:
    """An interrupted or failed run of this sweep starts over (finetune would otherwise pick name2);
    a finished run made with other data, epochs, seed or weights is never removed: the sweep stops instead."""
    if not run_dir.exists():
        return
    try:
        status = json.loads((run_dir / "run.json").read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError):
        status = None
    if status == "finished":
        raise TrainingError("a finished run with other data, epochs, seed or weights has this recipe's name",
                            path=run_dir,
                            hint="sweep into another --project")
    log.warning("%s: not finished (%s); running it again", run_dir, status or "no run.json")
    shutil.rmtree(run_dir)


def _write_plan(project_dir: Path, data_path: Path, base: dict[str, Any], recipes: list[Recipe], runner: str) -> None:
    plan = {"data": str(data_path), "common": {k: str(v) if isinstance(v, Path) else v for k, v in base.items()},
            "runner": runner, "recipes": [{"try": r.text, "run": r.name, "options": r.kwargs()} for r in recipes]}
    tmp = project_dir / ".sweep.json.tmp"
    tmp.write_text(json.dumps(plan, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, project_dir / "sweep.json")


__all__ = ["Recipe", "SweepResult", "collect", "finished_run", "parse_recipe", "sweep"]
