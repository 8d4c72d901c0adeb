"""A model's classes matched to a dataset's: one rule for evaluate, export, analyze and keep-classes.

Names are compared as Ultralytics' ``cls_remap`` compares them: stripped, case-insensitive
(:func:`norm_name`). A model that predicts the data's classes in the data's order needs nothing;
one that knows every class of the data by name, and maybe more or in another order (after
``finetune --keep-classes``), is matched by name; anything else would score the wrong classes by
index and is refused in one line that lists the names that differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from yolo_tl.errors import WeightsError

Names = Mapping[int, str] | Sequence[str]
HINT = "use weights fine-tuned on this data.yaml"


def norm_name(name: object) -> str:
    """How Ultralytics' ``cls_remap`` compares class names: stripped, case-insensitive."""
    return str(name).strip().lower()


def as_list(names: Names | None) -> list[str]:
    """Class names in class-id order, from a ``{id: name}`` mapping or a list."""
    if not names:
        return []
    if isinstance(names, Mapping):
        return [str(names[i]) for i in sorted(names)]
    return [str(n) for n in names]


def placeholder_names(names: Names | None) -> bool:
    """Ultralytics' stand-in names ``{0: "0", 1: "1", ...}`` of a model that was given none."""
    return isinstance(names, Mapping) and all(str(k) == str(v) for k, v in names.items())


@dataclass(frozen=True)
class ClassMatch:
    """How the model's class ids line up with the data's: ``data_to_model[data id] = model id``."""

    data_to_model: dict[int, int]
    same_order: bool  # the model predicts exactly the data's classes, in the data's order

    @property
    def model_to_data(self) -> dict[int, int]:
        """Model class id -> data class id; the model's other classes are absent (not in this data)."""
        return {m: d for d, m in self.data_to_model.items()}


def match_classes(model_names: Names | None, data_names: Names, *, path: Path, data_yaml: Path,
                  by_name: bool = True) -> ClassMatch:
    """Match the model's classes to the data's, or raise one WeightsError line naming what differs.

    ``by_name=False`` accepts only the same classes in the same order (export: the exported model
    must predict the data's class ids). A model with placeholder names and as many classes as the
    data is taken as trained on it (Ultralytics gives such names to a model made from a .yaml).
    """
    got, want = as_list(model_names), as_list(data_names)
    identity = {i: i for i in range(len(want))}
    if [norm_name(n) for n in got] == [norm_name(n) for n in want]:
        return ClassMatch(identity, True)
    if placeholder_names(model_names) and len(got) == len(want):
        return ClassMatch(identity, True)
    if by_name:
        lookup = {norm_name(n): i for i, n in enumerate(got)}
        if all(norm_name(n) in lookup for n in want):
            return ClassMatch({d: lookup[norm_name(n)] for d, n in enumerate(want)}, False)
    if len(got) != len(want):
        reason = f"predicts {len(got)} classes {got[:6]} but {data_yaml} has {len(want)} {want[:6]}"
    else:
        diff = [f"{i}: {a!r} vs {b!r}" for i, (a, b) in enumerate(zip(got, want)) if norm_name(a) != norm_name(b)]
        reason = f"class names differ from {data_yaml}: " + ", ".join(diff[:5]) + (" ..." if len(diff) > 5 else "")
    raise WeightsError(reason, path=path, hint=HINT)


def label_renames(model_names: Names | None, data_names: Names, match: ClassMatch) -> dict[str, str] | None:
    """Model label -> data label for the predictions, ``None`` when every label is already the data's.

    A prediction whose label is not a key belongs to a class this data does not have.
    """
    got, want = as_list(model_names), as_list(data_names)
    renames = {got[m]: want[d] for d, m in match.data_to_model.items() if m < len(got)}
    if match.same_order and got == want:
        return None
    return renames
