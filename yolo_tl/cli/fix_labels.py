"""``yolo-tl fix-labels``: a corrected YOLO dataset from the label suggestions accepted in the App."""
# ruff: noqa: B008  (typer.Option defaults are the Typer idiom)

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer
from rich.markup import escape

from yolo_tl.cli import app
from yolo_tl.cli._common import as_flags, console, handle_errors, logs_to_stderr, print_json, setup_logging


@app.command("fix-labels")
@handle_errors
def fix_labels_cmd(
    name: str = typer.Argument(..., help="Analysis dataset (see: yolo-tl datasets list)."),
    out: Path = typer.Option(..., "--out", help="New folder for the corrected dataset (must not exist)."),
    accept_above: float | None = typer.Option(None, "--accept-above", help="Also accept the untagged suggestions "
                                              "scored at or above this (0.5: more likely a mistake than not)."),
    accept_top: int | None = typer.Option(None, "--accept-top", min=0, help="Accept the K best scored untagged "
                                          "suggestions (with --accept-above: of those above it)."),
    link: str = typer.Option("hardlink", "--link", help="How images get into the output: hardlink (copy across "
                             "filesystems), copy or symlink."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
) -> None:
    """Write a corrected YOLO dataset: suggestions tagged accept applied, reject never.

    Example: yolo-tl fix-labels yolo-tl-data-val-exp-best-1a2b3c --out data_fixed/ --accept-above 0.5
    """
    from yolo_tl.analysis.fix_labels import fix_labels
    from yolo_tl.analysis.store.mongod import precheck_database

    setup_logging()
    with as_flags({"accept_above": "--accept-above", "accept_top": "--accept-top", "link": "--link"}):
        if accept_above is not None and not 0.0 <= accept_above <= 1.0:
            from yolo_tl.errors import YoloTLError

            raise YoloTLError(f"must be in [0, 1], got {accept_above}", field="accept_above")
        precheck_database()
        with logs_to_stderr("fiftyone"):
            report = fix_labels(name, out, accept_above=accept_above, accept_top=accept_top, link=link)
    if as_json:
        print_json(report.to_dict())
        return
    kinds = Counter(r["kind"] for r in report.applied)
    done = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "none"
    console.print(f"Wrote [bold]{escape(str(report.out))}[/] ({report.images} images): fixes {done}; "
                  f"{report.accepted_by_tag} accepted by tag, {report.accepted_above} by score, "
                  f"{report.rejected} rejected, {report.untouched} left as they were.", highlight=False)
    console.print(f"Each fix is listed in {escape(str(report.out / 'fixes.json'))}; train on "
                  f"{escape(str(report.out / 'data.yaml'))}.", highlight=False, soft_wrap=True)
