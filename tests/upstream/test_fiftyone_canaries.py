"""Canaries: one per place yolo-tl leans on FiftyOne internals (``yolo_tl/_upstream/fiftyone.py``).

Each test checks that the upstream name still exists with the shape we rely on (the attribute, the
parameters we pass, the stored document layout, the steps of the function we reproduce) and fails
with a message naming it. None starts the database: the stored documents themselves are compared
with FiftyOne's own in tests/test_fiftyone_bulk.py and tests/test_evaluation.py. pyproject.toml
bounds FiftyOne to the minor versions these pass on; before allowing a new release, run
``pytest tests/upstream`` against it.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


@pytest.fixture(scope="module")
def fo():
    import fiftyone

    return fiftyone


def _source(obj) -> str:
    return inspect.getsource(obj)


def _params(fn) -> list[str]:
    return list(inspect.signature(fn).parameters)


def test_the_installed_fiftyone_is_inside_the_bound_pyproject_declares():
    import fiftyone
    from packaging.requirements import Requirement

    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    req = next(Requirement(d) for d in deps if Requirement(d).name == "fiftyone")
    assert any(s.operator == "<" for s in req.specifier), f"no upper bound on fiftyone: {req}"
    assert fiftyone.__version__ in req.specifier, (fiftyone.__version__, str(req))


# --- the database ---
def test_database_and_connect_use_get_db_conn_and_get_db_client(fo):
    """database(), database_collection(), connect_database(): fiftyone.core.odm.database's two getters."""
    import fiftyone.core.odm.database as fod

    for name in ("get_db_conn", "get_db_client"):
        fn = getattr(fod, name, None)
        assert callable(fn) and _params(fn) == [], f"fiftyone.core.odm.database.{name}() is gone or takes arguments"
    src = _source(fod.get_db_conn)
    assert "fo.config.database_name" in src and "pymongo.database.Database" in src, \
        "get_db_conn no longer returns the pymongo Database of fo.config.database_name"


def test_mongod_path_is_where_fiftyone_starts_mongod(fo):
    import fiftyone.constants as foc
    from fiftyone.core.service import DatabaseService

    from yolo_tl._upstream.fiftyone import mongod_path

    package = Path(fo.__file__).parent
    assert DatabaseService.MONGOD_EXE_NAME == "mongod", "DatabaseService.MONGOD_EXE_NAME changed"
    assert "foc.FIFTYONE_DB_BIN_DIR" in _source(DatabaseService.find_mongod), \
        "DatabaseService.find_mongod no longer looks in fiftyone.constants.FIFTYONE_DB_BIN_DIR"
    if Path(foc.FIFTYONE_DB_BIN_DIR).resolve() != (package / "db" / "bin").resolve():
        pytest.fail(f"fiftyone.constants.FIFTYONE_DB_BIN_DIR is {foc.FIFTYONE_DB_BIN_DIR}, not fiftyone/db/bin")
    exe = Path(foc.FIFTYONE_DB_BIN_DIR) / DatabaseService.MONGOD_EXE_NAME
    assert mongod_path() == (exe if exe.is_file() else None)


# --- a dataset's samples, raw ---
def test_a_dataset_has_its_raw_sample_collection_and_its_name(fo):
    from fiftyone.core.dataset import Dataset

    for name in ("_sample_collection", "_sample_collection_name"):
        assert isinstance(inspect.getattr_static(Dataset, name, None), property), \
            f"fiftyone.core.dataset.Dataset.{name} is gone"


def test_generate_rand_is_fiftyones_default_for_rand(fo):
    import fiftyone.core.odm.sample as fos

    from yolo_tl._upstream.fiftyone import generate_rand

    assert callable(getattr(fos, "_generate_rand", None)), "fiftyone.core.odm.sample._generate_rand is gone"
    assert fos.DatasetSampleDocument._fields["_rand"].default is fos._generate_rand, \
        "DatasetSampleDocument._rand is no longer drawn by _generate_rand"
    values = [generate_rand() for _ in range(200)]
    assert all(0.999 <= v < 1 for v in values) and len(set(values)) > 100


def test_set_label_id_gives_a_detection_that_id(fo):
    from bson import ObjectId

    from yolo_tl._upstream.fiftyone import set_label_id

    oid = ObjectId()
    det = fo.Detection(label="a", bounding_box=[0.1, 0.1, 0.2, 0.2])
    set_label_id(det, oid)
    assert det.id == str(oid) and det.to_mongo()["_id"] == oid, "fo.Detection._id no longer sets its id"


def test_the_sample_document_has_the_keys_the_bulk_writer_writes(fo):
    """SAMPLE_KEYS are DatasetSampleDocument's stored fields (media_reference is left out of a plain image's
    document: tests/test_fiftyone_bulk.py compares the stored documents)."""
    from fiftyone.core.dataset import Dataset
    from fiftyone.core.odm.sample import DatasetSampleDocument

    from yolo_tl._upstream.fiftyone import SAMPLE_KEYS

    stored = {f.db_field or name for name, f in DatasetSampleDocument._fields.items()}
    assert stored == SAMPLE_KEYS | {"media_reference"}, \
        f"DatasetSampleDocument's fields changed: {sorted(stored ^ (SAMPLE_KEYS | {'media_reference'}))}"
    src = _source(Dataset._transform_sample)
    assert "now = datetime.utcnow()" in src and "created_at=now" in src and "last_modified_at=now" in src, \
        "Dataset._transform_sample no longer stamps created_at / last_modified_at with naive UTC now"


def test_the_label_documents_are_what_fiftyone_serialises(fo):
    from yolo_tl._upstream.fiftyone import probes_agree

    assert probes_agree(fo), "fo.Detection / Detections / ImageMetadata .to_mongo() changed shape"


# --- evaluation runs ---
def test_coco_eval_config_parses_as_evaluate_detections_does(fo):
    import fiftyone.utils.eval.coco as fouc
    import fiftyone.utils.eval.detection as foud

    from yolo_tl._upstream.fiftyone import coco_eval_config

    assert _params(foud._parse_config) == ["pred_field", "gt_field", "method", "is_temporal", "kwargs"], \
        "fiftyone.utils.eval.detection._parse_config(pred_field, gt_field, method, is_temporal, **kwargs) changed"
    assert "_parse_config(" in _source(foud.evaluate_detections), "evaluate_detections no longer calls _parse_config"
    config = coco_eval_config("ground_truth", "predictions", 0.5)
    assert type(config) is fouc.COCOEvaluationConfig and config.compute_mAP and config.classwise


def test_the_coco_method_has_the_run_methods_we_call(fo):
    from yolo_tl._upstream.fiftyone import RUN_METHODS, coco_eval_config, has_run_methods

    method = coco_eval_config("ground_truth", "predictions", 0.5).build()
    missing = [m for m in RUN_METHODS if not hasattr(method, m)]
    assert not missing and has_run_methods(method), f"COCOEvaluation lost {missing}"


def test_write_run_results_does_the_steps_of_save_run_results(fo):
    """write_run_results reproduces BaseRun.save_run_results with a streamed GridFS file."""
    from fiftyone.core.odm.runs import RunDocument
    from fiftyone.core.runs import BaseRun
    from mongoengine.fields import FileField, GridFSProxy

    src = _source(BaseRun.save_run_results)
    for step in ("dataset = samples._root_dataset", "run_doc = cls._get_run_doc(samples, key)",
                 "run_doc.results.delete()", "json_util.dumps(run_results.serialize()).encode()",
                 'content_type="application/json"', "run_doc.results_meta = dict(run_results.get_meta() or {})",
                 "getattr(dataset, cls._results_cache_field())", "run_doc.save()"):
        assert step in src, f"BaseRun.save_run_results no longer does: {step}"
    assert isinstance(RunDocument._fields["results"], FileField), "RunDocument.results is no longer a GridFS file"
    for m in ("new_file", "write", "close", "delete"):
        assert callable(getattr(GridFSProxy, m, None)), f"mongoengine GridFSProxy.{m} is gone"


def test_can_register_says_yes_on_this_fiftyone(fo):
    """The whole shape check registered_run.can_register makes (config, results fields, run methods)."""
    from yolo_tl.analysis.store.registered_run import can_register

    assert can_register(), "registered_run.can_register() is False: analyze would fall back to evaluate_detections"


def test_database_service_is_found_through_find_processes_by_args() -> None:
    import fiftyone.core.service as fos
    from fiftyone.service import util as fosu

    assert callable(fosu.find_processes_by_args)
    src = inspect.getsource(fos.MultiClientService.start)
    assert "fosu.find_processes_by_args(self._service_args)" in src, "MultiClientService.start changed"
    assert fos.DatabaseService.service_name == "db" and issubclass(fos.DatabaseService, fos.MultiClientService)
    assert '"--multi"' in inspect.getsource(fos.MultiClientService._service_args.fget)
    assert '"--dbpath"' in inspect.getsource(fos.DatabaseService.command.fget)


def test_failed_start_state_lives_in_the_database_module() -> None:
    import fiftyone.core.odm.database as fod

    assert hasattr(fod, "_db_service") and hasattr(fod, "_client")
    src = inspect.getsource(fod.establish_db_conn)
    assert "_db_service is None" in src and "FIFTYONE_PRIVATE_DATABASE_PORT" in src
