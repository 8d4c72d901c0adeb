"""The ``label_suspects`` saved view, its ``suspect`` sample tag, and the suggestions' colours in the App.

The suggestions (``store/label_suspects.py``) are coloured by kind in colours apart from the outcome
colours of the predictions and labels (``views.OUTCOME_COLORS``), so a suggested box is never read as
a prediction or a label.
"""

from __future__ import annotations

from typing import Any

from yolo_tl.analysis.collect import GT, PRED
from yolo_tl.analysis.store.label_suspects import FIELD, SAMPLE_TAG, SCORE_FIELD

VIEW = "label_suspects"
# the Okabe-Ito colours the outcomes leave free: orange, reddish purple, sky blue, yellow
SAME_BOX = ("wrong_class", "spurious")  # suggestions drawn on their label box itself
KIND_COLORS = {"missing": "#E69F00", "wrong_class": "#CC79A7", "badly_placed": "#56B4E9", "spurious": "#F0E442"}


def save_suspects_view(ds: Any) -> int:
    """Save ``label_suspects`` (samples with a suggestion, best score first) and tag them; returns how many.

    The view shows the labels and the suggestions only: a suggestion is drawn from its evidence (the
    prediction of a missing or badly placed box), so the predictions would draw it twice among hundreds of
    boxes; the other views show them. A wrong-class or spurious suggestion lies exactly on its label box,
    which would hide it, so that label box is left out of the view (a badly placed one stays, to compare).
    """
    from fiftyone import ViewField as F

    kinds, gt_ids = ds.values([f"{FIELD}.detections.kind", f"{FIELD}.detections.gt_id"])
    covered = [g for ks, gs in zip(kinds, gt_ids) for k, g in zip(ks or [], gs or []) if g and k in SAME_BOX]
    view = ds.match(F(f"{FIELD}.detections").length() > 0).exclude_fields(PRED)
    if covered:
        view = view.exclude_labels(ids=covered, fields=GT)
    view = view.sort_by(SCORE_FIELD, reverse=True)
    ds.save_view(VIEW, view, overwrite=True,
                 description=f"yolo-tl: likely label mistakes ({FIELD}: suggested fixes, coloured by kind) "
                             "over the labels, best score first")
    n = len(view)
    if n:
        view.tag_samples(SAMPLE_TAG)
    return n


def with_suspects(scheme: Any) -> Any:
    """``scheme`` with the entry that paints the suggestions by ``kind`` in place of any earlier one (for the
    stored scheme and every view the App is opened on, ``views.scheme_for``)."""
    entry = {"path": FIELD, "colorByAttribute": "kind",
             "valueColors": [{"value": k, "color": c} for k, c in KIND_COLORS.items()]}
    scheme.fields = [*(f for f in (scheme.fields or []) if f.get("path") != FIELD), entry]
    return scheme


def style_suspects(ds: Any) -> None:
    """Add the suggestions' colours (by ``kind``) to the dataset's colour scheme, keeping the rest."""
    import fiftyone as fo

    scheme = with_suspects(ds.app_config.color_scheme or fo.ColorScheme(color_by="value"))
    ds.app_config.color_scheme = scheme
    ds.save()
