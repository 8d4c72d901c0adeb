"""The ``label_suspects`` saved view, its ``suspect`` sample tag, and the suggestions' colours in the App.

The suggestions (``store/label_suspects.py``) are coloured by kind in colours apart from the outcome
colours of the predictions and labels (``views.OUTCOME_COLORS``), so a suggested box is never read as
a prediction or a label.
"""

from __future__ import annotations

from typing import Any

from yolo_tl.analysis.collect import PRED
from yolo_tl.analysis.store.label_suspects import FIELD, SAMPLE_TAG, SCORE_FIELD

VIEW = "label_suspects"
# the Okabe-Ito colours the outcomes leave free: orange, reddish purple, sky blue, yellow
KIND_COLORS = {"missing": "#E69F00", "wrong_class": "#CC79A7", "badly_placed": "#56B4E9", "spurious": "#F0E442"}


def save_suspects_view(ds: Any, show_conf: float = 0.0) -> int:
    """Save ``label_suspects`` (samples with a suggestion, best score first) and tag them; returns how many."""
    from fiftyone import ViewField as F

    shown = ds.filter_labels(PRED, F("confidence") >= show_conf, only_matches=False)
    view = shown.match(F(f"{FIELD}.detections").length() > 0).sort_by(SCORE_FIELD, reverse=True)
    ds.save_view(VIEW, view, overwrite=True,
                 description=f"yolo-tl: likely label mistakes ({FIELD}: suggested fixes), best score first; "
                             f"predictions >= {show_conf} shown")
    n = len(view)
    if n:
        view.tag_samples(SAMPLE_TAG)
    return n


def style_suspects(ds: Any) -> None:
    """Add the suggestions' colours (by ``kind``) to the dataset's colour scheme, keeping the rest."""
    import fiftyone as fo

    entry = {"path": FIELD, "colorByAttribute": "kind",
             "valueColors": [{"value": k, "color": c} for k, c in KIND_COLORS.items()]}
    scheme = ds.app_config.color_scheme or fo.ColorScheme(color_by="value")
    fields = [f for f in (scheme.fields or []) if f.get("path") != FIELD]
    scheme.fields = [*fields, entry]
    ds.app_config.color_scheme = scheme
    ds.save()
