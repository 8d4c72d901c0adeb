"""FiftyOne's database cannot be reached: analyze, app, datasets and doctor end in one line with the fix.

Each command runs in its own process with ``FIFTYONE_DATABASE_URI`` pointing at a loopback port
nothing listens on (so this session's own database connection is untouched). FiftyOne alone would
wait pymongo's 30 s server selection and end in a traceback; the commands must answer within 30 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, database_env, free_port
from tests.helpers.corpus_builders import tree_fingerprint


def closed_port() -> int:
    """A loopback port that was free a moment ago (bound, then released: nothing listens on it)."""
    return free_port()


def child_env(uri: str) -> dict[str, str]:
    return database_env(uri, NO_COLOR="1")


def run_all(commands: dict[str, list[str]], env: dict[str, str], timeout: float = 30.0) -> dict:
    """Start every command at once (they wait on the network, not the CPU); each must end in ``timeout``."""
    procs = {k: subprocess.Popen([sys.executable, "-m", "yolo_tl", *args], env=env, cwd=REPO,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k, args in commands.items()}
    out = {}
    for k, p in procs.items():
        try:
            stdout, stderr = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs.values():
                q.kill()
            pytest.fail(f"{k}: still waiting for the database after {timeout} s")
        out[k] = (p.returncode, stdout, stderr)
    return out


@pytest.mark.slow
def test_unreachable_database_one_line_with_the_fix(tiny_yolo_data: Path, tiny_base_weights: Path) -> None:
    port = closed_port()
    uri = f"mongodb://team:s3cret@127.0.0.1:{port}/?authSource=admin"
    before = tree_fingerprint(tiny_yolo_data.parent)
    results = run_all({
        "analyze": ["analyze", str(tiny_yolo_data), "--weights", str(tiny_base_weights), "--imgsz", "64",
                    "--name", "never-made", "--no-ultralytics-val"],
        "app": ["app", "some-dataset", "--port", str(closed_port())],
        "datasets list": ["datasets", "list"],
        "datasets delete": ["datasets", "delete", "some-dataset"],
        "doctor": ["doctor", "--json", "--no-online"],
    }, child_env(uri))
    rc, stdout, _ = results["doctor"]
    check = next(c for c in json.loads(stdout)["checks"] if c["name"] == "FiftyOne database")
    assert check["status"] == "fail" and "start that MongoDB server" in check["fix"], check
    for cmd, (rc, stdout, stderr) in results.items():
        text = stdout + stderr
        assert rc == 1, (cmd, rc, text)
        assert "Traceback" not in text and "s3cret" not in text, (cmd, text)  # no password either
        assert f"127.0.0.1:{port}" in text and "cannot be reached" in text, (cmd, text)
        assert "FIFTYONE_DATABASE_URI" in text, (cmd, text)
        if cmd != "doctor":  # doctor reports in its table (here JSON); the others in one error line
            lines = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
            assert len(lines) == 1 and "start that MongoDB server or fix FIFTYONE_DATABASE_URI" in lines[0], text
    assert tree_fingerprint(tiny_yolo_data.parent) == before


@pytest.mark.slow
def test_malformed_uri_is_named() -> None:
    results = run_all({"datasets list": ["datasets", "list"]}, child_env("mongodb://127.0.0.1:notaport"))
    rc, stdout, stderr = results["datasets list"]
    assert rc == 1 and "Traceback" not in stderr
    assert "invalid FIFTYONE_DATABASE_URI 'mongodb://127.0.0.1:notaport'" in stderr, stderr


def test_missing_mongod_names_the_fix(monkeypatch) -> None:
    """No URI and no mongod binary (an offline install whose MongoDB download failed)."""
    from yolo_tl.analysis.store import mongod as database
    from yolo_tl.errors import DatabaseError

    monkeypatch.delenv("FIFTYONE_DATABASE_URI", raising=False)
    monkeypatch.setattr(database, "find_mongod", lambda: None)
    with pytest.raises(DatabaseError) as err:
        database.check_database()
    assert "mongod) is not installed" in str(err.value) and database.FALLBACK_DB_PACKAGE in str(err.value)


@pytest.mark.parametrize("uri, shown", [
    ("mongodb://bob:pw@db.example:27017/fo", "mongodb://bob:***@db.example:27017/fo"),
    ("mongodb+srv://bob:p%40ss@cluster0.example/?retryWrites=true", "mongodb+srv://bob:***@cluster0.example/?retryWrites=true"),
    ("mongodb://db.example:27017", "mongodb://db.example:27017"),
])
def test_passwords_never_printed(uri: str, shown: str) -> None:
    from yolo_tl.analysis.store.mongod import redact_uri

    assert redact_uri(uri) == shown
