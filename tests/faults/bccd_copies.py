"""Copies of the real BCCD dataset (../shared, Pascal VOC) with chosen photos damaged (not a test module).

The annotations and split lists are copied, the photos hard-linked (copied across filesystems); a
damaged photo is a new file, so ../shared is never written.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

SPLITS = ("train", "val", "test")


def cut_end_marker(data: bytes) -> bytes:
    """A real photo without its last two bytes, the JPEG end marker FF D9."""
    assert data[-2:] == b"\xff\xd9", "not a complete JPEG"
    return data[:-2]


def bccd_copy(bccd_root: Path, dst: Path, *, damage: dict[str, Callable[[bytes], bytes]] | None = None,
              per_split: dict[str, int] | None = None) -> Path:
    """``dst`` as a VOC folder like ``bccd_root`` (Annotations, ImageSets/Main, JPEGImages).

    ``per_split``: keep only the first N ids of each split list (all when None); ``damage``: image id ->
    function of the photo's bytes, written as the copy's bytes.
    """
    damage = damage or {}
    main = bccd_root / "ImageSets" / "Main"
    ids = {s: (main / f"{s}.txt").read_text().split() for s in SPLITS}
    if per_split is not None:
        ids = {s: ids[s][:per_split.get(s, 0)] for s in SPLITS}
        for stem in damage:  # a damaged photo is always part of the copy
            if not any(stem in v for v in ids.values()):
                split = next(s for s in SPLITS if stem in (main / f"{s}.txt").read_text().split())
                ids[split].append(stem)
    (dst / "ImageSets" / "Main").mkdir(parents=True)
    (dst / "Annotations").mkdir()
    (dst / "JPEGImages").mkdir()
    for split in SPLITS:
        (dst / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids[split]))
    (dst / "ImageSets" / "Main" / "trainval.txt").write_text("".join(f"{i}\n" for i in ids["train"] + ids["val"]))
    for stem in (i for s in SPLITS for i in ids[s]):
        shutil.copyfile(bccd_root / "Annotations" / f"{stem}.xml", dst / "Annotations" / f"{stem}.xml")
        src, out = bccd_root / "JPEGImages" / f"{stem}.jpg", dst / "JPEGImages" / f"{stem}.jpg"
        if stem in damage:
            out.write_bytes(damage[stem](src.read_bytes()))
            continue
        try:
            os.link(src, out)
        except OSError:
            shutil.copyfile(src, out)
    return dst
