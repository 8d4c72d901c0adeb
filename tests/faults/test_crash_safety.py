"""SIGKILL ``python -m yolo_tl prepare`` at random moments: the output folder is then either absent
or complete and valid, the source is untouched, and a re-run succeeds.

The dataset (1,000 tiny VOC images) is big enough that a run lasts about a second, so kills land
while annotations are read and while the output is written. Half of the kills come at a random
time from the start of the process; the other half at a random point of the writing, measured by
the label files written so far (so they land mid-write whatever the machine's speed), one of them
just before the final rename. Trials after the first replace a complete output (--overwrite).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import yolo_tl
from tests.helpers import REPO
from tests.helpers.corpus_builders import image_bytes, tree_fingerprint, voc_xml

pytestmark = pytest.mark.slow

N_IMAGES = 1000
TRIALS = 10
SEED = 20240607  # the kill times are random but reproducible; change it to explore other moments


@pytest.fixture(scope="module")
def big_voc(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("crash") / "VOC"
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    jpeg = image_bytes(16, 12)
    for i in range(N_IMAGES):
        stem = f"img{i:05d}"
        (root / "JPEGImages" / f"{stem}.jpg").write_bytes(jpeg)
        xml = voc_xml(f"{stem}.jpg", [("cat", 1, 1, 8, 6), ("dog", 4 + i % 5, 3, 16, 12)], size=(16, 12))
        (root / "Annotations" / f"{stem}.xml").write_text(xml)
    return root


def _command(src: Path, out: Path, overwrite: bool) -> list:
    return [sys.executable, "-m", "yolo_tl", "prepare", str(src), "--out", str(out), "--json",
            *(["--overwrite"] if overwrite else [])]


def _env() -> dict:
    env = dict(os.environ)
    env.pop("YOLO_TL_DEBUG", None)
    return env


def _partial(out: Path, pid: int) -> Path:
    return out.parent / f".{out.name}.yolo-tl-partial-{pid}"


def _labels_written(partial: Path) -> int:
    count = 0
    for split in ("train", "val"):
        try:
            count += len(os.listdir(partial / "labels" / split))
        except FileNotFoundError:
            pass
    return count


def _snapshot(out: Path) -> dict:
    """Every label file's text, by relative path, plus the image names and data.yaml."""
    labels = {p.relative_to(out).as_posix(): p.read_text() for p in sorted((out / "labels").rglob("*.txt"))}
    images = sorted(p.relative_to(out).as_posix() for p in (out / "images").rglob("*.jpg"))
    data = [line for line in (out / "data.yaml").read_text().splitlines() if not line.startswith("path:")]
    return {"labels": labels, "images": images, "data": data}


def _assert_complete(out: Path, reference: dict) -> None:
    """A complete, valid output: data.yaml, report, and every image with its exact label file."""
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert Path(data["path"]) == out and data["names"] == {0: "cat", 1: "dog"}
    report = json.loads((out / "prepare_report.json").read_text())
    assert report["totals"] == {"images": N_IMAGES, "boxes": 2 * N_IMAGES,
                                "boxes_per_class": {"cat": N_IMAGES, "dog": N_IMAGES}}
    assert _snapshot(out) == reference


def _run_to_end(src: Path, out: Path, overwrite: bool = False) -> tuple:
    """Run prepare; returns (seconds to the partial folder's appearance, seconds in all)."""
    start = time.perf_counter()
    proc = subprocess.Popen(_command(src, out, overwrite), cwd=REPO, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    appeared = None
    while proc.poll() is None:
        if appeared is None and _partial(out, proc.pid).exists():
            appeared = time.perf_counter() - start
        time.sleep(0.002)
    total = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr.read().decode()
    proc.stderr.close()
    return (appeared if appeared is not None else total * 0.8), total


def test_sigkill_leaves_nothing_or_a_complete_output(big_voc: Path, tmp_path: Path) -> None:
    source_hash = tree_fingerprint(big_voc)
    ref_out = tmp_path / "reference"
    t_partial, t_total = _run_to_end(big_voc, ref_out)
    reference = _snapshot(ref_out)
    assert len(reference["images"]) == N_IMAGES and len(reference["labels"]) == N_IMAGES
    assert t_total > 0.3, f"run too short ({t_total:.2f} s) for kills to land mid-run"

    rng = random.Random(SEED)
    out = tmp_path / "data" / "yolo"
    outcomes = []
    for trial in range(TRIALS):
        if trial % 4 < 2:
            shutil.rmtree(out, ignore_errors=True)  # a fresh run: afterwards out must be absent or complete
        overwrite = out.exists()  # a complete output from an earlier trial: kill while replacing it
        proc = subprocess.Popen(_command(big_voc, out, overwrite), cwd=REPO, env=_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        start = time.perf_counter()
        partial = _partial(out, proc.pid)
        if trial % 2 == 0:
            # a random moment from the start: import, layout detection, reading, maybe writing
            delay = rng.uniform(0.0, t_partial * 1.2)
            while proc.poll() is None and time.perf_counter() - start < delay:
                time.sleep(0.001)
        else:
            # a random point of the writing, by progress (whatever the machine's speed): after k of
            # the N label files, k = N being the moment before data.yaml, the report and the rename
            k = N_IMAGES if trial == TRIALS - 1 else rng.randint(0, N_IMAGES)
            while proc.poll() is None and _labels_written(partial) < k:
                time.sleep(0.0005)
        mid_write = _partial(out, proc.pid).exists()
        running = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        outcomes.append((running, mid_write, out.exists()))
        print(f"trial {trial}: overwrite={overwrite} killed at {time.perf_counter() - start:.2f} s, "
              f"running={running} mid_write={mid_write} out_exists={out.exists()}")  # shown with -s

        # absent, or complete and valid; never half-written
        if out.exists():
            _assert_complete(out, reference)
        assert tree_fingerprint(big_voc) == source_hash, f"trial {trial}: the source changed"

        # a re-run succeeds (it also clears the killed run's leftovers): in this process to keep
        # the test short, and through the command line on the last trial
        if trial == TRIALS - 1:
            _run_to_end(big_voc, out, overwrite=out.exists())
        else:
            yolo_tl.prepare(big_voc, out, overwrite=out.exists())
        _assert_complete(out, reference)
        assert not list(out.parent.glob(f".{out.name}.yolo-tl-*")), "leftovers of a killed run survived"

    killed_running = sum(r for r, _, _ in outcomes)
    killed_mid_write = sum(r and w for r, w, _ in outcomes)
    assert killed_running >= TRIALS // 2, f"too few kills landed mid-run: {outcomes}"
    assert killed_mid_write >= TRIALS // 4, f"too few kills landed while writing: {outcomes}"
    assert tree_fingerprint(big_voc) == source_hash
