"""PNG figures of an analysis: PR curves per class, the class-to-class confusion matrix and what each
TIDE error type costs (dAP50 bars, overall and per class)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from yolo_tl.analysis.metrics.error_costs import ErrorBreakdown
from yolo_tl.analysis.metrics.error_report import HEADERS
from yolo_tl.analysis.metrics.error_types import ERROR_TYPES, SPECIAL
from yolo_tl.analysis.metrics.evaluation import RECALL
from yolo_tl.files import write_atomic


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def write_pr_curves(path: Path, names: list[str], precision: np.ndarray, aps: list) -> Path:
    """Precision at the 101 recall points, averaged over IoU 0.50:0.95 (as FiftyOne plots them), per class."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5), dpi=100)
    for c, name in enumerate(names):
        if aps[c] is None:
            continue
        ax.plot(RECALL, precision[:, c].mean(axis=0), label=f"{name} (AP {aps[c]:.3f})")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
           title="PR curves, IoU 0.50:0.95 (COCO rules, <= 100 predictions per image and class)")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    if any(a is not None for a in aps):
        ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return _save(plt, fig, path)


def write_confusion(path: Path, names: list[str], matrix: np.ndarray, *, iou: float, min_conf: float) -> Path:
    """Counts; rows the GT class (last row: background = predictions that match nothing), columns the
    predicted class (last column: missed = GT no prediction matches)."""
    plt = _pyplot()
    n = len(names) + 1
    side = min(14.0, 3.0 + 0.6 * n)
    fig, ax = plt.subplots(figsize=(side, side * 0.85), dpi=100)
    ax.imshow(np.log1p(matrix), cmap="Blues")
    ax.set_xticks(range(n), [*names, "missed"], rotation=45, ha="right")
    ax.set_yticks(range(n), [*names, "background"])
    ax.set(xlabel="predicted", ylabel="ground truth")
    ax.set_title(f"confusion, IoU {iou}, predictions >= {min_conf}\n(any class may match any)", fontsize=9)
    if n <= 30:
        hi = matrix.max() if matrix.size else 0
        for i in range(n):
            for j in range(n):
                if matrix[i, j]:
                    ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if np.log1p(matrix[i, j]) > 0.6 * np.log1p(hi) else "black")
    fig.tight_layout()
    return _save(plt, fig, path)


def write_error_costs(path: Path, result: ErrorBreakdown) -> Path:
    """One bar per TIDE error type (dAP50, each fixed alone): overall on the left, per class on the right;
    the two bounds (all false positives / false negatives fixed) hatched."""
    plt = _pyplot()
    types = (*ERROR_TYPES, *SPECIAL)
    classes = [n for n, c in result.per_class.items() if c.ap is not None]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.5), dpi=100, gridspec_kw={"width_ratios": [1, 2]})
    colors = ["#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#D55E00", "#0072B2", "#999999", "#666666"]
    values = [result.overall.dap[t] or 0.0 for t in types]
    bars = ax.bar(range(len(types)), values, color=colors)
    for b in bars[len(ERROR_TYPES):]:
        b.set_hatch("//")
    ax.bar_label(bars, fmt="%.1f", fontsize=8)
    ax.set_xticks(range(len(types)), [HEADERS[t] for t in types])
    ap = result.overall.ap
    ax.set(ylabel="dAP50 (AP points, TIDE)", title=f"all classes (AP50 {ap:.1f})" if ap is not None else "all")
    width = 0.8 / len(ERROR_TYPES)
    for k, t in enumerate(ERROR_TYPES):
        v = [result.per_class[n].dap[t] or 0.0 for n in classes]
        bx.bar(np.arange(len(classes)) + (k - (len(ERROR_TYPES) - 1) / 2) * width, v, width, color=colors[k],
               label=HEADERS[t])
    bx.set_xticks(range(len(classes)), classes, rotation=45 if len(classes) > 6 else 0, ha="right"
                  if len(classes) > 6 else "center")
    bx.set(title="per class", ylabel="dAP50")
    bx.legend(fontsize=8, ncol=3)
    for a in (ax, bx):
        a.grid(axis="y", alpha=0.3)
        a.title.set_fontsize(9)
    fig.suptitle("What each error type costs (TIDE's oracle, each type fixed alone)", fontsize=10)
    fig.tight_layout()
    return _save(plt, fig, path)


def _save(plt, fig, path: Path) -> Path:
    """Write the PNG atomically (two runs may share --out): never a cut-short figure."""
    try:
        return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)


def write_figures(out: Path, names: list[str], curves: dict, aps: list, confusion: np.ndarray, *,
                  iou: float, min_conf: float, errors: ErrorBreakdown | None = None) -> dict[str, str]:
    """``pr_curves.png``, ``confusion_matrix.png`` and (given ``errors``) ``error_types.png`` in ``out``;
    on any error neither this call's figures nor the folders it made are left behind."""
    made = [p for p in (out, *out.parents) if not p.exists()]
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        written.append(write_pr_curves(out / "pr_curves.png", names, curves["precision"], aps))
        written.append(write_confusion(out / "confusion_matrix.png", names, confusion, iou=iou, min_conf=min_conf))
        if errors is not None:
            written.append(write_error_costs(out / "error_types.png", errors))
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        for d in made:  # deepest first
            try:
                d.rmdir()
            except OSError:
                break
        raise
    return dict(zip(("pr_curves", "confusion_matrix", "error_types"), map(str, written)))
