"""A generated corpus of YOLO datasets made by hand or by other tools, given to finetune and analyze.

Each case starts from a tiny valid dataset (4 train + 2 val images) and changes one thing. The
judge of what is bad is Ultralytics itself: its ``YOLODataset`` (which runs ``verify_image_label``)
decides which images it would keep.

- error cases: ``yolo-tl finetune`` exits 1 with one line on stderr that names the culprit (file,
  and line or field) and the problem; no traceback; no run folder; the dataset's bytes unchanged.
  Where the culprit is one image, Ultralytics must indeed drop that image (or, for a truncated
  JPEG, rewrite it: checked on a copy).
- accepted cases: our check keeps exactly the images Ultralytics keeps, from the data.yaml we hand
  it (after resolving paths as the user meant them), and says what it saw (backgrounds, ...).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import ultralytics.utils  # noqa: F401  (its log handler binds to stdout now, not to a CliRunner stream closed later)
from typer.testing import CliRunner

from tests.helpers.corpus_builders import tree_fingerprint
from tests.helpers.train_helpers import write_tiny_dataset
from yolo_tl.cli import app

RUNNER = CliRunner()
TRAIN = ["--weights", "yolov8n.yaml", "--epochs", "1", "--imgsz", "64", "--batch", "2", "--workers", "0",
         "--freeze", "none"]


@dataclass
class Case:
    id: str
    build: Callable[[Path], None]  # mutates the base dataset in place
    culprit: str = ""  # error: text naming the file (relative to the dataset root) or field
    problem: str = ""  # error: regex of the problem
    bad_image: str = ""  # error: the image Ultralytics must drop ("" when not one image)
    check: Callable[[object], None] | None = None  # accepted: assertions on the LabelCheck

    @property
    def error(self) -> bool:
        return bool(self.problem)


def label(split: str, i: int, text: str) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        (root / "labels" / split / f"{split}_{i}.txt").write_text(text, encoding="utf-8")
    return build


def yaml_text(text: str) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        (root / "data.yaml").write_text(text.replace("{root}", str(root)), encoding="utf-8")
    return build


def image(split: str, i: int, data: bytes | Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        p = root / "images" / split / f"{split}_{i}.jpg"
        p.write_bytes(data(p.read_bytes()) if callable(data) else data)
    return build


def both(*builds: Callable[[Path], None]) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        for b in builds:
            b(root)
    return build


def _tiny_jpeg(size: int) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), (90, 90, 90)).save(buf, "JPEG")
    return buf.getvalue()


def _txt_list(lines: str, name: str = "train.txt") -> Callable[[Path], None]:
    def build(root: Path) -> None:
        (root / name).write_text(lines, encoding="utf-8")
        (root / "data.yaml").write_text(f"train: {name}\nval: images/val\nnames: [red, green, blue]\n")
    return build


def _orphan(root: Path) -> None:
    (root / "labels" / "train" / "no_such_image.txt").write_text("0 0.5 0.5 0.2 0.2\n")


def _background(root: Path) -> None:
    (root / "labels" / "train" / "train_2.txt").unlink()


def _two_folders(root: Path) -> None:
    for i in (2, 3):
        (root / "images" / "extra").mkdir(exist_ok=True)
        (root / "labels" / "extra").mkdir(exist_ok=True)
        os.replace(root / "images" / "train" / f"train_{i}.jpg", root / "images" / "extra" / f"train_{i}.jpg")
        os.replace(root / "labels" / "train" / f"train_{i}.txt", root / "labels" / "extra" / f"train_{i}.txt")
    (root / "data.yaml").write_text(f"path: {root}\ntrain: [images/train, images/extra]\nval: images/val\n"
                                    "names: [red, green, blue]\n")


BOX = "0 0.5 0.5 0.2 0.2\n"
R = "path: {root}\n"
TV = "train: images/train\nval: images/val\n"
POLY = "1 0.1 0.1 0.4 0.1 0.4 0.4 0.1 0.4\n"
L = "labels/train/train_1.txt"

CASES = [
    # --- data.yaml -----------------------------------------------------------------------------
    Case("yaml_split_folder_missing", yaml_text(R + "train: images/train\nval: images/nope\nnames: [a, b, c]\n"),
         "data.yaml: val", r"images/nope \(dataset root .*: path: in the data.yaml\)"),
    Case("yaml_names_nc_disagree", yaml_text(R + TV + "nc: 5\nnames: [a, b, c]\n"),
         "data.yaml: nc", r"nc is 5 but names lists 3 classes"),
    Case("yaml_val_missing", yaml_text(R + "train: images/train\nnames: [a, b, c]\n"),
         "data.yaml: val", r"no 'val' split \(Ultralytics needs one"),
    Case("yaml_relative_root_missing", yaml_text("path: nowhere\n" + TV + "names: [a, b, c]\n"),
         "data.yaml: path", r"'nowhere' not found: neither .*/nowhere \(beside the data.yaml\) nor"),
    Case("yaml_absolute_root_missing", yaml_text("path: /no/such/dir\n" + TV + "names: [a]\n"),
         "data.yaml: path", r"/no/such/dir does not exist"),
    Case("yaml_not_a_mapping", yaml_text("- train\n- val\n"), "data.yaml", r"expected a mapping"),
    Case("yaml_invalid", yaml_text("names: [a, b\n"), "data.yaml", r"not valid YAML"),
    Case("yaml_names_gap", yaml_text(TV + "names:\n  0: a\n  2: b\n"),
         "data.yaml: names", r"0\.\.N-1 without gaps"),
    Case("yaml_names_missing", yaml_text(TV),
         "data.yaml: names", r"missing or empty class list"),
    Case("yaml_txt_list_missing", yaml_text("train: nope.txt\nval: images/val\nnames: [a, b, c]\n"),
         "data.yaml: train", r"nope.txt"),
    Case("yaml_txt_lists_missing_image", _txt_list("./images/train/train_0.jpg\n./images/train/gone.jpg\n"),
         "images/train/gone.jpg", r"image listed in the split does not exist"),
    Case("yaml_no_path_relative_splits", yaml_text(TV + "names: [red, green, blue]\n"),
         check=lambda c: None),
    Case("yaml_relative_path_dot", yaml_text("path: .\n" + TV + "names: [r, g, b]\n"),
         check=lambda c: None),
    Case("yaml_names_dict_string_keys", yaml_text(TV + "names: {'0': r, '1': g, '2': b}\n"),
         check=lambda c: None),
    Case("yaml_nc_only", yaml_text(TV + "nc: 3\n"), check=lambda c: None),
    Case("yaml_txt_list_dot_slash", _txt_list("".join(f"./images/train/train_{i}.jpg\n" for i in range(4))),
         check=lambda c: None),
    Case("yaml_txt_list_plain_relative", _txt_list("".join(f"images/train/train_{i}.jpg\n" for i in range(4))),
         check=lambda c: None),
    Case("yaml_two_train_folders", _two_folders, check=lambda c: None),
    # --- label lines ---------------------------------------------------------------------------
    Case("label_class_id_too_big", label("train", 1, BOX + "3 0.5 0.5 0.1 0.1\n"), f"{L}: line 2",
         r"class id 3 >= nc 3", "train_1.jpg"),
    Case("label_negative_coordinate", label("train", 1, "0 -0.2 0.5 0.1 0.1\n"), f"{L}: line 1",
         r"negative coordinate -0.2", "train_1.jpg"),
    Case("label_negative_size", label("train", 1, "0 0.5 0.5 -0.005 0.1\n"), f"{L}: line 1",
         r"negative coordinate", "train_1.jpg"),
    Case("label_coordinate_above_1", label("train", 1, "0 0.5 1.5 0.1 0.1\n"), f"{L}: line 1",
         r"coordinate 1.5 > 1", "train_1.jpg"),
    Case("label_six_columns", label("train", 1, "0 0.5 0.5 0.1 0.1 0.93\n"), f"{L}: line 1",
         r"predictions file", "train_1.jpg"),
    Case("label_polygon_among_boxes", label("train", 1, BOX + POLY), f"{L}: line 2",
         r"mixes polygons and boxes", "train_1.jpg"),
    Case("label_polygon_odd_pair", label("train", 1, "1 0.1 0.1 0.4 0.1 0.4 0.4 0.1\n"), f"{L}: line 1",
         r"a polygon needs", "train_1.jpg"),
    Case("label_not_numeric", label("train", 1, "cat 0.5 0.5 0.1 0.1\n"), f"{L}: line 1",
         r"not a number", "train_1.jpg"),
    Case("label_negative_class", label("train", 1, "-1 0.5 0.5 0.1 0.1\n"), f"{L}: line 1",
         r"class id -1 is not a whole number", "train_1.jpg"),
    Case("label_fractional_class", label("train", 1, "1.5 0.5 0.5 0.1 0.1\n"), f"{L}: line 1",
         r"class id 1.5 is not a whole number", "train_1.jpg"),
    Case("label_four_columns", label("train", 1, "0 0.5 0.5 0.1\n"), f"{L}: line 1",
         r"4 values; expected 5", "train_1.jpg"),
    Case("label_nan", label("train", 1, "0 nan 0.5 0.1 0.1\n"), f"{L}: line 1", r"not a finite number",
         "train_1.jpg"),
    Case("label_bad_in_val", label("val", 0, "9 0.5 0.5 0.1 0.1\n"), "labels/val/val_0.txt: line 1",
         r"class id 9 >= nc 3", "val_0.jpg"),
    Case("label_empty_lines", label("train", 1, "\n" + BOX + "\n\n" + BOX.replace("0.2", "0.3") + "\n"),
         check=lambda c: None),
    Case("label_duplicate_lines", label("train", 1, BOX + BOX), check=lambda c: _eq(c.duplicate_lines, 1)),
    Case("label_without_image", _orphan, check=lambda c: _eq(c.orphan_labels, 1)),
    Case("image_without_label", _background, check=lambda c: _eq(c.backgrounds, 1)),
    Case("label_polygons_only", label("train", 1, POLY + POLY.replace("0.4", "0.3")),
         check=lambda c: _eq(c.polygon_files, 1)),
    Case("label_empty_file", label("train", 1, ""), check=lambda c: None),
    Case("label_within_tolerance", label("train", 1, "0 1.005 0.5 0.1 0.1\n0 0.5 -0.005 0.1 0.1\n"),
         check=lambda c: None),
    Case("label_bom_crlf", label("train", 1, "\ufeff0 0.5 0.5 0.2 0.2\r\n1 0.4 0.4 0.1 0.1\r\n"),
         check=lambda c: None),
    # --- images --------------------------------------------------------------------------------
    Case("image_undecodable", image("train", 2, b"this is not a jpeg" * 20), "images/train/train_2.jpg",
         r"not a readable image", "train_2.jpg"),
    Case("image_empty_file", image("train", 2, b""), "images/train/train_2.jpg", r"not a readable image",
         "train_2.jpg"),
    Case("image_under_10px", image("train", 2, _tiny_jpeg(8)), "images/train/train_2.jpg",
         r"8x8; Ultralytics drops images under 10 px", "train_2.jpg"),
    Case("image_truncated_jpeg", image("train", 2, lambda b: b[:-2]), "images/train/train_2.jpg",
         r"truncated.*rewrite this file in place", "train_2.jpg"),
]


@pytest.fixture(autouse=True)
def _root_log_handlers():
    """The analyze CLI's logging.basicConfig binds a handler to CliRunner's stream, closed after the
    call; a later test's log line would then print "--- Logging error ---". Put the handlers back."""
    import logging

    saved = list(logging.root.handlers)
    yield
    logging.root.handlers[:] = saved


def _eq(got, want) -> None:
    assert got == want


def make_case(tmp_path: Path, case: Case) -> Path:
    root = tmp_path / "data"
    write_tiny_dataset(root, n_train=4, n_val=2, size=64)
    case.build(root)
    return root


def ultralytics_keeps(data_yaml: Path, split: str) -> set[str]:
    """The images Ultralytics' own dataset class keeps for ``split`` (runs on a copy: it writes .cache)."""
    from ultralytics.cfg import get_cfg
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(str(data_yaml))
    ds = YOLODataset(img_path=data[split], data=data, imgsz=64, augment=False, hyp=get_cfg(), batch_size=2)
    return {Path(f).name for f in ds.im_files}


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in CASES if c.error], ids=lambda c: c.id)
def test_bad_dataset_fails_in_one_line(case: Case, tmp_path: Path) -> None:
    root = make_case(tmp_path, case)
    before = tree_fingerprint(root)
    runs = tmp_path / "runs"
    r = RUNNER.invoke(app, ["finetune", str(root / "data.yaml"), *TRAIN, "--project", str(runs)])
    out = r.stderr.strip()
    assert r.exit_code == 1, (r.exit_code, r.output, r.exception)
    assert "Traceback" not in r.output and len(out.splitlines()) == 1, out
    culprit = case.culprit if case.culprit.startswith("data.yaml") else str(root / case.culprit)
    assert culprit.replace("data.yaml", str(root / "data.yaml"), 1) in out, out
    assert re.search(case.problem, out), out
    assert tree_fingerprint(root) == before and not runs.exists()
    if case.bad_image:
        copy = tmp_path / "copy"
        shutil.copytree(root, copy)
        (copy / "data.yaml").write_text(f"path: {copy}\n" + TV +
                                        "names: [red, green, blue]\n")
        split = "val" if case.bad_image.startswith("val") else "train"
        victim = copy / "images" / split / case.bad_image
        was = victim.read_bytes()
        kept = ultralytics_keeps(copy / "data.yaml", split)
        # Ultralytics drops that image, or (truncated JPEG) rewrites the user's file in place
        assert case.bad_image not in kept or victim.read_bytes() != was


@pytest.mark.parametrize("case", [c for c in CASES if not c.error], ids=lambda c: c.id)
def test_accepted_dataset_matches_ultralytics(case: Case, tmp_path: Path, monkeypatch) -> None:
    from yolo_tl.dataset.handoff import check_training_data, read_data_info

    root = make_case(tmp_path, case)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative paths must be read against the data.yaml, not the cwd
    before = tree_fingerprint(root)
    info = read_data_info(root / "data.yaml")
    assert info.root == root.resolve() and info.nc == 3
    checked = check_training_data(info, on_error="fail", workdir=tmp_path / "run")
    assert tree_fingerprint(root) == before  # nothing of the user's written
    ours = {s: {p.name for p in imgs} for s, imgs in (checked_images(info, checked)).items()}
    for split in ("train", "val"):
        assert ours[split] == ultralytics_keeps(checked.data_yaml, split), split
    assert checked.record["skipped"] == []
    case.check(_as_check(checked.record))
    from yolo_tl.analysis.collect import read_split, read_yolo_boxes

    split = read_split(root / "data.yaml", "train")  # analyze reads the same dataset without complaint
    assert {p.name for p in split.images} == ours["train"]
    lines = sum(1 for lbl in split.labels if lbl.is_file() for ln in lbl.read_text("utf-8-sig").splitlines()
                if ln.strip())
    assert sum(len(read_yolo_boxes(lbl, split.names)) for lbl in split.labels) == lines


def checked_images(info, checked) -> dict:
    from yolo_tl.dataset.yolo_check import check_dataset

    return check_dataset(info, ("train", "val")).images


def _as_check(record: dict):
    from types import SimpleNamespace

    return SimpleNamespace(**record)


@pytest.mark.slow
def test_skip_trains_without_the_images_ultralytics_would_drop(tmp_path: Path) -> None:
    """--on-error skip: training runs, run.json lists exactly the images Ultralytics drops."""
    import json

    root = tmp_path / "data"
    write_tiny_dataset(root, n_train=6, n_val=2, size=64)
    label("train", 1, "7 0.5 0.5 0.1 0.1\n")(root)
    label("train", 3, "0 0.5 0.5 0.1 0.1 0.9\n")(root)
    image("train", 4, b"garbage" * 9)(root)
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    (copy / "data.yaml").write_text(f"path: {copy}\n" + TV + "names: [r, g, b]\n")
    dropped = {f"train_{i}.jpg" for i in range(6)} - ultralytics_keeps(copy / "data.yaml", "train")
    before = files_fingerprint(root)
    runs = tmp_path / "runs"
    r = RUNNER.invoke(app, ["finetune", str(root / "data.yaml"), *TRAIN, "--project", str(runs), "--name", "s",
                            "--on-error", "skip"])
    assert r.exit_code == 0, r.output
    record = json.loads((runs / "s" / "run.json").read_text())
    check = record["label_check"]
    assert {Path(s["image"]).name for s in check["skipped"]} == dropped == {"train_1.jpg", "train_3.jpg",
                                                                          "train_4.jpg"}
    assert check["images"] == {"train": 3, "val": 2} and record["status"] == "finished"
    used = Path(check["data_yaml_used"])
    assert used.parent == runs / "s" and ultralytics_keeps(used, "train") == {"train_0.jpg", "train_2.jpg",
                                                                             "train_5.jpg"}
    # the user's files: unchanged (Ultralytics itself writes its labels/*.cache beside them)
    assert files_fingerprint(root) == before


def files_fingerprint(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix != ".cache"}


AFTER_TRAINING_CASES = ["label_bad_in_val", "yaml_split_folder_missing", "yaml_names_nc_disagree",
                        "label_six_columns"]


@pytest.mark.parametrize("command", ["analyze", "evaluate"])
@pytest.mark.parametrize("case_id", AFTER_TRAINING_CASES)
def test_analyze_and_evaluate_refuse_bad_dataset(case_id: str, command: str, tmp_path: Path,
                                                 tiny_base_weights: Path) -> None:
    """Ultralytics' validator would drop the bad image and report a mAP on fewer images: we stop."""
    import fiftyone as fo

    case = next(c for c in CASES if c.id == case_id)
    root = make_case(tmp_path, case)
    if case_id == "label_six_columns":  # the bad line in the split that is evaluated
        os.replace(root / "labels" / "train" / "train_1.txt", root / "labels" / "val" / "val_1.txt")
    name = f"t-{case_id}"
    before = tree_fingerprint(root)
    assert not fo.dataset_exists(name)
    data, weights = str(root / "data.yaml"), str(tiny_base_weights)
    args = (["analyze", data, "--weights", weights, "--name", name, "--imgsz", "64", "--no-ultralytics-val"]
            if command == "analyze" else ["evaluate", weights, data, "--split", "val", "--imgsz", "64"])
    r = RUNNER.invoke(app, args)
    out = r.stderr.strip()
    assert r.exit_code == 1 and "Traceback" not in r.output and len(out.splitlines()) == 1, r.output
    culprit = str(root / case.culprit.replace("train_1", "val_1").replace("labels/train", "labels/val"))
    assert re.search(case.problem, out) and culprit in out and "--on-error" not in out, out
    # nothing made: not the dataset, not a temporary one (the database may be shared with other runs,
    # so only this name is looked at)
    assert tree_fingerprint(root) == before and not [n for n in fo.list_datasets() if n.startswith(name)]
