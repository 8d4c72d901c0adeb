"""Smoke test of the benchmark harness (``python -m benchmarks.run``) at tiny sizes.

Keeps ``make bench`` from rotting: the synthetic data must be what it claims (checked with the
standard library's XML/JSON parsers, not with our readers), and a tiny run of the prepare
comparisons must write a RESULTS file with a table row per comparison.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.helpers import REPO


def test_synthetic_voc_and_coco_are_what_they_claim(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    from benchmarks import datagen

    voc = datagen.write_voc(tmp_path / "voc", 12, seed=3)
    xmls = sorted((tmp_path / "voc" / "Annotations").glob("*.xml"))
    assert len(xmls) == 12
    n_boxes = 0
    for x in xmls:
        root = ET.parse(x).getroot()
        w, h = int(root.findtext("size/width")), int(root.findtext("size/height"))
        img = cv2.imread(str(tmp_path / "voc" / "JPEGImages" / root.findtext("filename")))
        assert img is not None and img.shape[:2] == (h, w)  # a real JPEG, <size> is right
        for obj in root.iter("object"):
            b = obj.find("bndbox")
            x1, y1, x2, y2 = (int(b.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            assert 1 <= x1 < x2 <= w and 1 <= y1 < y2 <= h  # VOC is 1-based, inside the image
            n_boxes += 1
    assert n_boxes == voc["boxes"] > 12

    coco = datagen.write_coco(tmp_path / "coco", 9, seed=3)
    data = json.loads(Path(coco["json"]).read_text())
    assert len(data["images"]) == 9 and len(data["annotations"]) == coco["boxes"]
    sizes = {i["id"]: (i["width"], i["height"]) for i in data["images"]}
    for a in data["annotations"]:
        x, y, bw, bh = a["bbox"]
        w, h = sizes[a["image_id"]]
        assert bw > 0 and bh > 0 and x + bw <= w and y + bh <= h
        assert 1 <= a["category_id"] <= len(data["categories"])


@pytest.mark.slow
def test_quick_run_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--only", "prepare_coco,scaling",
         "--no-profile", "--repeats", "1", "--coco-images", "120", "--scaling", "60,120",
         "--workdir", str(tmp_path / "work"), "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    text = out.read_text()
    assert "| what | against |" in text and "ultralytics" in text
    rows = [line for line in text.splitlines() if line.startswith("| prepare")]
    assert len(rows) == 3, text  # COCO vs convert_coco, scaling, peak RSS
    assert all(("**pass**" in r) or ("**FAIL**" in r) for r in rows)
    assert "## GPU run" in text
    assert not (tmp_path / "work").exists()  # the work folder is removed unless --keep


@pytest.mark.slow
def test_scale_benchmark_data_and_run(tmp_path: Path) -> None:
    """benchmarks/bench_scale.py: its labels name the rectangle drawn there (the last one drawn in each
    image, read back with Pillow), its model is as dense as it says, and a tiny run writes the table."""
    from PIL import Image

    from benchmarks import bench_scale

    data, made = bench_scale.make_dataset(tmp_path / "split", 12)
    assert made and not bench_scale.make_dataset(tmp_path / "split", 12)[1]  # reused
    for label in sorted((tmp_path / "split" / "labels" / "val").glob("*.txt")):
        c, cx, cy, _, _ = label.read_text().splitlines()[-1].split()
        with Image.open(tmp_path / "split" / "images" / "val" / f"{label.stem}.jpg") as im:
            px = im.convert("RGB").getpixel((int(float(cx) * 96), int(float(cy) * 96)))
        assert max(abs(a - b) for a, b in zip(px, bench_scale.COLOURS[int(c)])) < 40, (label, px)
    out = tmp_path / "RESULTS_scale.md"
    r = subprocess.run([sys.executable, "-m", "benchmarks.bench_scale", "--images", "6,12", "--no-wait",
                        "--work", str(tmp_path / "work"), "--out", str(out)], cwd=REPO, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    rows = [line for line in out.read_text().splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [row.split("|")[1].strip() for row in rows] == ["6", "12"]
    assert all(int(row.split("|")[3]) > 100 for row in rows)  # predictions per image: a dense model
    assert "Verdict: peak RSS 12 / 6 images" in out.read_text()
