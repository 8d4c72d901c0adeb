"""``yolo-tl sweep``: several fine-tuning recipes on the same data, seed and epochs, ranked by mAP50-95."""

# ruff: noqa: B008  (typer.Option defaults are the Typer idiom)

from __future__ import annotations

from pathlib import Path

import typer
from rich import box
from rich.table import Table

from yolo_tl.cli import app
from yolo_tl.cli._common import console, err_console, handle_errors, logs_to_stderr, print_json


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@app.command(rich_help_panel="Train")
@handle_errors
def sweep(
    data_yaml: Path = typer.Argument(..., help="data.yaml of a YOLO dataset (from yolo-tl prepare)."),
    tries: list[str] = typer.Option(..., "--try", help="A recipe: finetune options as key=value,... e.g. \"freeze=backbone,unfreeze-at=20\" or \"lr-factors=backbone=0.1,neck=0.5\" (Ultralytics train arguments such as lr0=0.002 too). Repeat for each recipe."),
    weights: str = typer.Option("yolov8n.pt", "--weights", help="Start checkpoint of every recipe (a recipe may set weights=... itself)."),
    epochs: int = typer.Option(30, "--epochs", help="Epochs of every recipe."),
    seed: int = typer.Option(0, "--seed", help="Seed of every recipe."),
    imgsz: int = typer.Option(640, "--imgsz", help="Training image size."),
    batch: int = typer.Option(16, "--batch", help="Batch size."),
    workers: int = typer.Option(8, "--workers", help="Dataloader workers per trial."),
    project: Path = typer.Option(Path("runs/sweep"), "--project", help="One run folder per recipe goes here; recipes already finished here are skipped."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, 0; several GPUs (0,1,2,3): one trial per GPU at a time."),
    ray_address: str | None = typer.Option(None, "--ray-address", envvar="RAY_ADDRESS", help="Run the recipes as Ray Tune trials on this Ray cluster (the project folder must be shared storage on every node)."),
    cpus_per_trial: float = typer.Option(1.0, "--cpus-per-trial", help="Ray: CPUs each trial reserves."),
    gpus_per_trial: float = typer.Option(0.0, "--gpus-per-trial", help="Ray: GPUs each trial reserves."),
    as_json: bool = typer.Option(False, "--json", help="Print the ranked runs as JSON on stdout."),
) -> None:
    """Compare fine-tuning recipes on your data: one run each, the runs table sorted by mAP50-95, the best named.

    Example: yolo-tl sweep data/data.yaml --weights yolov8n.pt --try freeze=backbone --try freeze=none --try "freeze=backbone,unfreeze-at=20" --epochs 30
    """
    from yolo_tl.training.sweep import sweep as run_sweep

    with logs_to_stderr("ultralytics", enabled=as_json):
        result = run_sweep(data_yaml, list(tries), weights=weights, epochs=epochs, seed=seed, project=project,
                           device=device, ray_address=ray_address, cpus_per_trial=cpus_per_trial,
                           gpus_per_trial=gpus_per_trial, imgsz=imgsz, batch=batch, workers=workers)
    if as_json:
        print_json(result.to_dict())
    else:
        table = Table(title=f"Sweep in {result.project} ({result.runner}), best mAP50-95 first", box=box.SIMPLE_HEAD)
        for col in ("run", "status", "epochs", "time", "mAP50", "mAP50-95"):
            table.add_column(col, justify="left" if col in ("run", "status") else "right")
        for r in result.rows:
            done = r.epochs_completed if r.epochs_completed is not None else "?"
            note = " (already done)" if r.name in result.skipped else ""
            table.add_row(r.name + note, r.status, f"{done}/{r.epochs}", f"{r.wall_time_s:.0f}s", _f(r.map50),
                          _f(r.map50_95))
        console.print(table)
        if result.best is not None:
            console.print(f"Best: [bold]{result.best.name}[/] (mAP50-95 {result.best.map50_95:.3f}, "
                          f"{result.best.run_dir}/weights/best.pt)", soft_wrap=True)
    for name, error in result.failed.items():
        err_console.print(f"[red]{name} failed:[/] {error}", highlight=False, soft_wrap=True)
    if result.failed:
        raise typer.Exit(1)
