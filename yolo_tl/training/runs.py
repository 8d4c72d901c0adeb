"""``yolo-tl runs``: the runs under a project folder, side by side, from their run.json and results.csv."""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from yolo_tl.errors import TrainingError

log = logging.getLogger(__name__)
PathLike = str | Path
CURVES = {"map50": "metrics/mAP50(B)", "map50_95": "metrics/mAP50-95(B)"}


@dataclass
class RunRow:
    """One run as ``yolo-tl runs`` shows it."""

    name: str
    run_dir: str
    status: str
    weights: str
    freeze: str
    stages: int
    unfreeze_at: list[int]
    lr_factors: str | None
    keep_classes: bool
    epochs: int  # asked for
    epochs_completed: int | None
    wall_time_s: float
    map50: float | None  # validation of best.pt at the end of the run
    map50_95: float | None
    per_class: list[dict[str, Any]] = field(default_factory=list)
    curves: dict[str, list[float]] = field(default_factory=dict)  # per epoch, from results.csv

    def to_dict(self, *, per_class: bool = False, curves: bool = False) -> dict[str, Any]:
        out = asdict(self)
        if not per_class:
            out.pop("per_class")
        if not curves:
            out.pop("curves")
        return out


def list_runs(project: PathLike = "runs") -> list[RunRow]:
    """Every run (a folder with run.json) in ``project``, or ``project`` itself if it is one; by name."""
    root = Path(project).expanduser()
    if not root.is_dir():
        raise TrainingError("folder not found", path=root)
    files = [root / "run.json"] if (root / "run.json").is_file() else sorted(root.glob("*/run.json"))
    if not files:
        raise TrainingError("no runs here (no */run.json)", path=root,
                            hint="point at the --project folder of yolo-tl finetune")
    rows = []
    for f in files:
        try:
            record = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            log.warning("%s: skipped, not readable JSON (%s)", f, err)
            continue
        rows.append(_row(f.parent, record))
    return rows


def _row(run_dir: Path, record: dict[str, Any]) -> RunRow:
    opts = record.get("options") or {}
    metrics = record.get("metrics") or {}
    unfreeze = opts.get("unfreeze_at")
    return RunRow(
        name=run_dir.name, run_dir=str(run_dir), status=str(record.get("status", "?")),
        weights=_short(str(opts.get("weights", "?"))), freeze=str(opts.get("freeze", "?")),
        stages=len(record.get("stages") or [1]),
        unfreeze_at=[unfreeze] if isinstance(unfreeze, int) else list(unfreeze or []),
        lr_factors=opts.get("lr_factors"), keep_classes=bool(opts.get("keep_classes")),
        epochs=int(opts.get("epochs") or 0), epochs_completed=record.get("epochs_completed"),
        wall_time_s=float(record.get("wall_time_s") or 0.0),
        map50=metrics.get("map50"), map50_95=metrics.get("map50_95"),
        per_class=[{k: r[k] for k in ("name", "instances", "map50", "map50_95")} for r in metrics.get("per_class", [])],
        # val: false -> Ultralytics writes 0 for every epoch but the last: no curve to show
        curves={} if (opts.get("extra") or {}).get("val") is False else read_curves(run_dir / "results.csv"),
    )


def _short(weights: str) -> str:
    """runs/source/weights/best.pt -> source/best.pt; yolov8n.pt stays yolov8n.pt."""
    p = Path(weights)
    return f"{p.parent.parent.name}/{p.name}" if p.parent.name == "weights" else p.name


def read_curves(results_csv: Path) -> dict[str, list[float]]:
    """Validation mAP50 and mAP50-95 per epoch from Ultralytics' results.csv (empty if none)."""
    if not results_csv.is_file():
        return {}
    with open(results_csv, newline="", encoding="utf-8") as fh:
        rows = [{k.strip(): v for k, v in row.items()} for row in csv.DictReader(fh)]
    out: dict[str, list[float]] = {}
    for key, column in CURVES.items():
        try:
            out[key] = [float(r[column]) for r in rows if r.get(column) not in (None, "")]
        except ValueError:
            out[key] = []
    return out


def plot_runs(rows: list[RunRow], out: PathLike) -> Path:
    """Overlay the runs' validation mAP50 and mAP50-95 curves per epoch in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out).expanduser()
    if out.suffix.lower() != ".png":
        raise TrainingError("the plot is written as PNG: give a .png file", path=out, field="plot")
    if not out.parent.is_dir():
        raise TrainingError("folder does not exist", path=out.parent, field="plot")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    drawn = 0
    for row in rows:
        for ax, key in zip(axes, ("map50", "map50_95")):
            ys = row.curves.get(key) or []
            if ys:
                ax.plot(range(1, len(ys) + 1), ys, marker="o", markersize=3, label=row.name)
        drawn += bool(row.curves.get("map50"))
    if not drawn:
        plt.close(fig)
        raise TrainingError("no run has per-epoch validation (results.csv with mAP columns)", field="plot")
    for ax, title in zip(axes, ("validation mAP50", "validation mAP50-95")):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    fig.tight_layout()
    tmp = out.with_name(out.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)
    return out
