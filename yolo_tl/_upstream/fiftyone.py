"""Every use of a FiftyOne private name and every patch of FiftyOne: the only place.

FiftyOne starts its local database (a ``service/main.py --51-service db --multi`` process that runs
``mongod --dbpath <database_dir>``) on first connect, or attaches to one that is already running.
Two touch points matter when several processes start at once:

- FiftyOne looks for a running service by those three arguments alone, so it attaches to one of this
  user's services whatever its database folder: a process with ``FIFTYONE_DATABASE_DIR=B`` would
  write into the database of another that runs on A. ``services_of`` limits the search to services
  whose mongod runs on this database folder.
- A failed start leaves ``fiftyone.core.odm.database._db_service`` set, so a second try never starts
  or looks again; ``forget_failed_start`` clears it.

Canaries: tests/faults/test_own_output.py (cold database, two and three processes at once).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any


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
