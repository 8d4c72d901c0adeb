"""Each step accepts what the step before it wrote.

- prepare copies a JPEG whose end marker is missing and puts the marker back, so finetune, evaluate and
  analyze take the dataset as it is; the label check refuses Ultralytics' in-place "restore" only where
  it would rewrite a file of the user's.
- Every command that hands a data.yaml to Ultralytics reads a relative ``path:`` against the data.yaml's
  folder, from any working folder.
- Several processes that start FiftyOne's cold database at the same moment all get it.

The photos are real (../shared BCCD, Pascal VOC); what is checked against them is Ultralytics' own
verdict (``verify_image_label``, ``check_det_dataset``, its validator), Pillow's decoding and the bytes of
the original files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ultralytics.utils  # noqa: F401  (its log handler binds to stdout now, not to a CliRunner stream closed later)
from typer.testing import CliRunner

from tests.faults.bccd_copies import bccd_copy, cut_end_marker
from yolo_tl.cli import app

REPO = Path(__file__).resolve().parents[2]
RUNNER = CliRunner()
VICTIM = "BloodImage_00000"  # in BCCD's val list
SMALL = {"train": 6, "val": 3, "test": 0}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ultralytics_verdict(image: Path, tmp: Path) -> tuple[int, str]:
    """(corrupt count, message) of Ultralytics' own image/label check, run on a copy (it may rewrite)."""
    from ultralytics.data.utils import verify_image_label

    copy = tmp / f"verdict-{image.name}"
    shutil.copyfile(image, copy)
    out = verify_image_label((str(copy), str(tmp / "none.txt"), "", False, 4, 0, 0, False))
    return out[8], out[9]


# --- 1. a JPEG without its end marker ---------------------------------------------------------------------
def test_prepare_puts_back_a_cut_end_marker(bccd_root: Path, tmp_path: Path) -> None:
    import yolo_tl
    from yolo_tl.dataset.formats.yolo import load_data_yaml
    from yolo_tl.dataset.yolo_check import check_dataset

    src = bccd_copy(bccd_root, tmp_path / "src", damage={VICTIM: cut_end_marker}, per_split=SMALL)
    cut = src / "JPEGImages" / f"{VICTIM}.jpg"
    before = sha(cut)
    nc, msg = ultralytics_verdict(cut, tmp_path)
    assert nc == 1 and "truncated" in msg  # Ultralytics cannot restore this one: it would drop the photo

    report = yolo_tl.prepare(src, tmp_path / "out")
    written = tmp_path / "out" / "images" / "val" / f"{VICTIM}.jpg"
    assert written.read_bytes() == (bccd_root / "JPEGImages" / f"{VICTIM}.jpg").read_bytes()  # the real photo
    assert sha(cut) == before  # the source is untouched
    assert report.links == {"copy (truncated JPEG, end marker restored)": 1, "hardlink": 8}
    saved = json.loads((tmp_path / "out" / "prepare_report.json").read_text())
    assert saved["examples"]["jpeg_end_marker_restored"] == [str(cut)]
    assert ultralytics_verdict(written, tmp_path) == (0, "")  # nothing to drop, nothing to rewrite
    checked = check_dataset(load_data_yaml(tmp_path / "out" / "data.yaml"), ["train", "val"])
    assert len(checked.images["val"]) == 3 and checked.truncated_copies == 0


def test_jpeg_cut_inside_its_pixels_is_a_bad_image(bccd_root: Path, tmp_path: Path) -> None:
    from PIL import Image

    import yolo_tl

    src = bccd_copy(bccd_root, tmp_path / "src", damage={VICTIM: lambda b: b[:len(b) // 2]}, per_split=SMALL)
    half = src / "JPEGImages" / f"{VICTIM}.jpg"
    assert ultralytics_verdict(half, tmp_path)[0] == 1  # Ultralytics drops it
    with pytest.raises(OSError):
        with Image.open(half) as im:
            im.load()

    r = RUNNER.invoke(app, ["prepare", str(src), "--out", str(tmp_path / "out")])
    err = r.stderr.strip()
    assert r.exit_code == 1 and "Traceback" not in r.output and len(err.splitlines()) == 1, r.output
    assert str(half) in err and "cut short inside its pixel data" in err, err
    assert not (tmp_path / "out").exists()

    report = yolo_tl.prepare(src, tmp_path / "out", on_error="skip")
    assert [s["path"] for s in report.skipped] == [str(half)] and report.images == 8


def test_label_check_refuses_a_rewrite_only_of_the_users_files(bccd_root: Path, tmp_path: Path) -> None:
    """A prepared dataset with a JPEG whose end marker is not last (a real photo plus one stray byte: Pillow
    reads it, Ultralytics rewrites it): fine as prepare's own copy, refused as a link to the user's file."""
    import yolo_tl
    from yolo_tl.dataset.formats.yolo import load_data_yaml
    from yolo_tl.dataset.yolo_check import check_dataset
    from yolo_tl.errors import AnnotationError

    yolo_tl.prepare(bccd_copy(bccd_root, tmp_path / "src", per_split=SMALL), tmp_path / "out")
    data = load_data_yaml(tmp_path / "out" / "data.yaml")
    image = tmp_path / "out" / "images" / "val" / f"{VICTIM}.jpg"
    padded = image.read_bytes() + b"\x00"
    nc, msg = ultralytics_verdict_bytes(padded, tmp_path)
    assert nc == 0 and "restored and saved" in msg  # Ultralytics rewrites such a file

    image.unlink()
    image.write_bytes(padded)  # prepare's own copy (an older prepare copied such files as they were)
    assert check_dataset(data, ["val"]).truncated_copies == 1

    users = tmp_path / "users.jpg"
    users.write_bytes(padded)
    image.unlink()
    os.link(users, image)  # the same file as the user's
    with pytest.raises(AnnotationError, match="would rewrite this file in place"):
        check_dataset(data, ["val"])
    image.unlink()
    image.write_bytes(padded)
    (tmp_path / "out" / "prepare_report.json").unlink()  # not a folder prepare wrote: the user's own dataset
    with pytest.raises(AnnotationError, match="would rewrite this file in place"):
        check_dataset(data, ["val"])


def ultralytics_verdict_bytes(data: bytes, tmp: Path) -> tuple[int, str]:
    path = tmp / "probe.jpg"
    path.write_bytes(data)
    return ultralytics_verdict(path, tmp)


# --- 2. a relative path: in data.yaml, from another working folder ---------------------------------------------
def relative_copy(tiny_yolo_data: Path, dst: Path) -> Path:
    shutil.copytree(tiny_yolo_data.parent, dst)
    text = (dst / "data.yaml").read_text().splitlines()
    (dst / "data.yaml").write_text("\n".join(["path: ."] + [ln for ln in text if not ln.startswith("path:")]) + "\n")
    return dst / "data.yaml"


def test_ultralytics_is_handed_what_we_read(tiny_yolo_data: Path, tmp_path: Path, monkeypatch) -> None:
    from ultralytics.data.utils import check_det_dataset

    from yolo_tl.dataset.handoff import read_data_info, ultralytics_data_yaml

    data_yaml = relative_copy(tiny_yolo_data, tmp_path / "ds")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    with pytest.raises(Exception, match="images not found"):  # what Ultralytics does with the user's own file
        check_det_dataset(str(data_yaml))
    handed = ultralytics_data_yaml(read_data_info(data_yaml), tmp_path / "work", ("val",))
    got = check_det_dataset(str(handed))
    listed = {Path(p) for p in Path(got["val"]).read_text().split()}
    assert listed == set((tmp_path / "ds" / "images" / "val").glob("*.jpg")) and len(listed) == 4
    assert data_yaml.read_text().startswith("path: .\n")  # the user's file as it was


@pytest.mark.slow
def test_relative_path_every_command(tiny_yolo_data: Path, tiny_base_weights: Path, tmp_path: Path,
                                     monkeypatch) -> None:
    """finetune, evaluate, analyze (with Ultralytics' validator), export --data: from another folder."""
    from ultralytics import YOLO

    data_yaml = relative_copy(tiny_yolo_data, tmp_path / "ds")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    small = ["--imgsz", "64", "--batch", "4"]
    r = RUNNER.invoke(app, ["finetune", str(data_yaml), "--weights", str(tiny_base_weights), "--freeze", "none",
                            "--epochs", "1", *small, "--workers", "0", "--project", str(tmp_path / "runs"),
                            "--name", "rel", "--config", str(fast_config(tmp_path))])
    assert r.exit_code == 0, r.output
    best = tmp_path / "runs" / "rel" / "weights" / "best.pt"
    r = RUNNER.invoke(app, ["evaluate", str(best), str(data_yaml), *small, "--json"])
    assert r.exit_code == 0, r.output
    ours = json.loads(r.stdout)["metrics"]
    theirs = YOLO(str(best)).val(data=str(tiny_yolo_data), imgsz=64, batch=4, plots=False, verbose=False,
                                 project=str(tmp_path / "val"), workers=0)  # the same data, absolute path
    assert ours["map50_95"] == pytest.approx(float(theirs.box.map), abs=1e-9)
    r = RUNNER.invoke(app, ["analyze", str(data_yaml), "--weights", str(best), *small, "--ultralytics-val",
                            "--name", "own-output-relative", "--out", str(tmp_path / "figs"), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["maps"]["ultralytics_map50_95"] is not None
    r = RUNNER.invoke(app, ["export", str(best), "--data", str(data_yaml), "--imgsz", "64", "--max-drop", "1",
                            "--out", str(tmp_path / "export"), "--json"])
    assert r.exit_code == 0, r.output
    assert data_yaml.read_text().startswith("path: .\n")


def fast_config(tmp_path: Path) -> Path:
    from tests.helpers.train_helpers import FAST

    path = tmp_path / "fast.yaml"
    path.write_text("ultralytics:\n" + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in FAST.items()))
    return path


# --- 3. several processes start the cold database at once ---------------------------------------------------------
def start_together(args: list[list[str]], db_dir: Path, logs: Path, timeout: float = 400) -> list[tuple[int, str]]:
    """Run each command as ``python -m yolo_tl`` at the same moment on ``db_dir``; (exit code, stderr) each.
    Output goes to files: FiftyOne's database service inherits them and may outlive its starter."""
    env = {k: v for k, v in os.environ.items() if k not in ("FIFTYONE_PRIVATE_DATABASE_PORT", "FIFTYONE_DATABASE_URI")}
    env.update(FIFTYONE_DATABASE_DIR=str(db_dir), PYTHONPATH=str(REPO), COLUMNS="200", NO_COLOR="1")
    logs.mkdir()
    procs = [subprocess.Popen([sys.executable, "-m", "yolo_tl", *a], env=env, cwd=REPO,
                              stdout=open(logs / f"{i}.out", "w"), stderr=open(logs / f"{i}.err", "w"))
             for i, a in enumerate(args)]
    end = time.monotonic() + timeout
    while any(p.poll() is None for p in procs) and time.monotonic() < end:
        time.sleep(0.5)
    for p in procs:
        if p.poll() is None:
            p.kill()
    return [(p.wait(), (logs / f"{i}.err").read_text()) for i, p in enumerate(procs)]


def stored_datasets(db_dir: Path, tmp_path: Path) -> set[str]:
    """The dataset names in the database files of ``db_dir``, read by a mongod of our own once FiftyOne's is gone."""
    import pymongo

    from yolo_tl.analysis.store.mongod import find_mongod

    end = time.monotonic() + 120
    while (db_dir / "mongod.lock").stat().st_size and time.monotonic() < end:  # emptied when mongod stops
        time.sleep(0.5)
    proc = subprocess.Popen([str(find_mongod()), "--dbpath", str(db_dir), "--port", "0", "--bind_ip", "127.0.0.1",
                             "--nounixsocket", "--logpath", str(tmp_path / "check.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port = None
        while port is None and time.monotonic() < end:
            for line in (tmp_path / "check.log").read_text().splitlines() if (tmp_path / "check.log").exists() else []:
                if '"Waiting for connections"' in line:
                    port = json.loads(line)["attr"]["port"]
            time.sleep(0.2)
        client = pymongo.MongoClient(f"mongodb://127.0.0.1:{port}", serverSelectionTimeoutMS=30000)
        names = {d["name"] for d in client["fiftyone"].datasets.find({}, {"name": 1})}
        client.close()
        return names
    finally:
        proc.terminate()
        proc.wait(timeout=60)


@pytest.mark.slow
def test_two_analyze_runs_start_a_cold_database(tiny_yolo_data: Path, tiny_base_weights: Path,
                                                tmp_path: Path) -> None:
    db = tmp_path / "db"
    names = ["cold-a", "cold-b"]
    results = start_together([["analyze", str(tiny_yolo_data), "--weights", str(tiny_base_weights), "--imgsz", "64",
                                "--no-ultralytics-val", "--name", n, "--out", str(tmp_path / n)] for n in names],
                             db, tmp_path / "logs")
    for rc, err in results:
        assert rc == 0 and "error:" not in err, err
    assert stored_datasets(db, tmp_path) >= set(names)  # both in this folder's database, not another one


@pytest.mark.slow
def test_three_processes_start_a_cold_database(tmp_path: Path) -> None:
    db = tmp_path / "db"
    results = start_together([["datasets", "list", "--json"]] * 3, db, tmp_path / "logs")
    for rc, err in results:
        assert rc == 0 and "error:" not in err, err
    assert (db / "mongod.lock").exists() and (db / "log" / "mongo.log").is_file()  # started here, not elsewhere


def test_a_prepared_folder_moved_elsewhere_still_reads(bccd_root: Path, tmp_path: Path) -> None:
    """prepare writes an absolute path:; the folder is then moved (copied to a training server, say)."""
    from ultralytics.data.utils import check_det_dataset

    import yolo_tl
    from yolo_tl.dataset.handoff import read_data_info, ultralytics_data_yaml
    from yolo_tl.errors import TrainingError

    yolo_tl.prepare(bccd_copy(bccd_root, tmp_path / "src", per_split=SMALL), tmp_path / "out")
    shutil.move(tmp_path / "out", tmp_path / "moved")
    data_yaml = tmp_path / "moved" / "data.yaml"
    with pytest.raises(Exception, match="images not found"):  # Ultralytics reads the old place
        check_det_dataset(str(data_yaml))
    info = read_data_info(data_yaml)
    assert info.root == (tmp_path / "moved").resolve() and "is gone" in info.root_from
    got = check_det_dataset(str(ultralytics_data_yaml(info, tmp_path / "work")))
    assert {Path(p) for p in Path(got["val"]).read_text().split()} == set((tmp_path / "moved/images/val").glob("*"))
    (tmp_path / "moved" / "prepare_report.json").unlink()  # not prepare's folder: the path: stands
    with pytest.raises(TrainingError, match=f"{tmp_path / 'out'} does not exist"):
        read_data_info(data_yaml)
