"""TIDE's error types read for a person: one sentence built from the numbers, and an 80-column table."""

from __future__ import annotations

from yolo_tl.analysis.metrics.error_costs import ErrorBreakdown, ErrorCosts
from yolo_tl.analysis.metrics.error_types import ERROR_TYPES, SPECIAL

LABELS = {"cls": "classification errors", "loc": "localisation errors", "both": "errors of both class and place",
          "dupe": "duplicate detections", "bkg": "background detections", "missed": "missed ground truth"}
VIEWS = {t: f"error_{t}" for t in ERROR_TYPES}  # the saved view that shows the boxes of each type
HEADERS = {"cls": "Cls", "loc": "Loc", "both": "Both", "dupe": "Dupe", "bkg": "Bkg", "missed": "Miss",
           "false_pos": "FP", "false_neg": "FN"}
NAME_WIDTH, COL_WIDTH = 16, 6  # 16 + 1 + 9 x 7 = 80 columns


def reading(result: ErrorBreakdown) -> str:
    """The largest cost in AP50 points and the view that shows those boxes, in one sentence.

    For example "localisation errors cost 6.6 AP50, most in class RBC (9.1): open view error_loc"."""
    overall = result.overall
    if overall.ap is None:
        return "no boxes to type: no ground truth and no predictions"
    costs = {t: overall.dap[t] or 0.0 for t in ERROR_TYPES}
    worst = max(ERROR_TYPES, key=lambda t: costs[t])  # the first in TIDE's order on a tie
    if round(costs[worst], 1) <= 0.0:
        return f"no error type costs 0.1 AP50 or more (AP50 {overall.ap:.1f})"
    verb = "costs" if worst == "missed" else "cost"
    where = ""
    per_class = {n: c.dap[worst] for n, c in result.per_class.items() if c.dap[worst] is not None}
    if len(per_class) > 1:
        name = max(per_class, key=lambda n: per_class[n])
        where = f", most in class {name} ({per_class[name]:.1f})"
    return f"{LABELS[worst]} {verb} {costs[worst]:.1f} AP50{where}: open view {VIEWS[worst]}"


def _num(value: float | None) -> str:
    return f"{value:>{COL_WIDTH}.1f}" if value is not None else f"{'-':>{COL_WIDTH}}"


def _row(name: str, costs: ErrorCosts) -> str:
    cells = [_num(costs.ap)] + [_num(costs.dap[t]) for t in (*ERROR_TYPES, *SPECIAL)]
    label = name if len(name) <= NAME_WIDTH else name[: NAME_WIDTH - 1] + "~"
    return f"{label:<{NAME_WIDTH}} " + " ".join(cells)


def table(result: ErrorBreakdown) -> str:
    """dAP50 per error type (each fixed alone, TIDE's oracle) and the two bounds: overall, per class, per size.

    Lines of at most 80 characters; "-" where a class or size has no box."""
    cols = ["AP50"] + [HEADERS[t] for t in (*ERROR_TYPES, *SPECIAL)]
    head = f"{'dAP50 (TIDE)':<{NAME_WIDTH}} " + " ".join(f"{c:>{COL_WIDTH}}" for c in cols)
    lines = [head, _row("all", result.overall)]
    lines += [_row(f"  {name}", costs) for name, costs in result.per_class.items()]
    lines += [_row(f"  size {name}", costs) for name, costs in result.per_size.items()]
    counts = result.overall.counts
    lines.append("boxes: " + ", ".join(f"{HEADERS[t]} {counts[t]:,}" for t in ERROR_TYPES))
    return "\n".join(lines)
