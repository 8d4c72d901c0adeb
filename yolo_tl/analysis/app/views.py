"""Saved views that answer "what went wrong" at a glance, their sample tags, and the App's colours.

Every prediction down to ``--conf`` stays in the dataset for the metrics, but the views show a
person only the predictions at or above ``show_conf`` (300 boxes per image at conf 0.001 hide
everything), and the dataset's colour scheme paints each box by its ``eval`` outcome. The
``error_<type>`` views (TIDE's error types) hold only the boxes of their type; the App opens them
with ``error_color_scheme`` (boxes by ``error_type``), see ``app/launch.py``; suggested label fixes keep
their own colours in every view (``suspects_view``).
"""

from __future__ import annotations

from typing import Any

from yolo_tl.analysis.app.suspects_view import with_suspects
from yolo_tl.analysis.collect import EVAL_KEY, GT, PRED
from yolo_tl.analysis.store.label_suspects import FIELD as SUSPECTS_FIELD

# Okabe-Ito colours (told apart by colour-blind eyes too): tp bluish green, fp vermillion, fn blue
OUTCOME_COLORS = {"tp": "#009E73", "fp": "#D55E00", "fn": "#0072B2"}
DEFAULT_VIEW = "worst_samples"  # the App opens on it
# Okabe-Ito again, one colour per TIDE error type (a missed GT box keeps the fn blue)
ERROR_COLORS = {"loc": "#E69F00", "cls": "#CC79A7", "dupe": "#F0E442", "bkg": "#D55E00", "both": "#56B4E9",
                "missed": "#0072B2"}
ERROR_VIEW_PREFIX = "error_"


def save_views(ds: Any, names: list[str], high_conf: float, worst_k: int, show_conf: float = 0.0) -> dict[str, int]:
    """Saved views + sample tags. Returns {view name: number of samples}."""
    from fiftyone import ViewField as F

    shown = ds.filter_labels(PRED, F("confidence") >= show_conf, only_matches=False)
    fp_conf = (F("eval") == "fp") & (F("confidence") >= max(high_conf, show_conf))
    views = {
        DEFAULT_VIEW: shown.match(F("errors") > 0).sort_by("errors", reverse=True).limit(worst_k),
        "fp_high_conf": ds.filter_labels(PRED, fp_conf).sort_by(F(f"{PRED}.detections").length(), reverse=True),
        "false_negatives": shown.filter_labels(GT, F("eval") == "fn").sort_by("eval_fn", reverse=True),
        "shown_predictions": shown,
    }
    for t in ERROR_COLORS:  # error_<type>: the boxes of that type only (predictions >= show_conf)
        views[f"{ERROR_VIEW_PREFIX}{t}"] = error_view(ds, t, show_conf)
    if len(names) <= 20:  # one "missed_<class>" view per class that has misses
        for c in names:
            v = shown.filter_labels(GT, (F("eval") == "fn") & (F("label") == c))
            if len(v):
                views[f"missed_{c}"] = v
    tags = {"fp_high_conf": "fp_high_conf", "false_negatives": "missed", DEFAULT_VIEW: "worst"}
    counts = {}
    for name, view in views.items():
        n = len(view)
        counts[name] = n
        desc = f"yolo-tl: {name.replace('_', ' ')}; predictions >= {show_conf} shown"
        ds.save_view(name, view, description=desc, overwrite=True)
        if name in tags and n:
            view.tag_samples(tags[name])
    return counts


def error_view(ds: Any, error_type: str, show_conf: float) -> Any:
    """The samples with a box of ``error_type`` (a prediction >= ``show_conf``, or a GT box), showing only
    the boxes of that type in both fields (a GT box is ``loc`` / ``cls`` when such an error points at it)."""
    from fiftyone import ViewField as F

    pred = (F("error_type") == error_type) & (F("confidence") >= show_conf)
    gt = F("error_type") == error_type
    view = ds.filter_labels(PRED, pred, only_matches=False).filter_labels(GT, gt, only_matches=False)
    return view.match((F(f"{PRED}.detections").length() > 0) | (F(f"{GT}.detections").length() > 0))


def color_scheme() -> Any:
    """Boxes coloured by their evaluation outcome, in both label fields."""
    import fiftyone as fo

    def by_outcome(path: str, outcomes: tuple[str, ...]) -> dict:
        return {"path": path, "colorByAttribute": EVAL_KEY,
                "valueColors": [{"value": o, "color": OUTCOME_COLORS[o]} for o in outcomes]}

    return fo.ColorScheme(color_by="value", fields=[by_outcome(PRED, ("tp", "fp")), by_outcome(GT, ("tp", "fn"))])


def error_color_scheme() -> Any:
    """Boxes coloured by their TIDE error type (``ERROR_COLORS``), in both label fields."""
    import fiftyone as fo

    colors = [{"value": t, "color": c} for t, c in ERROR_COLORS.items()]
    return fo.ColorScheme(color_by="value", fields=[{"path": p, "colorByAttribute": "error_type",
                                                     "valueColors": colors} for p in (PRED, GT)])


def scheme_for(ds: Any, view: str | None) -> Any:
    """The colour scheme a saved view of ``ds`` opens with: by error type for ``error_*`` views, else by
    outcome; where ``ds`` holds suggested label fixes, those by their kind in every view."""
    scheme = error_color_scheme() if view and view.startswith(ERROR_VIEW_PREFIX) else color_scheme()
    return with_suspects(scheme) if ds.has_sample_field(SUSPECTS_FIELD) else scheme


def style_app(ds: Any) -> None:
    """Store the outcome colour scheme with the dataset (the App applies it on open), and declare the
    boxes' ``error_type`` in the schema: the App colours only by a declared attribute."""
    import fiftyone as fo

    for path in (f"{PRED}.detections.error_type", f"{GT}.detections.error_type"):
        if ds.get_field(path) is None:
            ds.add_sample_field(path, fo.StringField)
    ds.app_config.color_scheme = color_scheme()
    ds.save()
