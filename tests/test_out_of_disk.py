"""A full disk under the output: one line, exit 1, nothing partial left (a small tmpfs as the disk).

Needs root (``mount -t tmpfs``); skipped with the reason elsewhere.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner
import ultralytics.utils  # noqa: F401  (its log handler binds to stdout now, not to a CliRunner stream closed later)

from tests.builders import make_voc_devkit
from tests.corpus_builders import tree_fingerprint
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
        subprocess.run(["umount", str(m)], check=False)


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


def test_prepare_on_a_full_disk(small_disk, tmp_path: Path) -> None:
    src = make_voc_devkit(tmp_path / "voc", [(f"img{i}", [("cat", 5, 5, 40, 30)]) for i in range(40)])
    disk = small_disk("64k")
    before = tree_fingerprint(src)
    r = RUNNER.invoke(app, ["prepare", str(src), "--out", str(disk / "out")])
    err = r.stderr.strip()
    assert r.exit_code == 1 and "Traceback" not in r.output and len(err.splitlines()) == 1, r.output
    assert "No space left on device" in err, err
    assert files_under(disk) == [] and tree_fingerprint(src) == before


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
