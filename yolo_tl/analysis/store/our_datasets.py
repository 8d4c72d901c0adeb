"""The FiftyOne datasets yolo-tl makes: open FiftyOne with its database up, list ours, delete ours.

Datasets made here carry the dataset tag ``yolo-tl`` (and ``info["yolo_tl"]``), so
``list_datasets`` / ``delete_dataset`` only ever touch ours. ``list_datasets`` also removes the
temporary datasets of analyze runs that were killed (see ``swap.py``).
"""

from __future__ import annotations

from typing import Any

from yolo_tl.errors import OutputError

TAG = "yolo-tl"


def open_fiftyone() -> Any:
    """Import fiftyone with its database up, or raise DatabaseError with the fix."""
    from yolo_tl.analysis.store.mongod import check_database

    check_database()
    import fiftyone as fo

    return fo


def is_ours(dataset: Any) -> bool:
    return TAG in (dataset.tags or []) or "yolo_tl" in (dataset.info or {})


def list_datasets() -> list[dict[str, Any]]:
    """The FiftyOne datasets made by yolo-tl, with what they were made from."""
    from yolo_tl.analysis.store.dataset_swap import clean_leftovers, is_temporary

    fo = open_fiftyone()
    clean_leftovers(fo)  # of runs that are gone (killed); never those of a live run
    rows = []
    for name in fo.list_datasets(tags=TAG):
        if is_temporary(name):  # a run still building or swapping
            continue
        ds = fo.load_dataset(name)
        info = dict(ds.info.get("yolo_tl", {}))
        rows.append({"name": name, "samples": len(ds), **info})
    return rows


def delete_dataset(name: str) -> None:
    """Delete one dataset made by yolo-tl; refuse anything else."""
    fo = open_fiftyone()
    if not fo.dataset_exists(name):
        raise OutputError(f"no FiftyOne dataset named '{name}'", hint="see: yolo-tl datasets list")
    ds = fo.load_dataset(name)
    if not is_ours(ds):
        raise OutputError(f"dataset '{name}' was not made by yolo-tl; not deleting it")
    ds.delete()
