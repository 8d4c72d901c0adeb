"""``yolo-tl prepare``: options -> yolo_tl.prepare -> report table."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from yolo_tl.cli import app
from yolo_tl.cli._common import console, err_console, handle_errors, print_json


def _split_tables(d: dict) -> list:
    """Per split and per class: classes as columns when they fit the terminal, else as rows.

    A number is never cut: rich shrinks a table that is too wide by eliding cells ("37…"), so the
    wide table is measured first and, when it does not fit, the classes go into rows of their own.
    """
    e = escape
    title = None  # printed above the tables by render_report: a long layout would squeeze a narrow table
    splits = list(d["splits"].items())
    t = d["totals"]
    backgrounds = str(sum(s["backgrounds"] for _, s in splits))

    def numbers(table: Table) -> None:
        for col in table.columns[1:]:
            col.no_wrap, col.overflow = True, "fold"

    wide = Table(title=title)
    for col in ("split", "images", "boxes", "backgrounds", *d["classes"]):
        wide.add_column(e(col), justify="left" if col == "split" else "right")
    for name, s in splits:
        wide.add_row(name, str(s["images"]), str(s["boxes"]), str(s["backgrounds"]),
                     *(str(s["per_class"][c]) for c in d["classes"]))
    wide.add_row("[bold]all[/]", str(t["images"]), str(t["boxes"]), backgrounds,
                 *(str(t["boxes_per_class"][c]) for c in d["classes"]), end_section=True)
    natural = Measurement.get(console, console.options.update_width(10_000), wide).maximum
    if natural <= console.width:
        return [wide]
    per_split = Table(title=title)
    for col in ("split", "images", "boxes", "backgrounds"):
        per_split.add_column(col, justify="left" if col == "split" else "right")
    for name, s in splits:
        per_split.add_row(name, str(s["images"]), str(s["boxes"]), str(s["backgrounds"]))
    per_split.add_row("[bold]all[/]", str(t["images"]), str(t["boxes"]), backgrounds, end_section=True)
    per_class = Table(title="Boxes per class")
    per_class.add_column("class", overflow="fold")
    for name, _ in splits:
        per_class.add_column(name, justify="right")
    per_class.add_column("all", justify="right")
    for c in d["classes"]:
        per_class.add_row(e(c), *(str(s["per_class"][c]) for _, s in splits), str(t["boxes_per_class"][c]))
    numbers(per_split)
    numbers(per_class)
    return [per_split, per_class]


def render_report(report) -> None:
    """The report as rich tables: per split, per class, and what was dropped / fixed."""
    d = report.to_dict()
    e = escape  # file names, class names and reasons come from the user's data: text, not markup

    def example(reason: str) -> str:
        return e((d["examples"].get(reason) or [""])[0])

    console.print(f"[bold]{d['format'].upper()} -> YOLO[/]: {e(d['layout'])}; split: {e(d['split_origin'])}")
    for table in _split_tables(d):
        console.print(table)

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
    exif_rows = {"turned": "EXIF photos: boxes turned (annotated on the stored frame)",
                 "shown": "EXIF photos: boxes kept (annotated as shown)",
                 "unknown": "EXIF photos: boxes kept, frame unknown (--exif rotate turns them)",
                 "kept": "EXIF photos: boxes kept (--exif keep)"}
    for case, n in d["exif"].items():
        issues.add_row(exif_rows[case], str(n), example(f"exif_{case}"))
    if d["images_verified"]:
        issues.add_row("images decoded (--verify-images)", str(d["images_verified"]), "")
    for note in dict.fromkeys(d["notes"]):  # each note once, in order
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
    format: str | None = typer.Option(None, "--format", help="Force the input format: voc or coco."),
    images: Path | None = typer.Option(None, "--images", help="Folder of the images, when not found beside the annotations."),
    classes: str | None = typer.Option(None, "--classes", help="Comma-separated classes to keep, in this order."),
    split: str | None = typer.Option(None, "--split", help="Random split fractions when the source has none: 0.8,0.2 or 0.7,0.2,0.1."),
    resplit: bool = typer.Option(False, "--resplit", help="Ignore the source's own splits and split randomly."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random split."),
    include_difficult: bool = typer.Option(False, "--include-difficult", help="Keep VOC objects marked difficult."),
    link: str = typer.Option("hardlink", "--link", help="How images get into the output: hardlink (copy across filesystems), copy or symlink."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an output folder made earlier by yolo-tl prepare."),
    on_error: str = typer.Option("fail", "--on-error", help="fail: stop at the first bad file; skip: skip it and list it in the report."),
    exif: str = typer.Option("auto", "--exif", help="Photos with an EXIF orientation: auto turns boxes drawn on the stored frame (the annotation's size says so); rotate always turns them; keep never does."),
    verify_images: bool = typer.Option(False, "--verify-images", help="Decode every image (in parallel) and treat one whose pixels do not decode as a bad file."),
    year: str | None = typer.Option(None, "--year", help="VOCdevkit with several years: take this one (2007, VOC2012) instead of merging them."),
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
            overwrite=overwrite, on_error=on_error, exif=exif, verify_images=verify_images, year=year,
            progress=on_progress,
        )
    if json_out:
        print_json(report.to_dict())
    else:
        render_report(report)
