"""A team MongoDB server: analyze, ``datasets list`` and ``app`` use it when FIFTYONE_DATABASE_URI says so.

The test starts its own ``mongod`` (the binary FiftyOne installs, its own dbpath, a free loopback
port), runs the commands as separate processes pointed at it, and then asks both servers directly
(pymongo) where the data went: into the team server, not into this session's local database.
"""

from __future__ import annotations

import selectors
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import REPO, database_env, free_port, run_yolo_tl

pytestmark = pytest.mark.slow


@pytest.fixture
def team_server(tmp_path: Path):
    from yolo_tl.analysis.store.mongod import find_mongod

    exe = find_mongod()
    if exe is None:
        pytest.skip("FiftyOne's mongod is not installed")
    import pymongo

    port = free_port()
    (tmp_path / "db").mkdir()
    proc = subprocess.Popen([str(exe), "--dbpath", str(tmp_path / "db"), "--port", str(port), "--bind_ip",
                             "127.0.0.1", "--nounixsocket", "--logpath", str(tmp_path / "mongod.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uri = f"mongodb://127.0.0.1:{port}"
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=60000)
    client.admin.command("ping")
    try:
        yield uri, client
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=60)


def app_url(args: list[str], env: dict, timeout: float = 180) -> tuple[str, int, str]:
    """Start ``yolo-tl app``, wait for its URL line, fetch the page, stop it with SIGTERM."""
    p = subprocess.Popen([sys.executable, "-m", "yolo_tl", *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    seen, url, end = [], None, time.monotonic() + timeout
    while url is None and time.monotonic() < end and p.poll() is None:
        if sel.select(timeout=1):
            line = p.stdout.readline()
            seen.append(line)
            if line.startswith("FiftyOne App: "):
                url = line.split()[2]
    try:
        assert url, "".join(seen)
        with urllib.request.urlopen(url, timeout=60) as r:
            status = r.status
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
    return url, status, "".join(seen)


def test_team_server_holds_the_data(team_server, tiny_yolo_data: Path, tiny_base_weights: Path) -> None:
    import fiftyone as fo

    uri, team = team_server
    env = database_env(uri)
    local_before = sorted(fo.list_datasets())  # this session's own database

    r = run_yolo_tl(["analyze", str(tiny_yolo_data), "--weights", str(tiny_base_weights), "--name", "team-ds",
             "--imgsz", "64", "--no-ultralytics-val", "--json"], env)
    assert r.returncode == 0, r.stderr
    listed = run_yolo_tl(["datasets", "list", "--json"], env)
    assert listed.returncode == 0 and '"name": "team-ds"' in listed.stdout, listed.stderr
    url, status, _ = app_url(["app", "team-ds", "--port", str(free_port())], env)
    assert status == 200 and url.split("?")[0].endswith("/datasets/team-ds")

    doc = team["fiftyone"].datasets.find_one({"name": "team-ds"})
    n_val = len(list((tiny_yolo_data.parent / "images" / "val").glob("*.jpg")))
    assert doc is not None and team["fiftyone"][doc["sample_collection_name"]].count_documents({}) == n_val
    assert "team-ds" not in local_before and "team-ds" not in fo.list_datasets()
