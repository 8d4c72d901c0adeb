"""A full disk under the output: one line, exit 1, nothing partial left (a small tmpfs as the disk).

Needs root (``mount -t tmpfs``); skipped with the reason elsewhere.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import ultralytics.utils  # noqa: F401  (its log handler binds to stdout now, not to a CliRunner stream closed later)
from typer.testing import CliRunner

from tests.helpers.builders import make_voc_devkit
from tests.helpers.corpus_builders import tree_fingerprint
from yolo_tl.cli import app

RUNNER = CliRunner()


@pytest.fixture
def small_disk(tmp_path: Path):
    """A tmpfs mounted at tmp_path/disk; ``size`` is set by the test through the returned function."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    mounted = []

    def mount(size: str) -> Path:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True,
                           text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({(r.stderr or r.stdout).strip() or r.returncode}); "
                        "run as root to test a full disk")
        mounted.append(mnt)
        return mnt

    yield mount
    for m in mounted:
        if subprocess.run(["umount", str(m)], check=False).returncode:
            subprocess.run(["umount", "-l", str(m)], check=False)  # a file still open there: detach it


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


@pytest.mark.slow
def test_prepare_on_a_full_disk(small_disk, tmp_path: Path) -> None:
    src = make_voc_devkit(tmp_path / "voc", [(f"img{i}", [("cat", 5, 5, 40, 30)]) for i in range(40)])
    disk = small_disk("64k")
    before = tree_fingerprint(src)
    r = RUNNER.invoke(app, ["prepare", str(src), "--out", str(disk / "out")])
    err = r.stderr.strip()
    assert r.exit_code == 1 and "Traceback" not in r.output and len(err.splitlines()) == 1, r.output
    assert "No space left on device" in err, err
    assert files_under(disk) == [] and tree_fingerprint(src) == before


@pytest.mark.slow
def test_finetune_on_a_full_disk(small_disk, tiny_yolo_data: Path) -> None:
    disk = small_disk("1m")  # room for run.json and plots, not for a 6 MB checkpoint
    before = user_files(tiny_yolo_data.parent)
    r = RUNNER.invoke(app, ["finetune", str(tiny_yolo_data), "--weights", "yolov8n.yaml", "--epochs", "1",
                            "--imgsz", "64", "--batch", "4", "--workers", "0", "--project", str(disk / "runs")])
    err = r.stderr.strip().splitlines()
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert err[-1].startswith("error: ") and "no space left on the device" in err[-1], err[-1]
    assert str(disk / "runs" / "train") in err[-1] and "partial run folder was removed" in err[-1]
    assert files_under(disk) == []
    assert user_files(tiny_yolo_data.parent) == before


def user_files(root: Path) -> dict:
    """Every file's bytes and mtime, less the labels/*.cache Ultralytics itself writes beside the labels."""
    return {p.relative_to(root).as_posix(): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix != ".cache"}


# --- analyze: FiftyOne's database disk, the figures folder, the temporary folder ---------------------------
def _analyze_args(data: Path, weights: Path, name: str) -> list[str]:
    return ["analyze", str(data), "--weights", str(weights), "--name", name, "--imgsz", "64", "--no-ultralytics-val"]


def _fill(disk: Path, leave_bytes: int) -> None:
    """One filler file so that ``leave_bytes`` stay free on ``disk``."""
    import os

    st = os.statvfs(disk)
    free = st.f_bavail * st.f_frsize
    with open(disk / "filler", "wb") as f:
        left = max(free - leave_bytes, 0)
        block = b"\0" * 2**20
        while left > 0:
            left -= f.write(block[:min(left, len(block))])


def _snapshot(fo, name: str) -> tuple:
    ds = fo.load_dataset(name)
    ds.reload()
    return (len(ds), sorted(ds.values("id")), sorted(ds.list_evaluations()), ds.info.get("yolo_tl"))


@pytest.mark.slow
def test_analyze_stops_before_the_database_disk_fills(small_disk, tiny_yolo_data: Path, tiny_base_weights: Path,
                                                       tmp_path: Path) -> None:
    """MongoDB's data folder on a nearly full tmpfs: the first analyze succeeds, the second stops with one
    line before inserting anything, the first dataset is intact, and the server survives a checkpoint
    (``fsync``): with a full disk WiredTiger aborts the whole server at its next checkpoint."""
    import signal

    import pymongo

    from tests.helpers import database_env, free_port, run_yolo_tl
    from yolo_tl.analysis.store.mongod import find_mongod

    exe = find_mongod()
    if exe is None:
        pytest.skip("FiftyOne's mongod is not installed")
    disk = small_disk("400m")  # mongod preallocates ~300 MB of journal
    (disk / "db").mkdir()
    port = free_port()
    proc = subprocess.Popen([str(exe), "--dbpath", str(disk / "db"), "--port", str(port), "--bind_ip", "127.0.0.1",
                             "--nounixsocket", "--logpath", str(tmp_path / "mongod.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uri = f"mongodb://127.0.0.1:{port}"
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=60000)
    try:
        client.admin.command("ping")
        env = database_env(uri)
        first = run_yolo_tl(_analyze_args(tiny_yolo_data, tiny_base_weights, "full-db"), env)
        assert first.returncode == 0, first.stderr
        db = client["fiftyone"]

        def state() -> tuple:
            docs = {d["name"]: d for d in db.datasets.find({}, {"name": 1, "sample_collection_name": 1})}
            coll = db[docs["full-db"]["sample_collection_name"]]
            return sorted(docs), sorted(str(d["_id"]) for d in coll.find({}, {"_id": 1}))

        before = state()
        _fill(disk, 30 * 2**20)  # under the 64 MiB analyze keeps free for MongoDB
        again = run_yolo_tl(_analyze_args(tiny_yolo_data, tiny_base_weights, "full-db"), env)
        err = again.stderr.strip().splitlines()
        assert again.returncode == 1 and "Traceback" not in again.stderr + again.stdout, again.stderr
        assert len(err) == 1 and err[0].startswith(f"error: {uri}: FiftyOne's database disk has "), err
        assert "stopped before the disk fills" in err[0] and "earlier dataset" in err[0]
        client.admin.command("fsync")  # a checkpoint now: a server on a full disk would abort here
        client.admin.command("ping")
        assert proc.poll() is None
        assert state() == before and len(before[1]) == 4  # no -building- dataset, the earlier one as it was
    finally:
        client.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


@pytest.fixture
def earlier_analysis(tiny_yolo_data: Path, tiny_base_weights: Path):
    import fiftyone as fo

    name = "test-out-of-disk-analyze"
    r = RUNNER.invoke(app, _analyze_args(tiny_yolo_data, tiny_base_weights, name))
    assert r.exit_code == 0, r.output
    yield fo, name
    if fo.dataset_exists(name):
        fo.delete_dataset(name)


@pytest.mark.slow
def test_analyze_figures_on_a_full_disk(small_disk, earlier_analysis, tiny_yolo_data: Path,
                                        tiny_base_weights: Path) -> None:
    fo, name = earlier_analysis
    before = _snapshot(fo, name)
    disk = small_disk("64k")
    _fill(disk, 0)
    r = RUNNER.invoke(app, [*_analyze_args(tiny_yolo_data, tiny_base_weights, name), "--out", str(disk / "figs")])
    err = r.stderr.strip().splitlines()
    assert r.exit_code == 1 and "Traceback" not in r.output and len(err) == 1, r.output
    assert err[0].startswith("error: no space left on the device while writing ") and str(disk / "figs") in err[0]
    assert files_under(disk) == ["filler"]
    assert _snapshot(fo, name) == before
    assert not [n for n in fo.list_datasets() if n.startswith(f"{name}-building-")]


@pytest.mark.slow
def test_analyze_temporary_folder_on_a_full_disk(small_disk, earlier_analysis, tiny_yolo_data: Path,
                                                 tiny_base_weights: Path, monkeypatch) -> None:
    """The matches go to a temporary file (analysis/store/match_store.py): a full TMPDIR is one line too."""
    import tempfile

    fo, name = earlier_analysis
    before = _snapshot(fo, name)
    disk = small_disk("64k")
    _fill(disk, 0)
    monkeypatch.setattr(tempfile, "tempdir", str(disk))
    r = RUNNER.invoke(app, _analyze_args(tiny_yolo_data, tiny_base_weights, name))
    err = r.stderr.strip().splitlines()
    assert r.exit_code == 1 and "Traceback" not in r.output and len(err) == 1, r.output
    assert err[0].startswith(f"error: no space left on the device while writing {disk}/"), err[0]
    assert err[0].endswith("(free some space (or set TMPDIR / --out to another disk); the earlier dataset of this "
                           "name is unchanged)"), err[0]
    assert files_under(disk) == ["filler"]
    assert _snapshot(fo, name) == before
    assert not [n for n in fo.list_datasets() if n.startswith(f"{name}-building-")]


def test_space_guard_projects_the_rest_of_the_split() -> None:
    """After a batch the guard needs the reserve plus, per image still to come, what each image took."""
    from yolo_tl.analysis.store.disk_guard import SpaceGuard
    from yolo_tl.errors import OutputError

    class FakeDb:
        def __init__(self, free: int, size: int) -> None:
            self.free, self.size = free, size

        def command(self, name: str, *args):
            return {"fsTotalSize": 10**12, "fsUsedSize": 10**12 - self.free} if name == "dbStats" else \
                {"size": self.size}

    guard = SpaceGuard.__new__(SpaceGuard)
    guard.collection, guard.total, guard.where, guard.reserve = "samples.x", 1000, "db", 100
    guard.db = FakeDb(free=100 + 900 * 10, size=100 * 10)  # 100 images took 10 bytes each
    guard.check(100)  # exactly enough for the 900 to come
    guard.db.free -= 1
    with pytest.raises(OutputError, match=r"plus about 0 MiB for the rest of the split"):
        guard.check(100)
    guard.db = FakeDb(free=99, size=0)
    with pytest.raises(OutputError, match="stopped before the disk fills"):
        guard.check(0)
    guard.db.command = lambda name, *a: {}  # a server that does not report its filesystem: not checked
    guard.check(0)
