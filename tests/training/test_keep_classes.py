"""--keep-classes: merged class list, head rows copied by name, pseudo-labels, evaluate by class name.

The start model is the session's tiny checkpoint (classes red, green, blue); the target data are the
same tiny images relabelled as {square, red, lime}, so "red" is shared and green / blue are kept
from the start model. Facts checked against Ultralytics: the head rows its cls_remap copied (read
from the trainer's model before the first step), its own predictions of the start model (the
pseudo-labels), the class names in best.pt, and box counts read from the label files.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from tests.helpers.train_helpers import FAST, label_counts, write_data_yaml
from yolo_tl.errors import TrainingError, WeightsError
from yolo_tl.model.evaluate import evaluate
from yolo_tl.training.finetune import finetune

TARGET = {0: "square", 1: "red", 2: "lime"}
MERGED = ["square", "red", "lime", "green", "blue"]
CONF = 0.001  # the 1-epoch start model scores at most ~0.004


def _hashes(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _iou(a, b) -> float:
    from ultralytics.utils.metrics import box_iou
    from ultralytics.utils.ops import xywh2xyxy

    return float(box_iou(xywh2xyxy(torch.tensor([a])), xywh2xyxy(torch.tensor([b])))[0, 0])


@pytest.fixture(scope="module")
def kept(tiny_yolo_data, tiny_base_weights, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("keep")
    root = tmp / "target"
    shutil.copytree(tiny_yolo_data.parent, root)
    data = write_data_yaml(root, TARGET)
    before = _hashes(root)
    rows = {}

    def grab_head(trainer):
        from ultralytics.utils.torch_utils import unwrap_model

        head = unwrap_model(trainer.model).model[-1]
        rows["cls"] = [m[-1].weight.detach().clone() for m in head.cv3]

    fits = []

    def grab_fitness(trainer):
        if trainer.epoch < trainer.epochs:  # not the final validation of best.pt
            box = trainer.validator.metrics.box
            fits.append((trainer.fitness, {int(c): float(a) for c, a in zip(box.ap_class_index, box.ap)},
                         trainer.best_fitness))

    result = finetune(data, weights=tiny_base_weights, freeze="backbone", epochs=2, keep_classes=True,
                      pseudo_conf=CONF, imgsz=64, batch=4, workers=0, project=tmp / "runs", name="kept",
                      extra=FAST, callbacks={"on_pretrain_routine_end": grab_head, "on_fit_epoch_end": grab_fitness})
    return {"result": result, "data": data, "root": root, "before": before, "rows": rows, "fits": fits}


def test_keep_classes_class_list_and_head_rows(kept, tiny_base_weights):
    from ultralytics import YOLO

    record = json.loads(kept["result"].run_json.read_text())["keep_classes"]
    assert record["names"] == MERGED
    assert record["head_rows_from_pretrained"] == ["red", "green", "blue"]
    assert record["head_rows_new"] == ["square", "lime"]
    assert list(YOLO(str(kept["result"].best)).names.values()) == MERGED
    source = YOLO(str(tiny_base_weights)).model.model[-1]
    for level, dst in enumerate(kept["rows"]["cls"]):
        src = source.cv3[level][-1].weight.float()
        for src_row, dst_row in ((0, 1), (1, 3), (2, 4)):  # red, green, blue by name
            assert torch.equal(dst[dst_row], src[src_row]), f"row {MERGED[dst_row]} not copied at level {level}"


def test_keep_classes_best_pt_is_chosen_on_the_labelled_classes(kept):
    """Ultralytics' per-epoch fitness is replaced by the mAP50-95 of the data's own classes (0-2)."""
    assert len(kept["fits"]) == 2
    for fitness, ap, _ in kept["fits"]:
        assert any(c >= 3 for c in ap), "the val split has no pseudo-labelled class: nothing is checked"
        labelled = [a for c, a in ap.items() if c < 3]
        assert fitness == pytest.approx(sum(labelled) / len(labelled))
    assert kept["fits"][-1][2] == pytest.approx(max(f for f, _, _ in kept["fits"]))


def test_keep_classes_pseudo_labels_are_the_start_models_boxes(kept, tiny_base_weights):
    from ultralytics import YOLO

    record = json.loads(kept["result"].run_json.read_text())["keep_classes"]
    derived = Path(record["data_yaml"]).parent
    assert derived.parent == kept["result"].run_dir, "the derived dataset must live in the run folder"
    assert _hashes(kept["root"]) == kept["before"], "the user's dataset was written to"
    model = YOLO(str(tiny_base_weights))
    counts: dict = {}
    for split in ("train", "val"):
        for image in sorted((kept["root"] / "images" / split).glob("*.jpg")):
            user = (kept["root"] / "labels" / split / f"{image.stem}.txt").read_text().splitlines()
            got = (derived / "labels" / split / f"{image.stem}.txt").read_text().splitlines()
            assert got[:len(user)] == [f"{int(u.split()[0])} " + " ".join(f"{float(v):.6f}" for v in u.split()[1:])
                                       for u in user]
            user_boxes = [[float(v) for v in u.split()[1:]] for u in user]
            res = model.predict(str(image), conf=CONF, imgsz=64, verbose=False)[0]
            expected = sorted(
                (MERGED.index(model.names[int(c)]), *(round(v, 6) for v in b))
                for c, b in zip(res.boxes.cls.tolist(), res.boxes.xywhn.tolist())
                if model.names[int(c)] not in TARGET.values() and all(_iou(b, u) < 0.3 for u in user_boxes))
            pseudo = sorted((int(p.split()[0]), *(float(v) for v in p.split()[1:])) for p in got[len(user):])
            assert [p[0] for p in pseudo] == [e[0] for e in expected]
            for p, e in zip(pseudo, expected):
                assert p[1:] == pytest.approx(e[1:], abs=2e-6)
            for p in pseudo:
                counts.setdefault(split, {}).setdefault(MERGED[p[0]], 0)
                counts[split][MERGED[p[0]]] += 1
    assert sum(sum(c.values()) for c in counts.values()) > 0, "no pseudo-labels at all: the test checks nothing"
    assert record["pseudo_labels"] == counts


def test_evaluate_matches_classes_by_name(kept, tiny_yolo_data):
    """The kept model (5 classes) on the original red/green/blue data: labels matched by name."""
    best = kept["result"].best
    result = evaluate(best, tiny_yolo_data, imgsz=64, batch=4, workers=0)
    assert result.matched_by_name
    truth = {["red", "green", "blue"][c]: n for c, n in label_counts(tiny_yolo_data.parent / "labels" / "val").items()}
    assert {r.name: (r.images, r.instances) for r in result.metrics.per_class} == truth


def test_keep_classes_needs_trained_weights(tiny_yolo_data, tmp_path):
    with pytest.raises(TrainingError, match="keep_classes: needs trained start weights"):
        finetune(tiny_yolo_data, weights="yolov8n.yaml", freeze="none", keep_classes=True, project=tmp_path)
    with pytest.raises(TrainingError, match="distill: needs keep_classes"):
        finetune(tiny_yolo_data, weights="yolov8n.yaml", freeze="none", distill=True, project=tmp_path)


def _remapped_by_hand(tiny_yolo_data: Path, tmp: Path) -> Path:
    """The tiny data with labels rewritten to the kept model's class order (red 1, green 3, blue 4)."""
    root = tmp / "by_hand"
    shutil.copytree(tiny_yolo_data.parent, root)
    for f in (root / "labels").rglob("*.txt"):
        lines = [line.split() for line in f.read_text().splitlines() if line.strip()]
        f.write_text("".join(f"{ {0: 1, 1: 3, 2: 4}[int(p[0])]} {' '.join(p[1:])}\n" for p in lines))
    for cache in root.rglob("*.cache"):
        cache.unlink()
    return write_data_yaml(root, dict(enumerate(MERGED)))


def test_evaluate_and_analyze_by_name_equal_ultralytics_on_relabelled_data(kept, tiny_yolo_data, tmp_path):
    import fiftyone as fo
    from ultralytics import YOLO

    from yolo_tl.analysis.analyze import analyze

    best = kept["result"].best
    theirs = YOLO(str(best)).val(data=str(_remapped_by_hand(tiny_yolo_data, tmp_path)), split="val", imgsz=64,
                                 batch=4, workers=0, plots=False, project=str(tmp_path / "v"), name="v")
    ours = evaluate(best, tiny_yolo_data, imgsz=64, batch=4, workers=0).metrics
    assert (ours.map50, ours.map50_95) == (theirs.box.map50, theirs.box.map)
    rep = analyze(tiny_yolo_data, weights=best, split="val", name="test-keep-by-name", imgsz=64, batch=4,
                  compare_ultralytics=True)
    ds = fo.load_dataset(rep.name)
    gt = {}
    for labels in ds.values("ground_truth.detections.label"):
        for lab in labels or []:
            gt[lab] = gt.get(lab, 0) + 1
    truth = label_counts(tiny_yolo_data.parent / "labels" / "val")
    assert gt == {["red", "green", "blue"][c]: n for c, (_, n) in truth.items()}
    predicted = {lab for labels in ds.values("predictions.detections.label") for lab in labels or []}
    assert predicted and predicted <= {"red", "green", "blue"}, predicted
    assert rep.maps.ultralytics_map50_95 == pytest.approx(theirs.box.map)


def test_keep_classes_with_distill_teacher_is_the_start_model(kept, tiny_base_weights, tmp_path):
    """--distill: Ultralytics' checkpoint names the start model as teacher; frozen layers stay exact."""
    from tests.helpers.train_helpers import backbone_keys, checkpoint_state

    result = finetune(kept["data"], weights=tiny_base_weights, freeze="backbone", epochs=1, keep_classes=True,
                      distill=True, pseudo_conf=CONF, imgsz=64, batch=4, workers=0, project=tmp_path,
                      name="distilled", extra=FAST)
    ckpt = torch.load(result.best, map_location="cpu", weights_only=False)
    assert Path(ckpt["train_args"]["distill_model"]) == Path(tiny_base_weights).resolve()
    assert list((ckpt.get("ema") or ckpt["model"]).names.values()) == MERGED
    start, after = checkpoint_state(tiny_base_weights), checkpoint_state(result.best)
    assert [k for k in backbone_keys(start) if not torch.equal(start[k], after[k])] == []


def test_evaluate_refuses_an_index_match_of_other_classes(kept, tiny_base_weights):
    """Same class count, other names: scoring by index would grade red as square; refused in one line."""
    with pytest.raises(WeightsError, match="class names differ"):
        evaluate(tiny_base_weights, kept["data"], imgsz=64, batch=4, workers=0)


def test_mixed_target_holds_unlabelled_source_objects(tmp_path):
    """The keep-classes benchmark's target task: the same pictures as a fully labelled draw, minus the
    source-class objects in the XML (read with the standard library)."""
    import xml.etree.ElementTree as ET

    from yolo_tl.demo.sample import SOURCE_CLASSES, TARGET_CLASSES, generate, generate_mixed_target

    mixed = generate_mixed_target(tmp_path / "mixed", n_images=12)
    full = generate(tmp_path / "full", classes=TARGET_CLASSES + SOURCE_CLASSES, n_images=12, seed=7,
                    prefix="mixed", coco=False)

    def objects(root: Path) -> dict:
        return {f.stem: [o.findtext("name") for o in ET.parse(f).getroot().iter("object")]
                for f in sorted((root / "voc" / "Annotations").glob("*.xml"))}

    m, f = objects(mixed.root), objects(full.root)
    assert _hashes(mixed.root / "voc" / "JPEGImages") == _hashes(full.root / "voc" / "JPEGImages")
    assert all(set(names) <= set(TARGET_CLASSES) for names in m.values())
    assert {k: [n for n in v if n in TARGET_CLASSES] for k, v in f.items()} == m
    assert sum(n in SOURCE_CLASSES for v in f.values() for n in v) > 5, "no source objects were drawn"
