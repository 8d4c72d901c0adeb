"""``yolo-tl finetune``, ``evaluate`` and ``predict``: options -> yolo_tl.training.finetune -> rich tables."""

# ruff: noqa: B008  (typer.Option defaults are the Typer idiom)

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from yolo_tl.cli import app
from yolo_tl.cli._common import as_flags, console, err_console, handle_errors, logs_to_stderr, print_json
from yolo_tl.errors import TrainingError
from yolo_tl.training.options import FinetuneOptions

_O = FinetuneOptions  # defaults and help texts: every finetune option is declared once, there
_FLAGS = {name: "DATA_YAML" if name == "data" else f"--{name.replace('_', '-')}" for name in _O.names()}
_FLAGS["extra"] = "--config (ultralytics:)"


def render_metrics(metrics: Any, title: str) -> None:
    """Overall and per-class P, R, mAP50, mAP50-95 as one rich table."""
    table = Table(title=title)
    for col in ("class", "images", "instances", "P", "R", "mAP50", "mAP50-95"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for row in metrics.per_class:
        table.add_row(row.name, str(row.images), str(row.instances), f"{row.precision:.3f}",
                      f"{row.recall:.3f}", f"{row.map50:.3f}", f"{row.map50_95:.3f}")
    instances = sum(r.instances for r in metrics.per_class)
    table.add_row("[bold]all[/]", "", str(instances), f"{metrics.precision:.3f}",
                  f"{metrics.recall:.3f}", f"{metrics.map50:.3f}", f"{metrics.map50_95:.3f}",
                  end_section=True)
    console.print(table)


@app.command(rich_help_panel="Train")
@handle_errors
def finetune(
    ctx: typer.Context,
    data_yaml: Path | None = typer.Argument(None, help=_O.help("data")),
    weights: str = typer.Option(_O.default("weights"), "--weights", help=_O.help("weights")),
    freeze: str = typer.Option(_O.default("freeze"), "--freeze", help=_O.help("freeze")),
    epochs: int = typer.Option(_O.default("epochs"), "--epochs", help=_O.help("epochs")),
    imgsz: int = typer.Option(_O.default("imgsz"), "--imgsz", help=_O.help("imgsz")),
    batch: int = typer.Option(_O.default("batch"), "--batch", help=_O.help("batch")),
    device: str = typer.Option("auto", "--device", help=_O.help("device")),
    seed: int = typer.Option(_O.default("seed"), "--seed", help=_O.help("seed")),
    patience: int = typer.Option(_O.default("patience"), "--patience", help=_O.help("patience")),
    workers: int = typer.Option(_O.default("workers"), "--workers", help=_O.help("workers")),
    project: Path = typer.Option(Path(_O.default("project")), "--project", help=_O.help("project")),
    name: str | None = typer.Option(None, "--name", help=_O.help("name")),
    resume: bool = typer.Option(False, "--resume", help="Resume the interrupted run PROJECT/NAME (--name is required)."),
    unfreeze_at: str | None = typer.Option(None, "--unfreeze-at", help=_O.help("unfreeze_at")),
    unfreeze_lr_factor: float = typer.Option(_O.default("unfreeze_lr_factor"), "--unfreeze-lr-factor", help=_O.help("unfreeze_lr_factor")),
    lr_factors: str | None = typer.Option(None, "--lr-factors", help=_O.help("lr_factors")),
    keep_classes: bool = typer.Option(False, "--keep-classes", help=_O.help("keep_classes")),
    pseudo_conf: float = typer.Option(_O.default("pseudo_conf"), "--pseudo-conf", help="--keep-classes: confidence of the start model's boxes kept as pseudo-labels."),
    distill: bool = typer.Option(False, "--distill", help="--keep-classes: also distil from the start model (Ultralytics distill_model)."),
    on_error: str = typer.Option(_O.default("on_error"), "--on-error", help=_O.help("on_error")),
    config: Path | None = typer.Option(None, "--config", help="YAML file with these options (keys as option names; an 'ultralytics:' mapping passes extra train args). Flags win."),
    as_json: bool = typer.Option(False, "--json", help="Print the final metrics and paths as JSON on stdout."),
) -> None:
    """Fine-tune a YOLO detector with frozen layers (transfer learning).

    Example: yolo-tl finetune data/data.yaml --weights yolov8n.pt --freeze backbone --epochs 50 --unfreeze-at 30
    """
    from yolo_tl.training.finetune import finetune as run_finetune

    given = {key: value for key, value in ctx.params.items() if key not in ("config", "as_json")
             and getattr(ctx.get_parameter_source(key), "name", None) == "COMMANDLINE"}
    given = {("data" if key == "data_yaml" else key): value for key, value in given.items()}
    with as_flags(_FLAGS):
        opts = FinetuneOptions.from_yaml(config, **given) if config is not None else FinetuneOptions(**given)
        if opts.data is None:
            raise TrainingError("missing DATA_YAML (give it as an argument or as data: in --config)")
        with logs_to_stderr("ultralytics", enabled=as_json):
            result = run_finetune(options=opts)
    if as_json:
        print_json({"run_dir": str(result.run_dir), "best": str(result.best), "last": str(result.last),
                    "run_json": str(result.run_json), "frozen_layers": result.frozen_layers,
                    "metrics": result.metrics.to_dict() if result.metrics else None})
        return
    kept = result.record.get("keep_classes")
    if result.metrics is not None:
        where = "; val = your labels + pseudo-labels" if kept else ""
        render_metrics(result.metrics, f"Validation of best.pt ({result.run_dir.name}{where})")
    frozen = result.frozen_layers
    if conversion := (result.record.get("weights") or {}).get("conversion"):
        first, last = conversion["carried_layers"]
        console.print(f"From classic YOLOv5: layers {first}-{last} carried ({conversion['carried_tensors']} tensors); "
                      f"new head: layer {_ranges(conversion['new_layers'])} for {conversion['nc']} classes")
    console.print(f"Frozen layers: {_ranges(frozen) if frozen else 'none'}")
    if kept:
        pseudo = ", ".join(f"{k} {v}" for k, v in (kept["pseudo_labels"].get("train") or {}).items()) or "none"
        console.print(f"Kept classes: {', '.join(kept['head_rows_from_pretrained']) or 'none'}; "
                      f"pseudo-labels (train): {pseudo}")
        console.print(f"Training data: {kept['data_yaml']}", highlight=False, soft_wrap=True)
    console.print(f"Best weights: [bold]{result.best}[/]")
    console.print(f"Run record:   {result.run_json}")
    if skipped := (result.record.get("label_check") or {}).get("skipped"):
        err_console.print(f"[yellow]{len(skipped)} image(s) with bad labels left out[/] (run.json: label_check.skipped)")


@app.command(rich_help_panel="Train")
@handle_errors
def evaluate(
    weights: Path = typer.Argument(..., help="Trained checkpoint (.pt), e.g. runs/train/weights/best.pt, or a model from yolo-tl export (best.onnx, best_openvino_model/)."),
    data_yaml: Path = typer.Argument(..., help="data.yaml of the dataset."),
    split: str = typer.Option("val", "--split", help="Split to evaluate: val or test."),
    imgsz: int = typer.Option(640, "--imgsz", help="Image size."),
    batch: int = typer.Option(16, "--batch", help="Batch size."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, mps or a GPU index."),
    out: Path | None = typer.Option(None, "--out", help="Keep Ultralytics' plots (PR curves, confusion matrix) here."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON on stdout."),
) -> None:
    """Evaluate weights on one split: P, R, mAP50, mAP50-95 overall and per class.

    Example: yolo-tl evaluate runs/train/weights/best.pt data/data.yaml --split test
    """
    from yolo_tl.model.evaluate import evaluate as run_evaluate

    with logs_to_stderr("ultralytics", enabled=as_json):
        result = run_evaluate(weights, data_yaml, split=split, imgsz=imgsz, batch=batch, device=device, out=out)
    if as_json:
        print_json(result.to_dict())
        return
    render_metrics(result.metrics, f"{result.weights.name} on {split}")


@app.command(rich_help_panel="Train")
@handle_errors
def predict(
    weights: Path = typer.Argument(..., help="Trained checkpoint (.pt), or a model from yolo-tl export (best.onnx, best_openvino_model/)."),
    source: str = typer.Argument(..., help="An image, a folder of images, or a quoted glob like 'imgs/*.jpg'."),
    out: Path = typer.Option(Path("runs/predict"), "--out", help="Output folder (images/, labels/, predictions.json)."),
    conf: float = typer.Option(0.25, "--conf", help="Confidence threshold."),
    imgsz: int = typer.Option(640, "--imgsz", help="Image size."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, mps or a GPU index."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Detect objects in images; write annotated images, YOLO txt with confidences and predictions.json.

    Example: yolo-tl predict runs/train/weights/best.pt 'photos/*.jpg' --out preds/ --conf 0.3
    """
    from yolo_tl.model.predict import predict as run_predict

    with logs_to_stderr("ultralytics", enabled=as_json):
        report = run_predict(weights, source, out=out, conf=conf, imgsz=imgsz, device=device)
    if as_json:
        print_json(report.to_dict())
        return
    table = Table(title=f"Detections in {report.images} image(s) at conf >= {conf}")
    table.add_column("class")
    table.add_column("boxes", justify="right")
    for cls, n in report.counts.items():
        table.add_row(cls, str(n))
    table.add_row("[bold]all[/]", str(report.boxes), end_section=True)
    console.print(table)
    console.print(f"Written to [bold]{report.out}[/] (images/, labels/, predictions.json)")
    if report.unreadable:
        err_console.print(f"[yellow]{len(report.unreadable)} image(s) skipped: their pixels do not decode "
                          f"(first: {escape(report.unreadable[0])}; all in predictions.json)[/]")
    if report.boxes == 0 and not report.unreadable:
        err_console.print("[yellow]no detections: try a lower --conf[/]")


def _ranges(indices: list) -> str:
    """[0,1,2,3,7] -> '0-3, 7'."""
    parts, start = [], None
    for i, v in enumerate(indices):
        if start is None:
            start = v
        if i + 1 == len(indices) or indices[i + 1] != v + 1:
            parts.append(str(start) if start == v else f"{start}-{v}")
            start = None
    return ", ".join(parts)
