"""Every (GT, prediction) match of a split, 48 bytes each in a temporary file, never in memory.

FiftyOne's evaluation results keep one entry per match: the GT and predicted labels, the IoU,
the confidence and both label ids (``ytrue`` / ``ypred`` / ``ious`` / ``confs`` / ``ytrue_ids``
/ ``ypred_ids``), which its report, confusion matrix and the App's Model Evaluation panel read.
As Python tuples that is ~0.5 KiB per match, hundreds of MiB for a split of a few thousand
images: so ``EvaluatedBuilder`` appends each batch's matches here as fixed-size records, and
``json_lists`` turns them back into those JSON lists, a chunk at a time, to stream into the
run's results file (``evaluation_run.register_evaluation``).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

RECORD = np.dtype([("gt", "<i4"), ("pred", "<i4"), ("iou", "<f8"), ("conf", "<f8"),
                   ("gt_id", "u1", (12,)), ("pred_id", "u1", (12,))])
FIELDS = ("ytrue", "ypred", "confs", "ytrue_ids", "ypred_ids", "ious")  # FiftyOne's names
CHUNK = 65536


@contextlib.contextmanager
def _named_on_error() -> Iterator[None]:
    """An OSError of the (nameless) temporary file says where it is (a full disk's message names it)."""
    try:
        yield
    except OSError as err:
        err.filename = err.filename or f"a temporary file in {tempfile.gettempdir()}"
        raise


class MatchStore:
    """Append matches (class indices, -1 for none; ids as ``bson.ObjectId``); read them back as JSON lists."""

    def __init__(self, names: Sequence[str], missing: str = "(none)") -> None:
        self.labels = np.array([*names, missing], dtype=object)  # index -1: FiftyOne's "missing" label
        self._file = tempfile.TemporaryFile(prefix="yolo-tl-matches-")

    def add(self, gt: Sequence[int], pred: Sequence[int], iou: Sequence[float | None],
            conf: Sequence[float | None], gt_id: Sequence[Any], pred_id: Sequence[Any]) -> None:
        n = len(gt)
        if not n:
            return
        rec = np.zeros(n, dtype=RECORD)
        rec["gt"], rec["pred"] = gt, pred
        rec["iou"] = [np.nan if v is None else v for v in iou]
        rec["conf"] = [np.nan if v is None else v for v in conf]
        for key, ids in (("gt_id", gt_id), ("pred_id", pred_id)):
            rec[key] = np.frombuffer(b"".join(b"\0" * 12 if v is None else v.binary for v in ids),
                                     dtype=np.uint8).reshape(n, 12)
        with _named_on_error():
            self._file.write(rec.tobytes())

    def _chunks(self) -> Iterator[np.ndarray]:
        with _named_on_error():
            self._file.flush()
        self._file.seek(0)
        while True:
            rec = np.fromfile(self._file, dtype=RECORD, count=CHUNK)
            if not len(rec):
                return
            yield rec

    def _values(self, field: str, rec: np.ndarray) -> list:
        if field in ("ytrue", "ypred"):
            return self.labels[rec["gt" if field == "ytrue" else "pred"]].tolist()
        if field in ("confs", "ious"):
            v = rec["conf" if field == "confs" else "iou"]
            out = v.tolist()
            for i in np.flatnonzero(np.isnan(v)).tolist():
                out[i] = None
            return out
        has = rec["gt" if field == "ytrue_ids" else "pred"] >= 0
        hexes = np.ascontiguousarray(rec["gt_id" if field == "ytrue_ids" else "pred_id"]).tobytes().hex()
        return [hexes[24 * i:24 * i + 24] if h else None for i, h in enumerate(has.tolist())]

    def json_lists(self, field: str) -> Iterator[str]:
        """``field``'s JSON list (``json.dumps`` of FiftyOne's list, byte for byte), in pieces."""
        yield "["
        first = True
        for rec in self._chunks():
            yield ("" if first else ", ") + json.dumps(self._values(field, rec))[1:-1]
            first = False
        yield "]"

    def close(self) -> None:
        self._file.close()
