"""Ctrl-C, SIGKILL and two runs at once during ``yolo-tl analyze``: the dataset name never breaks.

Each run is a real process (tests/helpers/analyze_driver.py) that sends itself a real signal at a chosen
moment. What is checked comes from the database itself (pymongo on FiftyOne's ``datasets``
collection): which datasets exist, the document id behind a name, and its sample count.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.slow

TEMP_MARKERS = ("-building-", "-replaced-")


def db():
    import fiftyone.core.odm.database as fod

    return fod.get_db_conn()


def snapshot(name: str) -> tuple | None:
    """(document id, sample count, info) of dataset ``name`` as stored, or None when absent."""
    doc = db().datasets.find_one({"name": name})
    if doc is None:
        return None
    n = db()[doc["sample_collection_name"]].count_documents({})
    return doc["_id"], n, doc.get("info", {}).get("yolo_tl")


def names() -> list[str]:
    return sorted(d["name"] for d in db().datasets.find({}, {"name": 1}))


def temporaries(prefix: str) -> list[str]:
    return [n for n in names() if n.startswith(prefix) and any(m in n for m in TEMP_MARKERS)]


def start(mode: str, data: Path, weights: Path, name: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = ["analyze", str(data), "--weights", str(weights), "--name", name, "--imgsz", "64", "--batch", "4",
            "--no-ultralytics-val"]
    return subprocess.Popen([sys.executable, "-m", "tests.helpers.analyze_driver", mode, "--", *args], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(p: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    _, err = p.communicate(timeout=timeout)
    return p.returncode, err


@pytest.fixture(scope="module")
def earlier(tiny_yolo_data: Path, tiny_base_weights: Path):
    """Three datasets made by a normal analyze, each to be hit by one interrupt."""
    import fiftyone as fo

    from yolo_tl.analysis.analyze import analyze

    for n in fo.list_datasets():  # a database kept from an earlier session
        if n.startswith("intr-"):
            fo.load_dataset(n).delete()
    analyze(tiny_yolo_data, weights=tiny_base_weights, name="intr-sigint-build", imgsz=64, batch=4,
            compare_ultralytics=False)
    made = {"sigint-build": snapshot("intr-sigint-build")}
    for mode in ("sigint-swap", "sigkill-swap"):
        fo.load_dataset("intr-sigint-build").clone(f"intr-{mode}", persistent=True)
        made[mode] = snapshot(f"intr-{mode}")
    return made


def test_interrupts_concurrency_and_cleanup(earlier: dict, tiny_yolo_data: Path, tiny_base_weights: Path) -> None:
    from yolo_tl.analysis.store.dataset_swap import host_tag
    from yolo_tl.analysis.store.our_datasets import list_datasets

    n_val = len(list((tiny_yolo_data.parent / "images" / "val").glob("*.jpg")))
    # a leftover of a live run on this host and one of another host: never touched
    sleeper = subprocess.Popen(["sleep", "300"])
    import fiftyone as fo

    live = f"intr-live-building-{host_tag()}-{sleeper.pid}-1"
    remote = "intr-remote-building-otherhost-4242-1"
    for n in (live, remote):
        fo.Dataset(n, persistent=True)

    # all runs at once: three interrupted ones and two that race for one name
    runs = {mode: start(mode, tiny_yolo_data, tiny_base_weights, f"intr-{mode}") for mode in earlier}
    race = [start("slow-swap", tiny_yolo_data, tiny_base_weights, "intr-race") for _ in range(2)]
    results = {mode: finish(p) for mode, p in runs.items()}
    raced = [finish(p) for p in race]

    # Ctrl-C while building: exit 130, one line, the earlier dataset untouched, nothing left behind
    rc, err = results["sigint-build"]
    assert rc == 130 and "Traceback" not in err and err.strip().splitlines()[-1] == "interrupted", err
    assert snapshot("intr-sigint-build") == earlier["sigint-build"]
    assert temporaries("intr-sigint-build") == []

    # Ctrl-C during the swap: held back until the swap is done; the name holds the new, complete dataset
    rc, err = results["sigint-swap"]
    assert rc == 130 and "Traceback" not in err, err
    after = snapshot("intr-sigint-swap")
    assert after[0] != earlier["sigint-swap"][0] and after[1] == n_val and after[2] == earlier["sigint-swap"][2]
    assert temporaries("intr-sigint-swap") == []

    # SIGKILL mid-swap: the process is gone and leaves both kinds of temporary dataset, the new one
    # still "-building-" and the earlier one set aside as "-replaced-"; the name is free
    assert results["sigkill-swap"][0] == -signal.SIGKILL
    left = temporaries("intr-sigkill-swap")
    assert snapshot("intr-sigkill-swap") is None and sorted(n.split("-")[3] for n in left) == ["building", "replaced"]

    # two runs of one name at once: both exit 0, one complete dataset, no leftovers
    assert [rc for rc, _ in raced] == [0, 0], raced
    race_ds = snapshot("intr-race")
    assert race_ds[1] == n_val and race_ds[2]["split"] == "val" and temporaries("intr-race") == []
    sample_coll = db()[db().datasets.find_one({"name": "intr-race"})["sample_collection_name"]]
    assert sample_coll.count_documents({"predictions": {"$exists": True}}) == n_val

    # `datasets list` cleans the dead run's leftovers: its half-made dataset is deleted, the
    # dataset it had set aside is put back under its name; a live run's and another host's stay
    listed = [row["name"] for row in list_datasets()]
    assert temporaries("intr-sigkill-swap") == [] and snapshot("intr-sigkill-swap") == earlier["sigkill-swap"]
    assert live in names() and remote in names()
    assert not [n for n in listed if any(m in n for m in TEMP_MARKERS)] and "intr-race" in listed

    sleeper.kill()
    sleeper.wait()
    time.sleep(0.1)
    list_datasets()  # now the live run is gone too
    assert live not in names() and remote in names()
    fo.load_dataset(remote).delete()
