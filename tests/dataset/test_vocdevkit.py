"""A VOCdevkit holding VOC2007 and VOC2012, the standard layout: --year and the merged splits.

The common recipes (Ultralytics' VOC.yaml, the "07+12" setting of the detection papers) train on each
year's trainval and validate on VOC2007 test. Independent facts: the ImageSets lists and XML files the
test writes, read back by the small reader below (not yolo-tl's).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

import yolo_tl
from tests.helpers.builders import make_voc_devkit
from yolo_tl.cli import app
from yolo_tl.errors import LayoutError

Y07 = {"trainval": [f"0000{i:02d}" for i in range(1, 9)], "test": [f"0001{i:02d}" for i in range(1, 5)]}
Y12 = {"train": [f"2008_{i:06d}" for i in range(1, 6)], "val": [f"2008_{i:06d}" for i in range(6, 9)]}
EXTRA_12 = ["2008_000100", "2008_000101"]  # in Annotations but in no Main list (segmentation-only ids)


def _objects(stem: str, classes: list[str]):
    k = sum(map(ord, stem))
    return [(classes[(k + j) % len(classes)], 1 + 3 * j, 1 + 2 * j, 20 + 3 * j, 18 + 2 * j) for j in range(1 + k % 3)]


@pytest.fixture()
def devkit(tmp_path) -> Path:
    root = tmp_path / "VOCdevkit"
    stems07 = Y07["trainval"] + Y07["test"]
    make_voc_devkit(root / "VOC2007", [(s, _objects(s, ["cat", "dog", "person"])) for s in stems07],
                    splits={"trainval": Y07["trainval"], "train": Y07["trainval"][:5],
                            "val": Y07["trainval"][5:], "test": Y07["test"]})
    stems12 = Y12["train"] + Y12["val"] + EXTRA_12
    make_voc_devkit(root / "VOC2012", [(s, _objects(s, ["bird", "cat", "person"])) for s in stems12],
                    splits={"train": Y12["train"], "val": Y12["val"],
                            "trainval": Y12["train"] + Y12["val"]})
    return root


def _xml_counts(year: Path, stems: list[str]) -> Counter:
    names: Counter = Counter()
    for stem in stems:
        names.update(o.findtext("name") for o in ET.parse(year / "Annotations" / f"{stem}.xml").iter("object"))
    return names


def _written(out: Path, split: str) -> list[str]:
    folder = out / "images" / split
    return sorted(p.stem for p in folder.iterdir()) if folder.is_dir() else []


def test_years_are_merged_as_the_common_recipes_do(devkit, tmp_path):
    rep = yolo_tl.prepare(devkit, tmp_path / "out")
    train = Y07["trainval"] + Y12["train"] + Y12["val"]
    assert _written(tmp_path / "out", "train") == sorted(train)
    assert _written(tmp_path / "out", "val") == sorted(Y07["test"])
    assert _written(tmp_path / "out", "test") == []
    everything = _written(tmp_path / "out", "train") + _written(tmp_path / "out", "val")
    assert len(everything) == len(set(everything))  # every image exactly once
    assert rep.images_dropped == {"not_in_any_split": len(EXTRA_12)}
    expected = _xml_counts(devkit / "VOC2007", Y07["trainval"] + Y07["test"]) + \
        _xml_counts(devkit / "VOC2012", Y12["train"] + Y12["val"])
    assert rep.classes == sorted(expected)  # one class list across the years
    assert rep.boxes_per_class() == dict(expected)
    assert "VOC2007" in rep.layout and "VOC2012" in rep.layout and "VOC2007 test" in rep.layout


@pytest.mark.parametrize("year", ["2012", "VOC2012"])
def test_year_takes_one(devkit, tmp_path, year):
    rep = yolo_tl.prepare(devkit, tmp_path / "out", year=year)
    assert _written(tmp_path / "out", "train") == Y12["train"]
    assert _written(tmp_path / "out", "val") == Y12["val"]
    assert rep.boxes_per_class() == dict(_xml_counts(devkit / "VOC2012", Y12["train"] + Y12["val"]))


def test_without_2007_test_val_is_carved_from_train(devkit, tmp_path):
    (devkit / "VOC2007" / "ImageSets" / "Main" / "test.txt").unlink()
    rep = yolo_tl.prepare(devkit, tmp_path / "out")
    assert "carved from train" in rep.split_origin
    train, val = _written(tmp_path / "out", "train"), _written(tmp_path / "out", "val")
    assert sorted(train + val) == sorted(Y07["trainval"] + Y12["train"] + Y12["val"])
    assert val


def test_unknown_year_names_the_years_found(devkit, tmp_path):
    with pytest.raises(LayoutError, match=r"--year 2010.*VOC2007, VOC2012"):
        yolo_tl.prepare(devkit, tmp_path / "out", year="2010")
    assert not (tmp_path / "out").exists()


def test_year_is_never_ignored(devkit, tmp_path):
    """--year on a folder that is not a multi-year devkit is refused, not silently dropped."""
    with pytest.raises(LayoutError, match=r"--year 2012: SOURCE is not a VOCdevkit"):
        yolo_tl.prepare(devkit / "VOC2007", tmp_path / "out", year="2012")
    rep = yolo_tl.prepare(devkit, tmp_path / "out", year="2007")  # a devkit: the year is picked
    assert _written(tmp_path / "out", "test") == sorted(Y07["test"])
    assert rep.images == len(Y07["trainval"] + Y07["test"])


def test_cli_reports_the_merge_at_80_columns(devkit, tmp_path):
    res = CliRunner().invoke(app, ["prepare", str(devkit), "--out", str(tmp_path / "out")], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "VOC2007 trainval + VOC2012 trainval" in text and "val = VOC2007 test" in text
    assert max(len(line) for line in res.output.splitlines()) <= 80
