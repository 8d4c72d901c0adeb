"""``yolo-tl weights convert``: a classic YOLOv5 checkpoint -> an Ultralytics one (backbone + neck carried, new head)."""

# ruff: noqa: B008  (typer.Option defaults are the Typer idiom)

from __future__ import annotations

from pathlib import Path

import typer

from yolo_tl.cli import app
from yolo_tl.cli._common import console, handle_errors, logs_to_stderr, print_json

weights_app = typer.Typer(no_args_is_help=True, help="Convert start weights for yolo-tl.")
app.add_typer(weights_app, name="weights", rich_help_panel="Train")


@weights_app.command("convert")
@handle_errors
def convert(
    old: Path = typer.Argument(..., help="Classic YOLOv5 checkpoint (from the ultralytics/yolov5 repository), e.g. yolov5n.pt."),
    new: Path = typer.Argument(..., help="The Ultralytics checkpoint to write (.pt)."),
    nc: int | None = typer.Option(None, "--nc", help="Classes of the new head (numbered class0, class1, ...)."),
    data: Path | None = typer.Option(None, "--data", help="data.yaml whose classes the new head gets."),
    force: bool = typer.Option(False, "--force", help="Overwrite NEW if it exists."),
    seed: int = typer.Option(0, "--seed", help="Seed of the new head's initialisation."),
    as_json: bool = typer.Option(False, "--json", help="Print what was carried as JSON on stdout."),
) -> None:
    """Carry a classic YOLOv5 checkpoint's backbone and neck (bit-exact) into Ultralytics' YOLOv5u model.

    The new detection head is freshly initialised (the data's classes with --data, else the checkpoint's):
    fine-tune NEW before using its predictions. The file is read without running code from it.

    Example: yolo-tl weights convert yolov5s.pt yolov5s-converted.pt --data data/data.yaml
    """
    from yolo_tl.model.convert import convert_classic_yolov5

    with logs_to_stderr("ultralytics", enabled=as_json):
        report = convert_classic_yolov5(old, new, nc=nc, data=data, overwrite=force, seed=seed)
    if as_json:
        print_json({**report.to_dict(), "written": str(new)})
        return
    console.print(report.summary[0].upper() + report.summary[1:], highlight=False, soft_wrap=True)
    console.print(f"Written: [bold]{new}[/] (fine-tune it: yolo-tl finetune data.yaml --weights {new})",
                  soft_wrap=True)
