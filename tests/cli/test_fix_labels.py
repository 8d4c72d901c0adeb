"""`yolo-tl fix-labels`: the accepted suggestions of an analysis, and only those, written as YOLO label lines.

The data: tests/helpers/suspects_data.py (one injected mistake of each kind, a perfect detector's boxes as
predictions); the expected label files are the clean boxes as YOLO lines computed by hand. Tags are set
through FiftyOne's own API, as the App sets them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers.suspects_data import FIXED, INJECTED, stored_analysis, write_injected_dataset
from yolo_tl.cli import app

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]
runner = CliRunner()


def _tree(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def analysis(tmp_path):
    data_yaml = write_injected_dataset(tmp_path / "src")
    ds = stored_analysis(data_yaml)
    yield ds, data_yaml
    if ds.name in __import__("fiftyone").list_datasets():
        ds.delete()


def _suggestion(ds, image: str):
    """The one suggestion stored for ``image``."""
    sample = next(s for s in ds if Path(s.filepath).name == image)
    (det,) = sample.label_issues.detections
    return det


def _tag(ds, image: str, tag: str) -> None:
    ds.select_labels(ids=[_suggestion(ds, image).id], fields="label_issues").tag_labels(tag)


def _one_line_error(r, *words: str) -> None:
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and len([ln for ln in lines if "error:" in ln]) == 1, r.output
    for w in words:
        assert w in r.output, r.output


def test_accepted_tags_are_written_exactly_and_byte_identically(analysis, tmp_path):
    ds, data_yaml = analysis
    src = data_yaml.parent
    before = _tree(src)
    _tag(ds, "a.jpg", "accept")
    _tag(ds, "c.jpg", "accept")
    _tag(ds, "b.jpg", "reject")
    out = tmp_path / "fixed"
    r = runner.invoke(app, ["fix-labels", ds.name, "--out", str(out)])
    assert r.exit_code == 0, r.output
    labels = out / "labels" / "train"  # val lists the same images: written once, as prepare does
    originals = {p.name: p.read_text() for p in (src / "labels" / "val").iterdir()}
    assert (labels / "a.txt").read_text() == FIXED["a.txt"]
    assert (labels / "c.txt").read_text() == FIXED["c.txt"]
    assert (labels / "b.txt").read_text() == originals["b.txt"]  # rejected
    assert (labels / "d.txt").read_text() == originals["d.txt"]  # untagged, no --accept-above
    doc = json.loads((out / "fixes.json").read_text())
    assert sorted((Path(f["image"]).name, f["issue"], f["accepted"]) for f in doc["fixes"]) == [
        ("a.jpg", "missing", "tag accept"), ("c.jpg", "badly_placed", "tag accept")]
    assert {f["score"] for f in doc["fixes"]} == {_suggestion(ds, "a.jpg").score, _suggestion(ds, "c.jpg").score}
    first = _tree(out)
    shutil.rmtree(out)
    assert runner.invoke(app, ["fix-labels", ds.name, "--out", str(out)]).exit_code == 0
    assert _tree(out) == first  # same tags: byte-identical output
    assert _tree(src) == before  # the source is only read


def test_accept_above_takes_untagged_suggestions_from_the_score(analysis, tmp_path):
    import yolo_tl

    ds, data_yaml = analysis
    scores = {img: _suggestion(ds, img).score for img in INJECTED}
    _tag(ds, "b.jpg", "reject")
    threshold = min(scores["a.jpg"], scores["c.jpg"])
    report = yolo_tl.fix_labels(ds.name, tmp_path / "out", accept_above=threshold)
    expected = {img for img, s in scores.items() if s >= threshold and img != "b.jpg"}
    assert {Path(f["image"]).name for f in report.applied} == expected
    assert {f["accepted"] for f in report.applied} == {f"--accept-above {threshold:g}"}
    assert report.rejected == 1 and report.accepted_by_tag == 0
    labels = tmp_path / "out" / "labels" / "train"
    for img in INJECTED:
        stem = Path(img).stem + ".txt"
        want = FIXED[stem] if img in expected else (data_yaml.parent / "labels" / "val" / stem).read_text()
        assert (labels / stem).read_text() == want
    # everything accepted: the fixed labels are the clean boxes, every kind fixed
    ds.select_labels(ids=[_suggestion(ds, "b.jpg").id], fields="label_issues").untag_labels("reject")
    for img in INJECTED:
        _tag(ds, img, "accept")
    yolo_tl.fix_labels(ds.name, tmp_path / "all")
    assert {p.name: p.read_text() for p in (tmp_path / "all" / "labels" / "train").iterdir()} == FIXED


def test_accept_top_takes_the_k_best_scored_untagged_suggestions(analysis, tmp_path):
    """--accept-top 2: the two suggestions FiftyOne holds with the highest scores, and no others."""
    ds, _ = analysis
    scores = {img: _suggestion(ds, img).score for img in INJECTED}
    best_two = sorted(scores, key=lambda img: -scores[img])[:2]
    assert scores[best_two[1]] > sorted(scores.values())[-3]  # no tie at the cut: the choice is defined
    r = runner.invoke(app, ["fix-labels", ds.name, "--out", str(tmp_path / "out"), "--accept-top", "2", "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout[r.stdout.index("{"):])
    assert sorted(Path(f["image"]).name for f in report["applied"]) == sorted(best_two)
    assert {f["accepted"] for f in report["applied"]} == {"--accept-top 2"}
    assert report["accepted_above"] == 2 and report["untouched"] == len(INJECTED) - 2
    labels = tmp_path / "out" / "labels" / "train"
    for img in best_two:
        assert (labels / (Path(img).stem + ".txt")).read_text() == FIXED[Path(img).stem + ".txt"]


def test_bad_inputs_are_one_line_and_write_nothing(analysis, tmp_path):
    import fiftyone as fo

    from yolo_tl.analysis.store.our_datasets import TAG

    ds, data_yaml = analysis
    out = tmp_path / "out"
    src_before = _tree(data_yaml.parent)

    r = runner.invoke(app, ["fix-labels", "no-such-analysis-xyz", "--out", str(out)])
    _one_line_error(r, "no-such-analysis-xyz")
    other = fo.Dataset()
    try:
        r = runner.invoke(app, ["fix-labels", other.name, "--out", str(out)])
        _one_line_error(r, other.name, "not a yolo-tl analysis")
        other.tags = [TAG]  # ours, but made before label suggestions existed
        other.info["yolo_tl"] = {"data_yaml": str(data_yaml)}
        other.save()
        r = runner.invoke(app, ["fix-labels", other.name, "--out", str(out)])
        _one_line_error(r, "label_issues")
    finally:
        other.delete()
    r = runner.invoke(app, ["fix-labels", ds.name, "--out", str(out), "--accept-above", "1.5"])
    _one_line_error(r, "--accept-above")

    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = runner.invoke(app, ["fix-labels", ds.name, "--out", str(out)])
    _one_line_error(r, "already exists", str(out))
    assert _tree(out) == {"keep.txt": hashlib.sha256(b"mine").hexdigest()}
    out.joinpath("keep.txt").unlink()
    out.rmdir()

    _tag(ds, "d.jpg", "accept")
    _tag(ds, "d.jpg", "reject")
    r = runner.invoke(app, ["fix-labels", ds.name, "--out", str(out)])
    _one_line_error(r, "tagged both", "d.jpg")
    ds.select_labels(ids=[_suggestion(ds, "d.jpg").id], fields="label_issues").untag_labels("reject")

    # the GT box the accepted suggestion is about was deleted from the dataset since
    _tag(ds, "c.jpg", "accept")
    sample = next(s for s in ds if Path(s.filepath).name == "c.jpg")
    sample.ground_truth.detections = []
    sample.save()
    r = runner.invoke(app, ["fix-labels", ds.name, "--out", str(out)])
    _one_line_error(r, "no longer exists", "c.jpg")
    assert not out.exists() and not list(tmp_path.glob("out*"))
    assert _tree(data_yaml.parent) == src_before


def test_a_fix_that_cannot_be_applied_is_refused(analysis, tmp_path):
    ds, data_yaml = analysis
    _tag(ds, "b.jpg", "accept")
    label = data_yaml.parent / "labels" / "val" / "b.txt"
    label.write_text("0 0.187500 0.250000 0.250000 0.333333\n")  # box 1 removed on disk since the analysis
    out = tmp_path / "out"
    r = runner.invoke(app, ["fix-labels", ds.name, "--out", str(out)])
    _one_line_error(r, "b.txt", "no longer exists")
    assert not out.exists()
