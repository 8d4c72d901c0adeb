"""Saved views that answer "what went wrong" at a glance, and the sample tags that go with them."""

from __future__ import annotations

from typing import Any

from yolo_tl.analysis.labels import GT, PRED


def save_views(ds: Any, names: list[str], high_conf: float, worst_k: int) -> dict[str, int]:
    """Saved views + sample tags. Returns {view name: number of samples}."""
    from fiftyone import ViewField as F

    fp_conf = (F("eval") == "fp") & (F("confidence") >= high_conf)
    views = {
        "fp_high_conf": ds.filter_labels(PRED, fp_conf).sort_by(
            F(f"{PRED}.detections").length(), reverse=True),
        "false_negatives": ds.filter_labels(GT, F("eval") == "fn").sort_by("eval_fn", reverse=True),
        "worst_samples": ds.match(F("errors") > 0).sort_by("errors", reverse=True).limit(worst_k),
    }
    if len(names) <= 20:  # one "missed_<class>" view per class that has misses
        for c in names:
            v = ds.filter_labels(GT, (F("eval") == "fn") & (F("label") == c))
            if len(v):
                views[f"missed_{c}"] = v
    tags = {"fp_high_conf": "fp_high_conf", "false_negatives": "missed", "worst_samples": "worst"}
    counts = {}
    for name, view in views.items():
        n = len(view)
        counts[name] = n
        ds.save_view(name, view, description=f"yolo-tl: {name.replace('_', ' ')}", overwrite=True)
        if name in tags and n:
            view.tag_samples(tags[name])
    return counts
