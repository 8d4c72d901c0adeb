"""Canaries for yolo_tl/_upstream/fiftyone.py: each fails, naming the FiftyOne name, when FiftyOne moves it."""

from __future__ import annotations

import inspect


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
