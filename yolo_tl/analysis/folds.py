"""Out-of-fold predictions for ``analyze --folds K``: every image of the split predicted by a model that
never saw its labels.

A model reproduces the label mistakes it was trained on, so suspects in a training split need
predictions the model did not learn from (cleanlab's recommendation). K models are fine-tuned with the
analysed run's own recipe (the run.json beside its weights), each on K-1 folds of the split, and each
predicts the fold it did not train on.

``plan_folds`` checks everything and writes nothing: the recipe, K, the folds (a seeded shuffle of the
sorted paths, K near-equal folds) and the folds project. ``train_folds`` writes one derived data.yaml per
fold (absolute .txt lists of the user's images: Ultralytics finds each label by its images -> labels
rule; the user's folder is only read) and runs the K fine-tunes through the sweep's runners (here one
after another, one per device, or Ray). A fold whose run finished with the same recipe and the same
training images and labels is skipped: its data folder is named by a digest of them, so the sweep's
``finished_run`` rule (same data, epochs, seed, weights, sizes) is enough. A fold's validation images are its
own training images: the held-out labels are not read while training, not even to choose best.pt.
``predict_out_of_fold`` (``FoldPlan.predict_boxes``) then yields ``(image, boxes, size)`` in the split's
order, as ``collect.predict_boxes`` does. This is the one place where analysis reaches a trainer: the
sweep's runners and its finished-run rule (``tests/test_layout.py`` names the exception).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yolo_tl.errors import OutputError, TrainingError, YoloTLError

log = logging.getLogger(__name__)

DEFAULT_PARENT = Path("runs/folds")  # the folds project: runs/folds/<analysis name>_k<K> (cwd-relative)
MARKER = "folds.json"  # written first into a folds project; a folder without it is never written into
CHUNK = 256  # images per round of predictions (each fold's images of a round in one predict call)
# run.json options that are not the recipe: where the run went and what it trained on
NOT_RECIPE = ("data", "project", "name", "resume", "device")
NEEDS_RECIPE = "--folds needs the recipe: weights trained by yolo-tl finetune (run.json beside weights/)"


@dataclass
class FoldPlan:
    """The K folds of a split, the recipe each fold run repeats, and where the runs go."""

    data_yaml: Path
    split: str
    k: int
    seed: int
    recipe: dict[str, Any]  # finetune keyword options (weights, freeze, epochs, imgsz, ...)
    project: Path
    folds: list[list[Path]]  # held-out images per fold (fold i+1 predicts folds[i])
    images: list[Path] = field(default_factory=list)  # the split, in its order
    runner: str = ""
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    data_yamls: list[Path] = field(default_factory=list)  # per fold, once written

    @property
    def runs(self) -> list[str]:
        return [f"fold{i}" for i in range(1, self.k + 1)]

    def best(self, i: int) -> Path:
        return self.project / self.runs[i] / "weights" / "best.pt"

    def train_images(self, i: int) -> list[Path]:
        """Fold ``i``'s training images: every fold but its own, in the split's order."""
        held = set(self.folds[i])
        return [p for p in self.images if p not in held]

    def predict_boxes(self, model: Any, images: Sequence[Path], **kwargs: Any) -> Iterator[tuple]:
        """``collect.predict_boxes``' signature: ``model`` (the analysed weights) only gives the class names."""
        return predict_out_of_fold(self, images, class_names=[str(n) for n in model.names.values()], **kwargs)

    def summary(self) -> dict[str, Any]:
        return {"k": self.k, "project": str(self.project)}

    def to_dict(self) -> dict[str, Any]:
        return {"predictions": "out-of-fold: each image predicted by the fold model that did not train on it",
                "k": self.k, "seed": self.seed, "project": str(self.project), "runner": self.runner,
                "ran": list(self.ran), "skipped": list(self.skipped),
                "recipe": {k: v for k, v in self.recipe.items()},
                "runs": [{"name": name, "weights": str(self.best(i)), "held_out": len(self.folds[i]),
                          "trained_on": len(self.images) - len(self.folds[i]),
                          "data_yaml": str(self.data_yamls[i]) if self.data_yamls else None}
                         for i, name in enumerate(self.runs)]}


def assign_folds(images: Sequence[Path], k: int, seed: int) -> list[list[Path]]:
    """K near-equal folds (sizes differ by at most one): a seeded shuffle of the sorted paths, dealt out
    in turn; each fold sorted. The same images, K and seed always give the same folds."""
    paths = sorted((Path(p) for p in images), key=str)
    random.Random(seed).shuffle(paths)
    return [sorted(paths[i::k], key=str) for i in range(k)]


def read_recipe(weights: Path) -> dict[str, Any]:
    """The finetune options of the run that made ``weights`` (PATH/weights/best.pt -> PATH/run.json),
    without where it went and what it trained on; local start weights as an absolute path."""
    weights = Path(weights).expanduser().resolve()
    run_json = weights.parent.parent / "run.json"
    if weights.parent.name != "weights" or not run_json.is_file():
        raise YoloTLError(NEEDS_RECIPE, path=weights)
    try:
        record = json.loads(run_json.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise YoloTLError(f"not a readable run.json ({' '.join(str(err).split())})", path=run_json,
                          field="folds") from None
    options = record.get("options") if isinstance(record, dict) else None
    if not isinstance(options, dict) or not options.get("weights"):
        raise YoloTLError("no recipe ('options' with the start weights) in this run.json", path=run_json,
                          field="folds", hint="weights trained by yolo-tl finetune")
    recipe = {k: v for k, v in options.items() if k not in NOT_RECIPE}
    source = record.get("weights") if isinstance(record.get("weights"), dict) else {}
    if source.get("source") == "local" and source.get("path"):
        recipe["weights"] = str(source["path"])  # a relative path was relative to that run's folder of origin
    return recipe


def plan_folds(data_yaml: Path, split: str, weights: Path, k: int, *, name: str, fold_epochs: int | None = None,
               folds_dir: str | Path | None = None) -> FoldPlan:
    """Everything checked before any training or database work; nothing written."""
    from yolo_tl.dataset.formats.yolo import load_data_yaml, split_images

    recipe = read_recipe(weights)
    data = load_data_yaml(Path(data_yaml).expanduser().resolve())
    images = split_images(data, split)
    if not 2 <= k <= len(images):
        raise YoloTLError(f"must be between 2 and the {len(images)} images of split '{split}', got {k}",
                          field="folds")
    if fold_epochs is not None:
        recipe["epochs"] = fold_epochs
    seed = int(recipe.get("seed") or 0)
    project = Path(folds_dir if folds_dir is not None else DEFAULT_PARENT / f"{name}_k{k}").expanduser().resolve()
    for source in {data.root.resolve(), data.path.parent}:
        if project == source or source in project.parents:
            raise OutputError("the folds project would be inside the dataset folder, which yolo-tl only reads",
                              path=project, field="folds_dir", hint="choose another --folds-dir")
    marker = project / MARKER
    if project.is_dir() and any(project.iterdir()) and not marker.is_file():
        raise OutputError(f"exists and was not made by analyze --folds (no {MARKER})", path=project,
                          field="folds_dir", hint="choose another --folds-dir")
    return FoldPlan(data.path, split, k, seed, recipe, project, assign_folds(images, k, seed), list(images))


def fold_plan(opts: Any, default_name: Callable[[Any, Any, str], str]) -> FoldPlan:
    """``plan_folds`` for ``AnalyzeOptions`` (the analysis name: ``opts.name`` or ``default_name``)."""
    data_yaml = Path(opts.data or "").expanduser().resolve()
    weights = Path(opts.weights or "").expanduser().resolve()
    return plan_folds(data_yaml, opts.split, weights, opts.folds, fold_epochs=opts.fold_epochs,
                      name=opts.name or default_name(data_yaml, weights, opts.split), folds_dir=opts.folds_dir)


def train_fold_runs(plan: FoldPlan, opts: Any, step: Callable[[str, int, int | None], None],
                    seconds: dict[str, float]) -> FoldPlan:
    """``train_folds`` on the analysis' device / Ray cluster; its time in ``seconds["fold_runs"]``."""
    import time

    t = time.perf_counter()
    step("fold runs", 0, plan.k)
    train_folds(plan, device=opts.device, ray_address=opts.ray_address, gpus_per_fold=opts.gpus_per_fold)
    step("fold runs", plan.k, plan.k)
    seconds["fold_runs"] = time.perf_counter() - t
    return plan


def _fold_digest(plan: FoldPlan, names: list[str], train: list[Path]) -> str:
    """What fold run depends on: the recipe, the classes and its training images with their labels."""
    from yolo_tl.dataset.formats.yolo import label_path_for

    h = hashlib.sha256(json.dumps({"recipe": plan.recipe, "names": names}, sort_keys=True, default=str).encode())
    for p in train:
        label = label_path_for(p)
        content = hashlib.sha256(label.read_bytes()).hexdigest() if label.is_file() else "-"
        h.update(f"{p}\0{content}\n".encode())
    return h.hexdigest()[:12]


def _write_fold_data(plan: FoldPlan) -> list[Path]:
    """Per fold ``data/fold<i>-<digest>/data.yaml`` (kept when already there); older data folders removed."""
    from yolo_tl.dataset.formats.yolo import load_data_yaml
    from yolo_tl.dataset.handoff import write_resolved_data_yaml

    data = load_data_yaml(plan.data_yaml)
    out: list[Path] = []
    for i, run in enumerate(plan.runs):
        train = plan.train_images(i)
        folder = plan.project / "data" / f"{run}-{_fold_digest(plan, list(data.names), train)}"
        for old in (plan.project / "data").glob(f"{run}-*"):
            if old != folder and old.is_dir():
                shutil.rmtree(old)
        if not (folder / "data.yaml").is_file():
            note = (f"fold {i + 1} of {plan.k} of split '{plan.split}': trains on {len(train)} images, "
                    f"{len(plan.folds[i])} held out")
            write_resolved_data_yaml(data, folder, lists={"train": train, "val": train}, note=note)
        out.append(folder / "data.yaml")
    return out


def train_folds(plan: FoldPlan, *, device: str | None = None, ray_address: str | None = None,
                gpus_per_fold: float = 0.0) -> FoldPlan:
    """The K fold runs under ``plan.project``: finished ones of the same recipe and images skipped, the
    others (re)trained through the sweep's runner for ``device`` / ``ray_address``."""
    from yolo_tl.files import write_text_atomic
    from yolo_tl.training.sweep import finished_run
    from yolo_tl.training.sweep_runners import pick_runner, run_jobs

    plan.project.mkdir(parents=True, exist_ok=True)
    plan.runner = pick_runner(device, ray_address)
    marker = {"data": str(plan.data_yaml), "split": plan.split, "k": plan.k, "seed": plan.seed,
              "recipe": plan.recipe, "runner": plan.runner,
              "folds": [[str(p) for p in fold] for fold in plan.folds]}
    write_text_atomic(plan.project / MARKER, json.dumps(marker, indent=2, default=str) + "\n")
    plan.data_yamls = _write_fold_data(plan)
    jobs = []
    for run, data_yaml in zip(plan.runs, plan.data_yamls):
        options = {**plan.recipe, "data": str(data_yaml)}
        run_dir = plan.project / run
        if finished_run(run_dir, data_yaml, options):
            plan.skipped.append(run)
            continue
        if run_dir.exists():
            log.warning("%s: not finished, or made with another recipe or other images; training it again", run_dir)
            shutil.rmtree(run_dir)
        jobs.append((run, options))
    plan.ran = [run for run, _ in jobs]
    log.info("folds: %d of %d fold run(s) to train in %s (%s), %d already done", len(jobs), plan.k, plan.project,
             plan.runner, len(plan.skipped))
    failed = run_jobs(plan.runner, plan.data_yaml, jobs, plan.project, device=device, ray_address=ray_address,
                      gpus_per_trial=gpus_per_fold)
    for i, run in enumerate(plan.runs):
        if run in failed or not plan.best(i).is_file():
            why = failed.get(run, "no weights/best.pt")
            raise TrainingError(f"fold run failed: {why}", path=plan.project / run)
    return plan


def predict_out_of_fold(plan: FoldPlan, images: Sequence[Path], *, class_names: Sequence[str], conf: float,
                        imgsz: int, batch: int, device: str | None = None,
                        ) -> Iterator[tuple[Path, list[Any] | None, tuple[int, int] | None]]:
    """Each image predicted by the fold model that did not train on it, yielded in the order of ``images``
    as ``collect.predict_boxes`` yields it. ``class_names``: the analysed model's, which every fold model
    must share (the analysis maps those names onto the data's)."""
    from yolo_tl.analysis import collect as fio

    fold_of = {p: i for i, fold in enumerate(plan.folds) for p in fold}
    models: dict[int, Any] = {}

    def model(i: int) -> Any:
        if i not in models:
            models[i] = fio.load_model(plan.best(i))
            got = {str(n) for n in models[i].names.values()}
            if got != {str(n) for n in class_names}:
                raise YoloTLError(f"its classes {sorted(got)} are not the analysed weights' "
                                  f"{sorted(map(str, class_names))}", path=plan.best(i))
        return models[i]

    for start in range(0, len(images), CHUNK):
        part = [Path(p) for p in images[start:start + CHUNK]]
        found: dict[Path, tuple] = {}
        for i in sorted({fold_of[p] for p in part}):
            group = [p for p in part if fold_of[p] == i]
            for item in fio.predict_boxes(model(i), group, conf=conf, imgsz=imgsz, batch=batch, device=device):
                found[Path(item[0])] = item
        for p in part:
            yield found[p]


__all__ = ["FoldPlan", "assign_folds", "fold_plan", "plan_folds", "predict_out_of_fold", "read_recipe",
           "train_fold_runs", "train_folds"]
