"""``yolo-tl prepare``: options -> yolo_tl.prepare -> report table."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from yolo_tl.cli import app
from yolo_tl.cli._common import console, err_console, handle_errors, print_json


def render_report(report) -> None:
    """The report as rich tables: per split, per class, and what was dropped / fixed."""
    d = report.to_dict()
    e = escape  # file names, class names and reasons come from the user's data: text, not markup

    def example(reason: str) -> str:
        return e((d["examples"].get(reason) or [""])[0])

    splits = Table(title=f"{d['format'].upper()} -> YOLO  ({d['layout']}; split: {d['split_origin']})")
    for col in ("split", "images", "boxes", "backgrounds", *d["classes"]):
        splits.add_column(e(col), justify="left" if col == "split" else "right")
    for name, s in d["splits"].items():
        splits.add_row(name, str(s["images"]), str(s["boxes"]), str(s["backgrounds"]),
                       *(str(s["per_class"][c]) for c in d["classes"]))
    t = d["totals"]
    splits.add_row("[bold]all[/]", str(t["images"]), str(t["boxes"]),
                   str(sum(s["backgrounds"] for s in d["splits"].values())),
                   *(str(t["boxes_per_class"][c]) for c in d["classes"]), end_section=True)
    console.print(splits)

    issues = Table(title="Dropped, fixed and skipped")
    issues.add_column("what")
    issues.add_column("count", justify="right")
    issues.add_column("example")
    for reason, n in d["boxes_dropped"].items():
        issues.add_row(f"boxes dropped: {reason}", str(n), example(reason))
    if d["boxes_clipped"]:
        issues.add_row("boxes clipped to the image", str(d["boxes_clipped"]),
                       example("clipped"))
    for reason, n in d["images_dropped"].items():
        issues.add_row(f"images dropped: {reason}", str(n), example(reason))
    if d["size_mismatches"]:
        m = d["size_mismatches"][0]
        issues.add_row("annotation size != image size (image size used)", str(len(d["size_mismatches"])),
                       e(f"{Path(m['annotation']).name}: {m['annotated']} vs {m['actual']}")
                       + (" (EXIF rotated)" if m["exif_rotated"] else ""))
    if d["renamed"]:
        r = d["renamed"][0]
        issues.add_row("images renamed (same name elsewhere)", str(len(d["renamed"])),
                       e(f"{r['source']} -> {r['name']}"))
    if d["skipped"]:
        s = d["skipped"][0]
        issues.add_row("skipped (--on-error skip)", str(len(d["skipped"])),
                       e(f"{s['path']}: {s['field'] + ': ' if s['field'] else ''}{s['reason']}"))
    for note in d["notes"]:
        issues.add_row("note", "", e(note))
    if issues.row_count:
        console.print(issues)
    else:
        console.print("Nothing dropped, clipped or skipped.")
    links = ", ".join(f"{n} {k}" for k, n in d["links"].items())
    console.print(f"Images: {links}.  Dataset: [bold]{e(d['data_yaml'])}[/]")
    console.print(f"Report: {e(d['out'])}/prepare_report.json")


@app.command(rich_help_panel="Data")
@handle_errors
def prepare(
    source: Path = typer.Argument(..., help="VOC folder, COCO JSON file, or a folder of COCO JSON files."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for the YOLO dataset."),
    format: Optional[str] = typer.Option(None, "--format", help="Force the input format: voc or coco."),
    images: Optional[Path] = typer.Option(None, "--images", help="Folder of the images, when not found beside the annotations."),
    classes: Optional[str] = typer.Option(None, "--classes", help="Comma-separated classes to keep, in this order."),
    split: Optional[str] = typer.Option(None, "--split", help="Random split fractions when the source has none: 0.8,0.2 or 0.7,0.2,0.1."),
    resplit: bool = typer.Option(False, "--resplit", help="Ignore the source's own splits and split randomly."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random split."),
    include_difficult: bool = typer.Option(False, "--include-difficult", help="Keep VOC objects marked difficult."),
    link: str = typer.Option("hardlink", "--link", help="How images get into the output: hardlink (copy across filesystems), copy or symlink."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an output folder made earlier by yolo-tl prepare."),
    on_error: str = typer.Option("fail", "--on-error", help="fail: stop at the first bad file; skip: skip it and list it in the report."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON instead of tables."),
) -> None:
    """Convert Pascal VOC XML or COCO JSON annotations into an Ultralytics YOLO dataset.

    Example: yolo-tl prepare ~/data/VOCdevkit/VOC2007 --out data/voc_yolo --split 0.8,0.2
    """
    from yolo_tl.dataset.prepare import prepare as run_prepare

    class_list = [c for c in classes.split(",")] if classes else None
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console, transient=True,
                  disable=json_out or not err_console.is_terminal) as bar:
        tasks = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        report = run_prepare(
            source, out, format=format, images=images, classes=class_list, split=split,
            resplit=resplit, seed=seed, include_difficult=include_difficult, link=link,
            overwrite=overwrite, on_error=on_error, progress=on_progress,
        )
    if json_out:
        print_json(report.to_dict())
    else:
        render_report(report)
