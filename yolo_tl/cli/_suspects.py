"""The short table of an analysis' top label suspects (80 columns), printed by ``yolo-tl analyze``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from yolo_tl.cli._common import console


def _change(row: dict[str, Any]) -> str:
    label, new = row.get("label"), row.get("suggested")
    if row["fix"] == "add":
        return f"add {new}"
    if row["fix"] == "remove":
        return f"remove {label}"
    if row["fix"] == "relabel":
        return f"{label} -> {new}"
    return f"move {label}"


def render_suspects(summary: dict[str, Any], name: str, *, rows: int = 10) -> None:
    """Counts per kind, the top suspects (image, kind, score, suggested change) and the next step."""
    if not summary:
        return
    counts, likely = summary["counts"], summary["likely"]
    t = Table(title=f"Likely label mistakes (score >= {summary['min_score']:g} stored; top {rows})", width=80)
    t.add_column("image", overflow="ellipsis", no_wrap=True, max_width=30)
    t.add_column("kind", no_wrap=True)
    t.add_column("score", justify="right")
    t.add_column("suggested fix", overflow="ellipsis", no_wrap=True)
    for row in summary["top"][:rows]:
        t.add_row(escape(Path(row["image"]).name), row["kind"], f"{row['score']:.2f}", escape(_change(row)))
    console.print(t)
    per_kind = ", ".join(f"{k} {n} ({likely[k]} >= 0.5)" for k, n in counts.items())
    console.print(f"Suggestions: {per_kind}, on {summary['samples']} images (view label_suspects, tag suspect).",
                  highlight=False)
    if summary.get("note"):
        console.print(f"[yellow]note: {escape(summary['note'])}[/]")
    console.print("Tag suggestions accept / reject in the App, then:", highlight=False)
    console.print(f"  yolo-tl fix-labels {name} --out DIR \\[--accept-above 0.5]", highlight=False, soft_wrap=True)
