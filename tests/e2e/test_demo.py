"""``yolo-tl demo --fast``: the whole workflow on the bundled sample, checked against outside facts.

One demo run (module fixture, about two minutes on 2 CPU cores) feeds every test. Facts come from
the VOC XML files themselves (box counts, val split), Ultralytics (its dataset checker, the
yolov8n.yaml backbone length, the checkpoints' tensors) and FiftyOne (the dataset it stored).
"""

from __future__ import annotations

import json
import signal
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import ultralytics.utils  # noqa: F401  (imported here, its log handler binds to pytest's stdout)
from typer.testing import CliRunner

from yolo_tl.cli import app
from yolo_tl.demo.sample import REPO_SAMPLE_DIR, TARGET_CLASSES

pytestmark = pytest.mark.slow
VOC = REPO_SAMPLE_DIR / "voc"


def _xml_box_count(stems=None) -> int:
    files = sorted((VOC / "Annotations").glob("*.xml"))
    return sum(len(ET.parse(f).getroot().findall("object")) for f in files
               if stems is None or f.stem in stems)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    def hung(signum, frame):  # a guard against a hang, not a timing: --fast takes ~1.5 min
        raise TimeoutError("yolo-tl demo --fast still running after 20 minutes")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(1200)
    try:
        res = CliRunner().invoke(app, ["demo", "--fast", "--out", str(out), "--json", "--name", "demo-test"])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert res.exit_code == 0, res.output[-3000:]
    try:
        data = json.loads(res.stdout)
    except json.JSONDecodeError as err:
        raise AssertionError(f"stdout is not JSON ({err}): {res.stdout[:500]!r}") from None
    return out, data


def test_fast_demo_writes_its_summary(demo_run):
    out, d = demo_run
    assert json.loads((out / "demo.json").read_text()) == d


def test_demo_prepared_every_box_of_both_forms(demo_run):
    from ultralytics.data.utils import check_det_dataset

    _, d = demo_run
    assert d["same_boxes"] is True
    assert d["images"] == len(list((VOC / "JPEGImages").glob("*.jpg")))
    assert d["boxes"] == _xml_box_count()
    for yaml in (d["data_yaml"], d["coco_data_yaml"]):
        info = check_det_dataset(yaml)  # Ultralytics' own checker accepts both datasets
        assert info["nc"] == len(TARGET_CLASSES)
        assert [info["names"][i] for i in range(info["nc"])] == list(TARGET_CLASSES)


def test_pretraining_is_never_claimed_when_it_did_not_happen(demo_run):
    from yolo_tl.demo.run import pretrained_available

    _, d = demo_run
    labels = [r["label"] for r in d["runs"]]
    have = pretrained_available().have
    if have:
        assert labels == ["transfer", "scratch"] and d["pretrained"] == "yolov8n.pt"
    else:
        assert labels == ["source", "transfer", "scratch"]
        assert d["pretrained"] == "synthetic source task"
        assert "NO COCO pretraining" in d["pretrained_note"]
        assert d["runs"][1]["start"] == "source-task weights (no COCO)"
        assert d["runs"][0]["start"].startswith("yolov8n.yaml, random init")
    scratch = d["runs"][-1]
    assert scratch["frozen_layers"] == [] and scratch["epochs"] == d["runs"][-2]["epochs"]


def test_transfer_froze_the_backbone_and_kept_it(demo_run):
    import torch
    from ultralytics.nn.tasks import yaml_model_load

    _, d = demo_run
    runs = {r["label"]: r for r in d["runs"]}
    n_backbone = len(yaml_model_load("yolov8n.yaml")["backbone"])
    assert runs["transfer"]["frozen_layers"] == list(range(n_backbone))
    if "source" not in runs:
        pytest.skip("started from yolov8n.pt; the frozen-tensor check needs the source checkpoint")

    def state(p):
        ckpt = torch.load(p, map_location="cpu", weights_only=False)
        return (ckpt.get("ema") or ckpt["model"]).float().state_dict()

    before, after = state(runs["source"]["best"]), state(runs["transfer"]["best"])
    frozen = [k for k in after if int(k.split(".")[1]) < n_backbone and not k.endswith("num_batches_tracked")]
    assert frozen
    assert all(torch.equal(before[k], after[k]) for k in frozen), "a frozen tensor changed"
    head = [k for k in after if int(k.split(".")[1]) >= n_backbone and k in before
            and before[k].shape == after[k].shape and after[k].is_floating_point()]
    assert any(not torch.equal(before[k], after[k]) for k in head), "the head did not train"


def test_evaluation_lists_every_sample_class(demo_run):
    _, d = demo_run
    ev = d["evaluation"]
    assert {row["name"] for row in ev["per_class"]} == set(TARGET_CLASSES)
    val = set((VOC / "ImageSets/Main/val.txt").read_text().split())
    assert sum(row["instances"] for row in ev["per_class"]) == _xml_box_count(val)
    assert 0.0 <= ev["map50_95"] <= ev["map50"] <= 1.0


def test_fiftyone_dataset_holds_the_val_split(demo_run):
    import fiftyone as fo

    _, d = demo_run
    assert d["analysis_error"] is None and d["app_command"] == "yolo-tl app demo-test"
    ds = fo.load_dataset("demo-test")
    val = set((VOC / "ImageSets/Main/val.txt").read_text().split())
    assert len(ds) == len(val) == d["analysis"]["totals"]["samples"]
    assert {Path(p).stem for p in ds.values("filepath")} == val
    gt = sum(len(x.detections) if x else 0 for x in ds.values("ground_truth"))
    assert gt == _xml_box_count(val)


def test_rendered_output_shows_metrics_paths_and_app_command(demo_run):
    from yolo_tl.cli._common import console
    from yolo_tl.cli.demo import render_demo

    _, d = demo_run
    width = console.width
    console.width = 400  # no wrapping inside table cells
    try:
        with console.capture() as cap:
            render_demo(d)
    finally:
        console.width = width
    text = cap.get()
    for needle in ("mAP50", "mAP50-95", "from scratch", *TARGET_CLASSES, "yolo-tl app demo-test",
                   d["runs"][-2]["best"]):
        assert needle in text, needle


def test_launch_opens_the_app_on_the_demo_dataset(demo_run, monkeypatch):
    """--launch wiring only (no training, no server): the App gets the dataset the demo made."""
    import yolo_tl.cli.analyze as cli_analyze
    import yolo_tl.demo.run as demo_mod

    _, d = demo_run
    fake = demo_mod.DemoResult(**{**d, "runs": [demo_mod.RunSummary(**r) for r in d["runs"]]})
    monkeypatch.setattr(demo_mod, "run_demo", lambda *a, **k: fake)
    calls = []
    monkeypatch.setattr(cli_analyze, "_serve", lambda *a: calls.append(a))
    res = CliRunner().invoke(app, ["demo", "--launch", "--name", "demo-test", "--port", "5199"])
    assert res.exit_code == 0, res.output
    assert calls and calls[0][0] == "demo-test" and calls[0][2] == 5199


def test_a_classic_coco_start_is_named_and_its_scratch_twin_is_the_same_architecture():
    """With the real YOLOv5n COCO checkpoint as --weights, the demo calls it COCO-pretrained and trains
    its from-scratch comparison on yolov5nu.yaml (SOURCE.md: the architecture it is carried into)."""
    from yolo_tl.demo.run import pretrained_available

    classic = Path(__file__).resolve().parents[2].parent / "shared" / "weights" / "yolov5n-v6.1-coco.pt"
    if not classic.is_file():
        pytest.skip(f"real YOLOv5 checkpoint not found at {classic} (../shared beside the repo)")
    have, why, arch, is_classic = pretrained_available(str(classic))
    assert have and is_classic and arch == "yolov5nu.yaml"
    assert "classic YOLOv5" in why and str(classic) in why
    assert pretrained_available("no-such-weights.pt")[0] is False
