"""write_fixed_dataset: fixes applied exactly, byte-identical re-runs, the source untouched, bad fixes refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image

from yolo_tl.dataset.fixes import LabelFix, write_fixed_dataset
from yolo_tl.errors import FixError, OutputError

LABELS_A = "0 0.250000 0.500000 0.100000 0.200000\n1 0.600000 0.400000 0.200000 0.300000\n"


def _dataset(root: Path) -> Path:
    """A YOLO dataset: train a.jpg (200x100, two boxes), b.png (no label file); val c.jpg (one box)."""
    for split, name, size in (("train", "a.jpg", (200, 100)), ("train", "b.png", (50, 40)),
                              ("val", "c.jpg", (80, 60))):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (120, 30, 60)).save(root / "images" / split / name)
    (root / "labels" / "train" / "a.txt").write_text(LABELS_A)
    (root / "labels" / "val" / "c.txt").write_text("2 0.5 0.5 0.25 0.5\n")
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/val\n"
                                    "names: {0: cat, 1: dog, 2: fox}\n")
    return root / "data.yaml"


def _tree_hash(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# box 0 of a.jpg in pixels: cx 50, cy 50, w 20, h 20 -> (40, 40, 60, 60); box 1: (100, 25, 140, 55)
FIXES = [
    LabelFix("images/train/a.jpg", "move", box=0, before=(0, 40, 40, 60, 60), after=(0, 10, 20, 60, 80),
             score=0.81, accepted="--accept-above 0.5", issue="badly_placed"),
    LabelFix("images/train/a.jpg", "relabel", box=1, before=(1, 100, 25, 140, 55), after=(2, 100, 25, 140, 55),
             score=0.7, accepted="tag accept", issue="wrong_class"),
    LabelFix("images/train/b.png", "add", after=(1, 5, 4, 25, 24), score=0.9, accepted="tag accept", issue="missing"),
    LabelFix("images/val/c.jpg", "remove", box=0, before=(2, 30, 15, 50, 45), score=0.6, accepted="tag accept",
             issue="spurious"),
]


def test_fixes_are_applied_exactly(tmp_path):
    data_yaml = _dataset(tmp_path / "src")
    report = write_fixed_dataset(data_yaml, FIXES, tmp_path / "out")
    out = tmp_path / "out"
    # move to (10, 20, 60, 80) px in 200x100: cx 35/200, cy 50/100, w 50/200, h 60/100; relabel keeps the text
    assert (out / "labels/train/a.txt").read_text() == ("0 0.175000 0.500000 0.250000 0.600000\n"
                                                        "2 0.600000 0.400000 0.200000 0.300000\n")
    # add (5, 4, 25, 24) in 50x40: cx 15/50, cy 14/40, w 20/50, h 20/40
    assert (out / "labels/train/b.txt").read_text() == "1 0.300000 0.350000 0.400000 0.500000\n"
    assert (out / "labels/val/c.txt").read_text() == ""
    assert (out / "images/train/a.jpg").read_bytes() == (tmp_path / "src/images/train/a.jpg").read_bytes()
    import yaml

    doc = yaml.safe_load((out / "data.yaml").read_text())
    assert doc["path"] == str(out) and doc["names"] == {0: "cat", 1: "dog", 2: "fox"}
    assert (doc["train"], doc["val"]) == ("images/train", "images/val")
    fixes = json.loads((out / "fixes.json").read_text())["fixes"]
    assert {(f["image"], f["kind"], f["before"], f["after"], f["score"], f["accepted"]) for f in fixes} == {
        ("images/train/a.jpg", "move", "0 0.250000 0.500000 0.100000 0.200000",
         "0 0.175000 0.500000 0.250000 0.600000", 0.81, "--accept-above 0.5"),
        ("images/train/a.jpg", "relabel", "1 0.600000 0.400000 0.200000 0.300000",
         "2 0.600000 0.400000 0.200000 0.300000", 0.7, "tag accept"),
        ("images/train/b.png", "add", None, "1 0.300000 0.350000 0.400000 0.500000", 0.9, "tag accept"),
        ("images/val/c.jpg", "remove", "2 0.5 0.5 0.25 0.5", None, 0.6, "tag accept"),
    }
    assert report.images == 3 and report.labels_changed == 3


def test_output_is_byte_identical_on_a_rerun_and_the_source_untouched(tmp_path):
    data_yaml = _dataset(tmp_path / "src")
    before = _tree_hash(tmp_path / "src")
    write_fixed_dataset(data_yaml, FIXES, tmp_path / "one")
    write_fixed_dataset(data_yaml, list(reversed(FIXES)), tmp_path / "two", link="copy")
    assert _tree_hash(tmp_path / "src") == before
    one, two = _tree_hash(tmp_path / "one"), _tree_hash(tmp_path / "two")
    assert one.pop("data.yaml") != two.pop("data.yaml")  # each names its own root, nothing else differs
    assert one == two


@pytest.mark.parametrize("fix, problem", [
    (LabelFix("images/train/a.jpg", "remove", box=2), "no longer exists"),
    (LabelFix("images/train/a.jpg", "remove", box=0, before=(0, 10, 10, 30, 30)), "labels changed"),
    (LabelFix("images/train/a.jpg", "relabel", box=0, before=(1, 40, 40, 60, 60), after=(1, 40, 40, 60, 60)),
     "labels changed"),
    (LabelFix("images/train/nope.jpg", "add", after=(0, 1, 1, 5, 5)), "not in the dataset"),
    (LabelFix("images/train/b.png", "add", after=(0, 60, 50, 90, 70)), "cannot be applied"),
    (LabelFix("images/train/b.png", "add", after=(3, 1, 1, 5, 5)), "class id 3"),
    (LabelFix("images/train/a.jpg", "grow", box=0), "unknown fix kind"),
])
def test_a_fix_that_cannot_be_applied_writes_nothing(tmp_path, fix, problem):
    data_yaml = _dataset(tmp_path / "src")
    before = _tree_hash(tmp_path / "src")
    with pytest.raises(FixError, match=problem) as err:
        write_fixed_dataset(data_yaml, FIXES[:1] + [fix] if fix.box != 0 else [fix], tmp_path / "out")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
    assert _tree_hash(tmp_path / "src") == before


def test_two_fixes_on_one_box_are_refused(tmp_path):
    data_yaml = _dataset(tmp_path / "src")
    with pytest.raises(FixError, match="two fixes on box 0"):
        write_fixed_dataset(data_yaml, [FIXES[0], LabelFix("images/train/a.jpg", "remove", box=0)], tmp_path / "out")


def test_an_existing_output_or_one_inside_the_source_is_refused(tmp_path):
    data_yaml = _dataset(tmp_path / "src")
    (tmp_path / "out").mkdir()
    with pytest.raises(OutputError, match="already exists"):
        write_fixed_dataset(data_yaml, FIXES, tmp_path / "out")
    with pytest.raises(OutputError, match="inside the source"):
        write_fixed_dataset(data_yaml, FIXES, tmp_path / "src" / "fixed")
    assert not (tmp_path / "src" / "fixed").exists()


def test_suspects_accepted_above_a_score_turn_injected_labels_back_into_the_true_ones(tmp_path):
    """Each kind injected into a real label file, found by the scorer from predictions on the true boxes,
    accepted above 0.2 and written: the output's label lines are the true ones. (0.2, not 0.5: fitted on real
    photos, a box no prediction covers scores 0.28 as spurious, since there it is often the model's miss.)"""
    from yolo_tl.analysis.metrics.label_issues import find_label_issues, fixes_above
    from yolo_tl.dataset.boxes import format_yolo_line, xyxy_to_yolo

    W, H = 400, 300
    true = [(0, 20, 20, 80, 90), (1, 150, 30, 230, 110), (2, 280, 40, 360, 120), (0, 40, 170, 120, 260),
            (1, 200, 180, 290, 270)]
    # true[0] dropped, true[2] labelled class 0, true[3] shifted 30 px right, a box added on background
    given = [true[1], (0, *true[2][1:]), (0, 70, 170, 150, 260), true[4], (1, 320, 200, 390, 290)]
    root = tmp_path / "src"
    (root / "images/train").mkdir(parents=True)
    (root / "labels/train").mkdir(parents=True)
    Image.new("RGB", (W, H), (90, 90, 90)).save(root / "images/train/x.png")

    def line(c, *box):
        return format_yolo_line(c, xyxy_to_yolo(box, W, H))

    (root / "labels/train/x.txt").write_text("".join(line(*b) + "\n" for b in given))
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/train\nnames: [a, b, c]\n")
    issues = find_label_issues([b[1:] for b in given], [b[0] for b in given], [b[1:] for b in true],
                               [b[0] for b in true], [0.9] * len(true))
    fixes = fixes_above(issues, "images/train/x.png", 0.2)
    assert sorted(f.kind for f in fixes) == ["add", "move", "relabel", "remove"]
    write_fixed_dataset(root / "data.yaml", fixes, tmp_path / "out")
    got = sorted((tmp_path / "out/labels/train/x.txt").read_text().splitlines())
    assert got == sorted(line(*b) for b in true)


def test_a_dataset_reached_through_a_linked_folder(tmp_path):
    """data.yaml's path: goes through a symlink; fixes name images relative to it and still find them."""
    _dataset(tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    data_yaml = tmp_path / "link" / "data.yaml"
    data_yaml.write_text(data_yaml.read_text().replace(str(tmp_path / "real"), str(tmp_path / "link")))
    write_fixed_dataset(data_yaml, FIXES, tmp_path / "out")
    assert (tmp_path / "out/labels/train/b.txt").read_text() == "1 0.300000 0.350000 0.400000 0.500000\n"
    assert json.loads((tmp_path / "out/fixes.json").read_text())["fixes"][0]["image"] == "images/train/a.jpg"
