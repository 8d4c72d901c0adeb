"""``yolo-tl demo``: the whole workflow on the bundled sample, through the public API (``yolo_tl.prepare``,
``finetune``, ``evaluate``, ``analyze``) plus the sample generator, the data.yaml reader that checks
the two prepared forms agree, and ``model.weights.resolve_weights`` to find a COCO checkpoint.

prepare (VOC form, and the COCO form to check both give the same boxes) -> finetune with a frozen
backbone -> evaluate -> analyze into FiftyOne.

Starting weights. If ``yolov8n.pt`` (COCO-pretrained) can be had (a local file, Ultralytics'
weights cache, or a download), the transfer starts from it. If not (offline), the demo says so and
makes its own starting point: a short pretraining from ``yolov8n.yaml`` on a synthetic *source*
task with other classes (``yolo_tl.demo.sample.SOURCE_CLASSES``), then the transfer to the sample's
classes with that backbone frozen. Either way it also trains the same number of epochs from
scratch, so the two can be compared side by side. It never claims COCO pretraining it did not do.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from yolo_tl.errors import DatabaseError, WeightsError, YoloTLError

log = logging.getLogger(__name__)
PathLike = str | Path
Step = Callable[[str, str], None]  # (title, detail)

PRETRAINED = "yolov8n.pt"
ARCH = "yolov8n.yaml"
DATASET_NAME = "yolo-tl-demo"


@dataclass(frozen=True)
class DemoSettings:
    """How much training the demo does. ``FULL`` fits ~8 minutes on 2 CPU cores, ``FAST`` ~2."""

    epochs: int  # transfer and from-scratch runs (the same number, for a fair comparison)
    source_epochs: int  # pretraining on the synthetic source task (offline path only)
    source_images: int
    imgsz: int
    batch: int = 16
    workers: int = 2
    warmup_epochs: float = 1.0  # Ultralytics' default of 3 is a quarter of these short runs
    lr0: float | None = None  # None: Ultralytics' "auto" optimizer picks it


FULL = DemoSettings(epochs=12, source_epochs=20, source_images=200, imgsz=160)
FAST = DemoSettings(epochs=1, source_epochs=1, source_images=32, imgsz=64, batch=16, workers=0)


@dataclass
class RunSummary:
    """One training run, as the demo reports it."""

    label: str
    start: str  # what the weights were before this run
    frozen_layers: list[int]
    epochs: int
    run_dir: str
    best: str
    map50: float | None
    map50_95: float | None
    seconds: float

    @classmethod
    def from_result(cls, label: str, start: str, epochs: int, res: Any, seconds: float) -> RunSummary:
        m = res.metrics
        return cls(label, start, list(res.frozen_layers), epochs, str(res.run_dir), str(res.best),
                   m.map50 if m else None, m.map50_95 if m else None, round(seconds, 1))


@dataclass
class DemoResult:
    out: str
    sample: str
    settings: dict[str, Any]
    data_yaml: str
    coco_data_yaml: str
    images: int
    boxes: int
    same_boxes: bool
    pretrained: str  # "yolov8n.pt" or "synthetic source task"
    pretrained_note: str
    runs: list[RunSummary] = field(default_factory=list)
    evaluation: dict[str, Any] = field(default_factory=dict)  # yolo_tl.evaluate on val, transfer model
    analysis: dict[str, Any] | None = None
    analysis_error: str | None = None
    dataset_name: str = DATASET_NAME
    app_command: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    keep_classes: dict[str, Any] | None = None  # the transfer again with --keep-classes, side by side

    @property
    def transfer(self) -> RunSummary:
        return next(r for r in self.runs if r.label == "transfer")

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def find_sample(out: Path) -> Path:
    """The committed sample (source checkout), else a freshly generated one under ``out``."""
    from yolo_tl.demo.sample import REPO_SAMPLE_DIR, generate_sample

    if (REPO_SAMPLE_DIR / "voc" / "Annotations").is_dir() and (REPO_SAMPLE_DIR / "coco").is_dir():
        return REPO_SAMPLE_DIR
    target = out / "sample"
    if not (target / "voc" / "Annotations").is_dir():
        log.info("bundled sample not found (installed package?): generating it into %s", target)
        generate_sample(target, overwrite=True)
    return target


def boxes_by_image(data_yaml: Path) -> dict[str, list[tuple]]:
    """Every image of every split of a prepared dataset -> its sorted boxes with class *names*."""
    from yolo_tl.dataset.formats.yolo import load_data_yaml, read_yolo_split

    data = load_data_yaml(Path(data_yaml))
    names = data.names
    out: dict[str, list[tuple]] = {}
    for split in data.entries:
        for img, boxes in read_yolo_split(data, split):
            out[img.name] = sorted((names[c], round(cx, 5), round(cy, 5), round(w, 5), round(h, 5))
                                   for c, cx, cy, w, h in boxes)
    return out


class StartWeights(NamedTuple):
    """Whether the COCO-pretrained start can be had, and what it is."""

    have: bool
    why: str  # where it was found, or why not
    arch: str  # its architecture as a model .yaml (for the from-scratch twin); ARCH when unknown
    classic: bool = False  # a classic YOLOv5 checkpoint: its head (the COCO classes) is not carried


def pretrained_available(name: str = PRETRAINED) -> StartWeights:
    """Can the COCO-pretrained checkpoint be had (local, cache or download)? And why not."""
    from yolo_tl.model.weights import resolve_weights

    try:
        found = resolve_weights(name)
    except WeightsError as err:
        return StartWeights(False, str(err), ARCH)
    kind = ", classic YOLOv5: backbone and neck carried into " + found.model_yaml.get("yaml_file", "?") \
        if found.classic else ""
    return StartWeights(True, f"{name} ({found.source}: {found.path}{kind})",
                        str(found.model_yaml.get("yaml_file") or ARCH), found.classic)


def _extra(cfg: DemoSettings) -> dict[str, Any]:
    extra: dict[str, Any] = {"plots": False, "warmup_epochs": cfg.warmup_epochs}
    if cfg.lr0 is not None:
        extra.update(optimizer="AdamW", lr0=cfg.lr0)
    return extra


def _clear_run(project: Path, name: str) -> None:
    """Remove an earlier demo run of the same name (only one yolo-tl made: it has run.json)."""
    run = project / name
    if (run / "run.json").is_file():
        shutil.rmtree(run)


def _keep_classes_row(train: Callable[..., Any], runs: list[RunSummary], data_yaml: Path, start: str,
                      source_yaml: str | None, transfer_best: Path, cfg: DemoSettings, device: str | None,
                      seconds: dict[str, float]) -> dict[str, Any]:
    """Train ``keep`` (transfer + --keep-classes); score it and plain transfer on both tasks."""
    import yolo_tl

    res = train("keep", data_yaml, start, "backbone", cfg.epochs, "the same start, --keep-classes",
                keep_classes=True)
    row = runs.pop()  # shown in its own table, beside plain transfer, not among the runs

    def score(weights: Any, data: Any) -> float | None:
        try:
            return yolo_tl.evaluate(weights, data, imgsz=cfg.imgsz, batch=cfg.batch, device=device,
                                    workers=cfg.workers).metrics.map50_95
        except YoloTLError:
            return None  # the model does not know those classes

    t = time.perf_counter()
    target = yolo_tl.evaluate(res.best, data_yaml, imgsz=cfg.imgsz, batch=cfg.batch, device=device,
                              workers=cfg.workers).metrics  # by class name: the model knows more classes
    out: dict[str, Any] = {
        "run": row.__dict__, "target_map50": target.map50, "target_map50_95": target.map50_95,
        "pseudo_labels": (res.record.get("keep_classes") or {}).get("pseudo_labels"),
        "source_map50_95": None,
    }
    if source_yaml is not None:
        out["source_map50_95"] = {"source model": score(start, source_yaml),
                                  "transfer": score(transfer_best, source_yaml) or 0.0,
                                  "keep": score(res.best, source_yaml)}
    seconds["keep_evaluate"] = round(time.perf_counter() - t, 1)
    return out


def run_demo(
    out: PathLike = "demo_out",
    *,
    fast: bool = False,
    settings: DemoSettings | None = None,
    weights: str = PRETRAINED,
    compare_scratch: bool = True,
    compare_keep: bool = True,
    analyze: bool = True,
    dataset_name: str = DATASET_NAME,
    device: str | None = None,
    step: Step | None = None,
) -> DemoResult:
    """Run the demo into ``out`` and return what happened (also written to ``out/demo.json``).

    ``step(title, detail)`` is called at the start of each step (the CLI prints it). A FiftyOne database
    that does not start does not lose the training: the error is kept in ``analysis_error``.
    """
    import yolo_tl
    from yolo_tl.demo.sample import TARGET_CLASSES, generate_source_task

    cfg = settings or (FAST if fast else FULL)
    def say(title: str, detail: str = "") -> None:
        if step is not None:
            step(title, detail)
        else:
            log.info("%s%s", title, f": {detail}" if detail else "")

    out = Path(out).expanduser().absolute()
    out.mkdir(parents=True, exist_ok=True)
    project = out / "runs"
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()

    # 1. prepare, from both forms of the sample
    sample = find_sample(out)
    say("1/5 prepare the sample from its VOC form, and from its COCO form", str(sample))
    voc_report = yolo_tl.prepare(sample / "voc", out / "data" / "sample",
                                 classes=list(TARGET_CLASSES), overwrite=True)
    coco_report = yolo_tl.prepare(sample / "coco" / "annotations.json", out / "data" / "sample_coco",
                                  images=sample / "voc" / "JPEGImages", classes=list(TARGET_CLASSES),
                                  overwrite=True)
    data_yaml = Path(voc_report.to_dict()["data_yaml"])
    coco_yaml = Path(coco_report.to_dict()["data_yaml"])
    from_voc, from_coco = boxes_by_image(data_yaml), boxes_by_image(coco_yaml)
    same = from_voc == from_coco
    if not same:
        differing = sorted(k for k in set(from_voc) | set(from_coco)
                           if from_voc.get(k) != from_coco.get(k))
        raise YoloTLError(f"the VOC and COCO forms give different boxes for {len(differing)} images, "
                          f"e.g. {differing[0]}", path=sample)
    n_boxes = sum(len(v) for v in from_voc.values())
    seconds["prepare"] = round(time.perf_counter() - t0, 1)

    # 2. starting weights
    have, why, arch, classic = pretrained_available(weights)
    common = {"imgsz": cfg.imgsz, "batch": cfg.batch, "workers": cfg.workers, "device": device,
              "project": project, "extra": _extra(cfg)}
    runs: list[RunSummary] = []

    def train(name: str, data: Any, start_weights: str, freeze: str, epochs: int, label: str,
              t0: float | None = None, **overrides: Any) -> Any:
        """One training run of the demo: fresh run folder, finetune, timed row in the summary."""
        t = time.perf_counter() if t0 is None else t0
        _clear_run(project, name)
        res = yolo_tl.finetune(data, weights=start_weights, freeze=freeze, epochs=epochs, name=name,
                               **{**common, **overrides})
        elapsed = time.perf_counter() - t
        runs.append(RunSummary.from_result(name, label, epochs, res, elapsed))
        seconds[name] = round(elapsed, 1)
        return res

    source_yaml: str | None = None
    if have:
        start, start_label, start_short = weights, why, f"{Path(weights).name} (COCO)"
        note = f"Fine-tuning {weights}, pretrained on COCO by Ultralytics: {why}."
        say("2/5 starting weights: COCO-pretrained " + Path(weights).name, why)
    else:
        note = (f"{weights} (COCO-pretrained) is not available: {why}. This demo therefore uses NO "
                "COCO pretraining: it pretrains briefly from random weights on a synthetic source "
                "task with other classes, then transfers that to the sample's classes.")
        say("2/5 starting weights: pretraining on a synthetic source task", note)
        t = time.perf_counter()
        src = generate_source_task(out / "source_task", n_images=cfg.source_images)
        src_report = yolo_tl.prepare(src.voc_dir, out / "data" / "source_task", overwrite=True)
        # val=False: no per-epoch validation (slow on an untrained model); the end still validates
        res = train("source", src_report.to_dict()["data_yaml"], ARCH, "none", cfg.source_epochs,
                    f"{ARCH}, random init; classes: " + ", ".join(src.classes), t0=t,
                    extra={**_extra(cfg), "val": False})
        start, source_yaml = str(res.best), src_report.to_dict()["data_yaml"]
        start_label = f"the weights pretrained on the synthetic source task ({res.best})"
        start_short = "source-task weights (no COCO)"

    # 3. transfer with the backbone frozen, and the same epochs from scratch
    say(f"3/5 finetune with the backbone frozen: {cfg.epochs} epochs at imgsz {cfg.imgsz}",
        f"starting from {start_label}")
    transfer_best = train("transfer", data_yaml, start, "backbone", cfg.epochs, start_short).best
    keep = None
    if compare_keep and classic:
        say("3/5 --keep-classes skipped", "a classic YOLOv5 start's anchor-based head (its COCO classes) is not "
            "carried, so there are no start classes to keep")
    elif compare_keep:
        say("3/5 the same transfer with --keep-classes",
            "the start model's classes are kept: its pseudo-labels join the sample's labels")
        keep = _keep_classes_row(train, runs, data_yaml, start, source_yaml, transfer_best, cfg, device, seconds)
    if compare_scratch:
        scratch = arch if have else ARCH  # the start's own architecture, so only the weights differ
        say(f"3/5 the same {cfg.epochs} epochs from scratch, for comparison",
            f"{scratch}, random weights, nothing frozen")
        train("scratch", data_yaml, scratch, "none", cfg.epochs, f"{scratch}, random init")

    # 4. evaluate the transferred model with Ultralytics' validator
    say("4/5 evaluate the fine-tuned model on the val split")
    t = time.perf_counter()
    ev = yolo_tl.evaluate(transfer_best, data_yaml, split="val", imgsz=cfg.imgsz, batch=cfg.batch,
                          device=device, workers=cfg.workers)
    seconds["evaluate"] = round(time.perf_counter() - t, 1)

    # 5. analyze into FiftyOne
    analysis, analysis_error = None, None
    if analyze:
        say(f"5/5 analyze in FiftyOne (dataset '{dataset_name}')")
        t = time.perf_counter()
        try:
            report = yolo_tl.analyze(data_yaml, weights=transfer_best, split="val", name=dataset_name,
                                     imgsz=cfg.imgsz, batch=cfg.batch, device=device)
            analysis = report.to_dict()
        except DatabaseError as err:
            analysis_error = str(err)
            log.warning("FiftyOne analysis skipped: %s", err)
        seconds["analyze"] = round(time.perf_counter() - t, 1)
    seconds["total"] = round(time.perf_counter() - t0, 1)

    result = DemoResult(
        out=str(out), sample=str(sample), settings=cfg.__dict__.copy(), data_yaml=str(data_yaml),
        coco_data_yaml=str(coco_yaml), images=len(from_voc), boxes=n_boxes, same_boxes=same,
        pretrained=weights if have else "synthetic source task", pretrained_note=note, runs=runs,
        evaluation=ev.metrics.to_dict(), analysis=analysis, analysis_error=analysis_error,
        dataset_name=dataset_name,
        app_command=f"yolo-tl app {dataset_name}" if analysis else "", seconds=seconds, keep_classes=keep,
    )
    (out / "demo.json").write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
    return result
