"""The README's commands in order on the real BCCD dataset with one photo cut short, as a new user runs them.

prepare -> finetune -> evaluate -> analyze -> export -> predict, each as its own ``python -m yolo_tl``
process from a project folder, on a copy of ../shared BCCD (photos hard-linked) whose photo
``BloodImage_00000.jpg`` lost its end marker. Every command must accept what the one before wrote, and
the user's source folder must be byte-identical afterwards. Run with ``-s`` to see each command's
key lines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.bccd_copies import bccd_copy, cut_end_marker
from tests.helpers.corpus_builders import tree_fingerprint

REPO = Path(__file__).resolve().parents[2]
VICTIM = "BloodImage_00000"  # in BCCD's val list: validated by finetune and analyze, and predicted on


def run(args: list[str], cwd: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "FIFTYONE_PRIVATE_DATABASE_PORT"}
    env.update(PYTHONPATH=str(REPO), COLUMNS="120", NO_COLOR="1")
    r = subprocess.run([sys.executable, "-m", "yolo_tl", *args], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=900)
    print(f"$ yolo-tl {' '.join(args)}\n  exit {r.returncode}")
    for line in (r.stdout + r.stderr).splitlines():
        if line.strip() and not line.startswith(("{", "}", "  \"", "  ]", "  }")):
            print("  " + line[:150])
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stdout[-3000:] + r.stderr[-3000:]
    return json.loads(r.stdout) if "--json" in args else {}


@pytest.mark.slow
def test_readme_order_on_bccd_with_a_cut_photo(bccd_root: Path, tmp_path: Path) -> None:
    source = bccd_copy(bccd_root, tmp_path / "my_data", damage={VICTIM: cut_end_marker})
    before = tree_fingerprint(source)
    project = tmp_path / "project"
    project.mkdir()
    photo = f"data/mine/images/val/{VICTIM}.jpg"

    run(["prepare", str(source), "--out", "data/mine"], project)
    report = json.loads((project / "data/mine/prepare_report.json").read_text())
    assert report["links"] == {"copy (truncated JPEG, end marker restored)": 1, "hardlink": 363}
    assert (project / photo).read_bytes() == (bccd_root / "JPEGImages" / f"{VICTIM}.jpg").read_bytes()

    fast = project / "fast.yaml"
    fast.write_text("ultralytics:\n  plots: false\n")
    trained = run(["finetune", "data/mine/data.yaml", "--weights", "yolov8n.yaml", "--freeze", "none", "--epochs",
                   "1", "--imgsz", "64", "--batch", "16", "--workers", "0", "--project", "runs", "--name", "mine",
                   "--config", str(fast), "--json"], project)
    run_json = json.loads((project / "runs/mine/run.json").read_text())
    assert run_json["label_check"]["skipped"] == [] and run_json["label_check"]["images"] == {"train": 205, "val": 87}
    assert trained["best"].endswith("runs/mine/weights/best.pt")

    evaluated = run(["evaluate", "runs/mine/weights/best.pt", "data/mine/data.yaml", "--split", "test", "--imgsz",
                     "64", "--json"], project)
    assert evaluated["split"] == "test"
    analysed = run(["analyze", "data/mine/data.yaml", "--weights", "runs/mine/weights/best.pt", "--imgsz", "64",
                    "--name", "readme-order-bccd", "--json"], project)
    assert analysed["totals"]["samples"] == 87 and analysed["split"]["unreadable"] == []
    run(["export", "runs/mine/weights/best.pt", "--format", "onnx", "--data", "data/mine/data.yaml", "--imgsz", "64",
         "--max-drop", "1"], project)
    predicted = run(["predict", "runs/mine/weights/export_onnx/best.onnx", photo, "--out", "preds", "--imgsz", "64",
                     "--json"], project)
    assert predicted["images"] == 1
    assert tree_fingerprint(source) == before  # the user's source, byte for byte (and names, sizes, times)
