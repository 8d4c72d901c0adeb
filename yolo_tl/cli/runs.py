"""``yolo-tl runs``: compare the runs of a project folder (table, per-class rows, mAP curves)."""

# ruff: noqa: B008  (typer.Option defaults are the Typer idiom)

from __future__ import annotations

from pathlib import Path

import typer
from rich import box
from rich.table import Table

from yolo_tl.cli import app
from yolo_tl.cli._common import console, handle_errors, print_json


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@app.command(rich_help_panel="Train")
@handle_errors
def runs(
    project: Path = typer.Argument(Path("runs"), help="Project folder of yolo-tl finetune (--project), or one run."),
    per_class: bool = typer.Option(False, "--per-class", help="Also show mAP per class for each run."),
    plot: Path | None = typer.Option(None, "--plot", help="Write the runs' validation mAP curves per epoch to this PNG."),
    as_json: bool = typer.Option(False, "--json", help="Print the runs as JSON on stdout."),
) -> None:
    """List fine-tuning runs side by side: how each was trained and how well it did.

    Example: yolo-tl runs runs/ --plot compare.png
    """
    from yolo_tl.training.runs import list_runs, plot_runs

    rows = list_runs(project)
    plotted = plot_runs(rows, plot) if plot is not None else None
    if as_json:
        print_json({"project": str(project), "plot": str(plotted) if plotted else None,
                    "runs": [r.to_dict(per_class=per_class, curves=True) for r in rows]})
        return
    table = Table(title=f"Runs in {project}", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False,
                  caption="schedule: frozen layers; unfreeze@epochs; lr factors; keep = --keep-classes")
    table.add_column("run", no_wrap=True)
    table.add_column("weights", max_width=18, overflow="ellipsis", no_wrap=True)
    table.add_column("schedule", overflow="fold", ratio=1)
    for col in ("epochs", "time", "mAP50", "50-95"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        done = r.epochs_completed if r.epochs_completed is not None else "?"
        parts = [f"freeze {r.freeze}"]
        if r.unfreeze_at:
            parts.append(f"unfreeze@{','.join(map(str, r.unfreeze_at))}")
        if r.lr_factors:
            parts.append(f"lr {r.lr_factors}")
        if r.keep_classes:
            parts.append("keep")
        status = "" if r.status == "finished" else f" [yellow]({r.status})[/]"
        table.add_row(r.name + status, r.weights, "; ".join(parts), f"{done}/{r.epochs}",
                      f"{r.wall_time_s:.0f}s", _f(r.map50), _f(r.map50_95))
    console.print(table)
    if per_class:
        for r in rows:
            if not r.per_class:
                continue
            t = Table(title=f"{r.name}: per class (best.pt on val)")
            for col in ("class", "instances", "mAP50", "mAP50-95"):
                t.add_column(col, justify="left" if col == "class" else "right")
            for c in r.per_class:
                t.add_row(str(c["name"]), str(c["instances"]), _f(c["map50"]), _f(c["map50_95"]))
            console.print(t)
    if plotted:
        console.print(f"mAP curves: [bold]{plotted}[/]")
