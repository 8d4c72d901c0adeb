"""Images whose header reads but whose pixels do not decode: --verify-images, and predictions paired by path.

Independent facts: cv2.imread (what Ultralytics decodes with) returns None for the broken file and
Pillow's ``load()`` raises; Ultralytics' own predictor, run on each image alone, gives the boxes that
analyze and predict must attach to that image (never its neighbour's).
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import yolo_tl
from tests.helpers.builders import voc_xml
from yolo_tl.cli import app
from yolo_tl.errors import ImageError

CONF = 0.002


def broken_png(path: Path, width: int = 96, height: int = 96) -> Path:
    """A PNG whose header (IHDR: the size) is intact and whose IDAT pixel data is garbage."""
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    start = data.index(b"IDAT") + 4
    data[start + 8:start + 64] = b"\xaa" * 56
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))
    with Image.open(path) as im:  # the header reads: prepare's size check passes
        assert im.size == (width, height)
    assert cv2.imread(str(path)) is None  # cv2, so Ultralytics, cannot decode it
    with pytest.raises(OSError), Image.open(path) as im:
        im.load()
    return path


def _voc_with_broken(root: Path) -> Path:
    """Three VOC images beside their XML; b.png does not decode."""
    root.mkdir(parents=True)
    for stem in ("a", "b", "c"):
        Image.new("RGB", (64, 48), (90, 90, 90)).save(root / f"{stem}.png")
        (root / f"{stem}.xml").write_text(voc_xml(f"{stem}.png", [("cell", 5, 5, 30, 30)], size=(64, 48)))
    broken_png(root / "b.png", 64, 48)
    return root


def test_prepare_without_verify_passes_the_broken_image(tmp_path):
    src = _voc_with_broken(tmp_path / "src")
    rep = yolo_tl.prepare(src, tmp_path / "out", split="0.5,0.5")
    assert rep.images == 3  # headers only: this is what --verify-images is for


@pytest.mark.slow
def test_verify_images_fails_naming_the_file(tmp_path):
    src = _voc_with_broken(tmp_path / "src")
    with pytest.raises(ImageError, match=r"b\.png.*do(es)? not decode"):
        yolo_tl.prepare(src, tmp_path / "out", split="0.5,0.5", verify_images=True)
    assert not (tmp_path / "out").exists()
    res = CliRunner().invoke(app, ["prepare", str(src), "--out", str(tmp_path / "out"), "--split", "0.5,0.5",
                                   "--verify-images"])
    assert res.exit_code != 0 and "Traceback" not in res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "b.png" in lines[0], res.output
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in src.iterdir()) == ["a.png", "a.xml", "b.png", "b.xml", "c.png", "c.xml"]


@pytest.mark.slow
def test_verify_images_skip(tmp_path):
    src = _voc_with_broken(tmp_path / "src")
    rep = yolo_tl.prepare(src, tmp_path / "out", split="0.5,0.5", verify_images=True, on_error="skip")
    assert rep.images == 2 and rep.images_verified == 3
    assert [Path(s["path"]).name for s in rep.skipped] == ["b.png"]
    written = sorted(p.name for p in (tmp_path / "out" / "images").rglob("*.png"))
    assert written == ["a.png", "c.png"]


@pytest.mark.slow
def test_verify_images_many_in_parallel(tmp_path):
    """Enough images for several worker chunks; the broken ones are found wherever they fall."""
    from yolo_tl.dataset.verify import find_undecodable

    good = tmp_path / "good.png"
    Image.new("RGB", (16, 16), (1, 2, 3)).save(good)
    paths = []
    for i in range(100):
        p = tmp_path / f"{i:03d}.png"
        if i in (7, 64, 99):
            broken_png(p, 16, 16)
        else:
            shutil.copyfile(good, p)
        paths.append(p)
    bad = find_undecodable(paths, workers=2)
    assert [p.name for p, _ in bad] == ["007.png", "064.png", "099.png"]


@pytest.fixture(scope="module")
def yolo_with_broken(tiny_yolo_data, tmp_path_factory) -> Path:
    """The tiny dataset, its first val image (in sorted order) replaced by an undecodable PNG."""
    root = tmp_path_factory.mktemp("broken_yolo")
    for sub in ("images", "labels"):
        shutil.copytree(tiny_yolo_data.parent / sub, root / sub)
    (root / "data.yaml").write_text(tiny_yolo_data.read_text().replace(str(tiny_yolo_data.parent.resolve()),
                                                                         str(root)))
    first = sorted((root / "images" / "val").iterdir())[0]
    first.unlink()
    broken_png(root / "images" / "val" / f"{first.stem}.png")  # same stem: its label file stays
    return root / "data.yaml"


def _alone(weights: Path, image: Path) -> list[float]:
    """Ultralytics' confidences for one image predicted on its own."""
    from ultralytics import YOLO

    (result,) = YOLO(str(weights)).predict(str(image), conf=CONF, imgsz=64, verbose=False)
    return sorted(float(c) for c in result.boxes.conf)


@pytest.mark.slow
def test_analyze_pairs_predictions_by_path(yolo_with_broken, tiny_base_weights):
    import fiftyone as fo

    from yolo_tl.analysis.analyze import analyze

    rep = analyze(yolo_with_broken, weights=tiny_base_weights, split="val", name="test-unreadable",
                  conf=CONF, imgsz=64, batch=4, compare_ultralytics=False)
    images = sorted((yolo_with_broken.parent / "images" / "val").iterdir())
    broken = images[0]
    assert [Path(p).name for p in rep.split.unreadable] == [broken.name]
    ds = fo.load_dataset(rep.name)
    paths = ds.values("filepath")
    assert sorted(Path(p).name for p in paths) == [p.name for p in images[1:]]
    confs = ds.values("predictions.detections.confidence")
    checked = 0
    for path, got in zip(paths, confs):
        theirs = _alone(tiny_base_weights, Path(path))
        assert sorted(got or []) == pytest.approx(theirs, abs=1e-4), Path(path).name
        checked += bool(theirs)
    assert checked, "the test needs predictions on some image"
    ds.delete()


@pytest.mark.slow
def test_predict_pairs_by_path(yolo_with_broken, tiny_base_weights, tmp_path):
    from yolo_tl.model.predict import predict

    folder = yolo_with_broken.parent / "images" / "val"
    report = predict(tiny_base_weights, folder, out=tmp_path / "out", conf=CONF, imgsz=64, save_images=False)
    images = sorted(folder.iterdir())
    assert [Path(p).name for p in report.unreadable] == [images[0].name]
    assert report.images == len(images) - 1
    data = json.loads(report.predictions_json.read_text())
    records = {Path(r["image"]).name: r for r in data["images"]}
    assert records[images[0].name]["unreadable"] is True
    for image in images[1:]:
        got = sorted(d["confidence"] for d in records[image.name]["detections"])
        assert got == pytest.approx(_alone(tiny_base_weights, image), abs=1e-4), image.name
