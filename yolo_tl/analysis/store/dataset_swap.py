"""Build a FiftyOne dataset beside the one it replaces, then swap it in: never a half-built dataset.

- The new dataset is built as ``NAME-building-HOST-PID-MS``: the name says which run owns it.
- The swap (old one set aside as ``NAME-replaced-HOST-PID-MS``, new one renamed to ``NAME``, old
  one deleted) runs under a lock and with Ctrl-C / SIGTERM held back until it is done, so the name
  always points to one complete dataset; an interrupt before the swap deletes the new one and leaves
  the earlier dataset as it was.
- The lock is a document in the FiftyOne database itself (collection ``yolo_tl_locks``), so it also
  holds between machines that share one MongoDB server. Two runs of one name both finish; the
  later swap wins and the name holds one complete dataset.
- After a SIGKILL, the leftovers of runs that are gone are cleaned up by the next ``analyze`` or
  ``datasets list`` on the same host (a process id is only meaningful there); leftovers of a run
  that is still alive, or of another host, are never touched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from yolo_tl.errors import DatabaseError, OutputError
from yolo_tl.files import pid_alive

log = logging.getLogger(__name__)

LOCKS = "yolo_tl_locks"
LOCK_WAIT_S = 600.0
_LEFTOVER = re.compile(r"^(?P<name>.+)-(?P<kind>building|replaced)-(?P<host>[A-Za-z0-9-]+)-(?P<pid>\d+)-(?P<ms>\d+)$")


def host_tag() -> str:
    """This machine's name as it appears in temporary dataset names."""
    return re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname()).strip("-") or "host"


def temp_name(name: str, kind: str = "building") -> str:
    return f"{name}-{kind}-{host_tag()}-{os.getpid()}-{int(time.time() * 1000)}"


def parse_leftover(dataset_name: str) -> dict[str, Any] | None:
    """The parts of a temporary name (name, kind, host, pid), or None for an ordinary name."""
    m = _LEFTOVER.match(dataset_name)
    if not m:
        return None
    return {"name": m["name"], "kind": m["kind"], "host": m["host"], "pid": int(m["pid"])}


def is_temporary(dataset_name: str) -> bool:
    return parse_leftover(dataset_name) is not None


def _run_gone(parts: dict[str, Any]) -> bool:
    """True only when the run is known to be gone: same host and its pid no longer exists."""
    return parts["host"] == host_tag() and parts["pid"] != os.getpid() and not pid_alive(parts["pid"])


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold back SIGINT and SIGTERM for the block, then act on them (KeyboardInterrupt) once it ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if received:
            raise KeyboardInterrupt


def clean_leftovers(fo: Any, name: str | None = None) -> list[str]:
    """Delete (or put back) the temporary datasets of runs that are gone; return what was done."""
    done = []
    for ds_name in fo.list_datasets():
        parts = parse_leftover(ds_name)
        if parts is None or (name is not None and parts["name"] != name) or not _run_gone(parts):
            continue
        try:
            if parts["kind"] == "replaced" and not fo.dataset_exists(parts["name"]):
                # killed between setting the old dataset aside and renaming the new one: put it back
                fo.load_dataset(ds_name).name = parts["name"]
                done.append(f"restored {parts['name']} from {ds_name}")
            else:
                fo.load_dataset(ds_name).delete()
                done.append(f"deleted {ds_name}")
        except Exception as err:  # noqa: BLE001  (another process may be cleaning the same one)
            log.debug("could not clean %s: %s", ds_name, err)
            continue
        log.info("leftover of run %s on %s (gone): %s", parts["pid"], parts["host"], done[-1])
    return done


@contextlib.contextmanager
def name_lock(name: str, *, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """Hold the database-wide lock on dataset ``name`` (waits for another run to release it)."""
    import pymongo.errors

    from yolo_tl._upstream.fiftyone import database_collection

    coll = database_collection(LOCKS)
    me = {"_id": name, "host": host_tag(), "pid": os.getpid(), "since": time.time()}
    deadline = time.monotonic() + wait_s
    while True:
        try:
            coll.insert_one(me)
            break
        except pymongo.errors.DuplicateKeyError:
            holder = coll.find_one({"_id": name}) or {}
            if holder and _run_gone(holder):
                coll.delete_one({"_id": name, "pid": holder["pid"], "host": holder["host"]})
                continue
            if time.monotonic() > deadline:
                raise OutputError(f"FiftyOne dataset '{name}' is being replaced by run {holder.get('pid')} on "
                                  f"{holder.get('host')}; waited {wait_s:g} s", hint="try again later") from None
            time.sleep(0.2)
    try:
        yield
    finally:
        coll.delete_one({"_id": name, "pid": me["pid"], "host": me["host"]})


def _set_aside(old: Any, aside: str) -> None:
    """Rename the dataset being replaced (kept whole until the new one holds the name)."""
    old.name = aside


def _swap(fo: Any, ds: Any, name: str, is_ours: Any) -> None:
    """Rename ``ds`` to ``name``; the dataset that held the name is set aside, then deleted."""
    with name_lock(name):
        aside = None
        if fo.dataset_exists(name):
            old = fo.load_dataset(name)
            if not is_ours(old):
                raise OutputError(f"FiftyOne dataset '{name}' exists and was not made by yolo-tl",
                                  hint="choose another --name")
            aside = temp_name(name, "replaced")
            _set_aside(old, aside)
        try:
            ds.name = name
        except BaseException:
            if aside is not None:  # put the earlier dataset back under its name
                with contextlib.suppress(Exception):
                    fo.load_dataset(aside).name = name
            raise
    if aside is not None:  # the new dataset holds the name: deleting the old one may fail harmlessly
        try:
            fo.load_dataset(aside).delete()
        except Exception as err:  # noqa: BLE001  (a full disk, a lost connection: the next run cleans up)
            log.warning("could not delete the replaced dataset %s (%s); the next analyze or datasets list "
                        "removes it", aside, " ".join(str(err).split())[:200])


def _delete_quietly(fo: Any, ds_name: str) -> None:
    try:
        if fo.dataset_exists(ds_name):
            fo.load_dataset(ds_name).delete()
    except Exception as err:  # noqa: BLE001  (the database may be the problem; the next run cleans up)
        log.warning("could not delete the partial dataset %s (%s); the next analyze removes it", ds_name, err)


@contextlib.contextmanager
def building(fo: Any, name: str, *, is_ours: Any) -> Iterator[Any]:
    """Yield a new persistent dataset to fill; when the block ends, it becomes ``name``.

    On any error or interrupt in the block the new dataset is deleted and ``name`` is left as it
    was. A database that fails mid-way becomes one DatabaseError line.
    """
    import pymongo.errors

    clean_leftovers(fo, name)
    tmp = temp_name(name)
    try:
        ds = fo.Dataset(tmp, persistent=True)
        yield ds
        with signals_held():
            _swap(fo, ds, name, is_ours)
    except BaseException as err:
        with signals_held():
            _delete_quietly(fo, tmp)
        if isinstance(err, pymongo.errors.PyMongoError):
            raise DatabaseError(f"FiftyOne's database failed while building '{name}': "
                                f"{' '.join(str(err).split())[:200]}",
                                hint="check the MongoDB server; the earlier dataset is unchanged") from err
        raise
