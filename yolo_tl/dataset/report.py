"""What prepare did, in numbers: per split, per class, and everything dropped, clipped or skipped."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from yolo_tl.errors import YoloTLError

MAX_EXAMPLES = 20


@dataclass
class PrepareReport:
    source: str = ""
    out: str = ""
    format: str = ""
    layout: str = ""
    classes: list[str] = field(default_factory=list)
    split_origin: str = ""
    splits: dict[str, dict] = field(default_factory=dict)
    boxes_dropped: Counter = field(default_factory=Counter)  # reason -> boxes
    boxes_clipped: int = 0
    images_dropped: Counter = field(default_factory=Counter)  # reason -> images
    skipped: list[dict[str, str]] = field(default_factory=list)  # files/items skipped on error
    size_mismatches: list[dict] = field(default_factory=list)
    renamed: list[dict[str, str]] = field(default_factory=list)
    links: Counter = field(default_factory=Counter)
    exif: Counter = field(default_factory=Counter)  # turned | shown | unknown | kept -> images
    images_verified: int = 0  # images whose pixels --verify-images decoded (0: not asked)
    examples: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    # -- recording -------------------------------------------------------------------------
    def drop_box(self, reason: str, example: str) -> None:
        self.boxes_dropped[reason] += 1
        self._example(reason, example)

    def drop_image(self, reason: str, example: str) -> None:
        self.images_dropped[reason] += 1
        self._example(reason, example)

    def exif_case(self, case: str, example: str) -> None:
        """One image with an EXIF orientation: how its boxes were fitted to the shown frame."""
        self.exif[case] += 1
        self._example(f"exif_{case}", example)

    def skip(self, err: YoloTLError) -> None:
        self.skipped.append({"path": err.path or "", "field": err.field or "", "reason": err.reason})

    def _example(self, reason: str, example: str) -> None:
        bucket = self.examples.setdefault(reason, [])
        if len(bucket) < MAX_EXAMPLES:
            bucket.append(example)

    def add_image(self, split: str, labels: list[str]) -> None:
        s = self.splits.setdefault(split, {"images": 0, "boxes": 0, "backgrounds": 0,
                                           "per_class": {c: 0 for c in self.classes}})
        s["images"] += 1
        s["boxes"] += len(labels)
        if not labels:
            s["backgrounds"] += 1
        for label in labels:
            s["per_class"][label] += 1

    # -- totals ----------------------------------------------------------------------------
    @property
    def images(self) -> int:
        return sum(s["images"] for s in self.splits.values())

    @property
    def boxes(self) -> int:
        return sum(s["boxes"] for s in self.splits.values())

    def boxes_per_class(self) -> dict[str, int]:
        total = Counter({c: 0 for c in self.classes})
        for s in self.splits.values():
            total.update(s["per_class"])
        return dict(total)

    @property
    def data_yaml(self) -> str:
        return f"{self.out}/data.yaml"

    def to_dict(self) -> dict:
        order = ("train", "val", "test")
        return {
            "source": self.source,
            "out": self.out,
            "data_yaml": self.data_yaml,
            "format": self.format,
            "layout": self.layout,
            "classes": list(self.classes),
            "split_origin": self.split_origin,
            "splits": {k: self.splits[k] for k in order if k in self.splits},
            "totals": {"images": self.images, "boxes": self.boxes,
                       "boxes_per_class": self.boxes_per_class()},
            "boxes_dropped": dict(sorted(self.boxes_dropped.items())),
            "boxes_clipped": self.boxes_clipped,
            "images_dropped": dict(sorted(self.images_dropped.items())),
            "skipped": self.skipped,
            "size_mismatches": self.size_mismatches,
            "renamed": self.renamed,
            "links": dict(sorted(self.links.items())),
            "images_verified": self.images_verified,
            "exif": {k: self.exif[k] for k in ("turned", "shown", "unknown", "kept") if k in self.exif},
            "examples": {k: self.examples[k] for k in sorted(self.examples)},
            "notes": self.notes,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"
