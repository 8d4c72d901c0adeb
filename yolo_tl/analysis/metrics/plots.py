"""PNG figures of an analysis: PR curves per class and the class-to-class confusion matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np

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


def _save(plt, fig, path: Path) -> Path:
    """Write the PNG atomically (two runs may share --out): never a cut-short figure."""
    try:
        return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)


def write_figures(out: Path, names: list[str], curves: dict, aps: list, confusion: np.ndarray, *,
                  iou: float, min_conf: float) -> dict[str, str]:
    """``pr_curves.png`` and ``confusion_matrix.png`` in ``out``; on any error neither this call's
    figures nor the folders it made are left behind."""
    made = [p for p in (out, *out.parents) if not p.exists()]
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        written.append(write_pr_curves(out / "pr_curves.png", names, curves["precision"], aps))
        written.append(write_confusion(out / "confusion_matrix.png", names, confusion, iou=iou, min_conf=min_conf))
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        for d in made:  # deepest first
            try:
                d.rmdir()
            except OSError:
                break
        raise
    return {"pr_curves": str(written[0]), "confusion_matrix": str(written[1])}
