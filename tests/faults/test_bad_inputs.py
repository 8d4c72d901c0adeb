"""A corpus of bad and awkward VOC / COCO inputs for ``yolo-tl prepare``, each with its expected outcome.

Every case is generated in tmp_path by a small builder and run through the real CLI
(``yolo_tl.cli.app`` under Typer's CliRunner). Expected outcome, one of:

- error: exit code 1 and exactly one line on stderr that names the file and the problem; no
  traceback, no output folder, no leftovers;
- success: exit code 0, a valid dataset (every image has a label file, every value in [0, 1]) and
  the problem handled and counted in prepare_report.json.

For every case: never a traceback, never a hang (a 20 s alarm), and never a changed byte in the
source tree (names, modes, sizes, mtimes and contents are hashed before and after).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from PIL import Image, ImageOps
from typer.testing import CliRunner

from tests.helpers import REPO
from tests.helpers.corpus_builders import (
    coco_ann,
    coco_dataset,
    coco_doc,
    coco_image,
    image_bytes,
    png_header_only,
    tree_fingerprint,
    voc_pair,
    voc_xml,
    write_image,
)
from yolo_tl.cli import app

RUNNER = CliRunner()

# -- expected outcomes ------------------------------------------------------------------------


@dataclass
class Case:
    id: str
    build: Callable[[Path, Path], list[str]]  # (case dir, out dir) -> CLI args after "prepare"
    error: tuple[str, str] | None = None  # (text naming the file, regex of the problem)
    check: Callable[[dict, Path], None] | None = None  # success: (report, out dir)
    bomb: bool = False  # must also end with bounded memory


def err(where: str, problem: str) -> tuple[str, str]:
    return (where, problem)


class Hang(BaseException):
    """Raised by the alarm; a BaseException so that no `except Exception` can swallow it."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    def on_alarm(signum, frame):
        raise Hang(f"prepare still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def label_boxes(out: Path, split: str, stem: str) -> list[tuple[int, float, float, float, float]]:
    text = (out / "labels" / split / f"{stem}.txt").read_text(encoding="utf-8")
    return [(int(p[0]), *map(float, p[1:])) for p in (line.split() for line in text.splitlines())]


def assert_pixels(out: Path, stem: str, size: tuple[int, int], expected: Sequence[tuple[float, ...]],
                  split: str = "train") -> None:
    """Label boxes of ``stem``, back in pixels of an image of ``size``, match ``expected`` within 1 px.

    ``expected`` are 0-based (x1, y1, x2, y2) worked out by hand from what the builder wrote.
    """
    w, h = size
    got = sorted(((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h)
                 for _, cx, cy, bw, bh in label_boxes(out, split, stem))
    assert len(got) == len(expected), (got, expected)
    for g, e in zip(got, sorted(expected)):
        assert all(abs(a - b) <= 1.0 for a, b in zip(g, e)), (g, e)


def valid_dataset(out: Path) -> dict:
    """The output is a complete YOLO dataset: data.yaml, a label per image, values in [0, 1]."""
    data = yaml.safe_load((out / "data.yaml").read_text(encoding="utf-8"))
    assert Path(data["path"]) == out
    nc = len(data["names"])
    report = json.loads((out / "prepare_report.json").read_text(encoding="utf-8"))
    n_images = 0
    folders = []  # a source too small for a val split validates on the train folder
    for split in ("train", "val", "test"):
        if split in data and data[split] not in folders:
            folders.append(data[split])
    for folder in folders:
        images = sorted((out / folder).iterdir())
        labels = sorted((out / folder.replace("images/", "labels/", 1)).iterdir())
        assert [p.stem for p in images] == [p.stem for p in labels]
        n_images += len(images)
        for lab in labels:
            for line in lab.read_text(encoding="utf-8").splitlines():
                cls, *vals = line.split()
                assert 0 <= int(cls) < nc
                assert all(0.0 <= float(v) <= 1.0 for v in vals) and len(vals) == 4
                assert float(vals[2]) > 0 and float(vals[3]) > 0
    assert n_images == report["totals"]["images"]
    return report


# -- builders shared by several cases ------------------------------------------------------------


def voc_case(xml, *, image=True, size=(40, 30), suffix=".jpg", extra_args=()) -> Callable[[Path, Path], list[str]]:
    def build(case: Path, out: Path) -> list[str]:
        voc_pair(case / "ds", "a", xml=xml, image=image, size=size, suffix=suffix)
        return [str(case / "ds"), *extra_args]
    return build


def coco_case(doc, *, images=("a.jpg",), size=(40, 30), extra_args=()) -> Callable[[Path, Path], list[str]]:
    def build(case: Path, out: Path) -> list[str]:
        return [str(coco_dataset(case / "ds", doc, images=images, size=size)), *extra_args]
    return build


def coco_with_file(name: str, data: bytes, *, sized: bool = True) -> Callable[[Path, Path], list[str]]:
    """One COCO image whose file holds ``data`` (corrupt, empty, truncated...)."""
    def build(case: Path, out: Path) -> list[str]:
        doc = one_image(file_name=name) if sized else one_image(file_name=name, width=None, height=None)
        js = coco_dataset(case / "ds", doc, images=())
        (case / "ds" / name).write_bytes(data)
        return [str(js)]
    return build


def one_image(*anns, width=40, height=30, file_name="a.jpg", cats=None) -> dict:
    kw = {"categories": cats} if cats is not None else {}
    return coco_doc([coco_image(1, file_name, width, height)], list(anns) or [coco_ann()], **kw)


def _cut_before_scan() -> bytes:
    """A JPEG whose headers (with the frame size) are complete but which ends before the scan."""
    data = image_bytes(40, 30)
    return data[:data.index(b"\xff\xda")]


GOOD_XML = voc_xml("a.jpg")
LAUGHS = ('<?xml version="1.0"{enc}?>\n<!DOCTYPE annotation [<!ENTITY a0 "ha!ha!ha!ha!ha!">'
          + "".join(f'<!ENTITY a{i} "{("&a" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
          + ']>\n<annotation><filename>a.jpg</filename><object><name>&a9;</name><bndbox><xmin>1</xmin>'
            '<ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>')
XXE = ('<?xml version="1.0"{enc}?>\n<!DOCTYPE annotation [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
       + voc_xml("a.jpg", [("&x;", 1, 1, 9, 9)]))


def _symlink_escape_voc(case: Path, out: Path) -> list[str]:
    write_image(case / "outside" / "secret.jpg")
    voc_pair(case / "ds", "a", image=False)
    os.symlink(case / "outside" / "secret.jpg", case / "ds" / "a.jpg")
    return [str(case / "ds")]


def _symlink_dir_escape_coco(case: Path, out: Path) -> list[str]:
    write_image(case / "outside" / "secret.jpg")
    js = coco_dataset(case / "ds", one_image(file_name="sub/secret.jpg"), images=())
    os.symlink(case / "outside", case / "ds" / "sub", target_is_directory=True)
    return [str(js)]


def _outside_target(name: str, absolute: bool, voc: bool):
    def build(case: Path, out: Path) -> list[str]:
        secret = write_image(case / "outside" / "secret.jpg")
        fname = str(secret) if absolute else name
        if voc:
            voc_pair(case / "ds", "a", xml=voc_xml(fname), image=False)
            return [str(case / "ds")]
        return [str(coco_dataset(case / "ds", one_image(file_name=fname), images=()))]
    return build


def _dup_names_voc(case: Path, out: Path) -> list[str]:
    voc_pair(case / "ds" / "s1", "x", xml=voc_xml("x.jpg", [("cat", 1, 1, 11, 11)]))
    voc_pair(case / "ds" / "s2", "x", xml=voc_xml("x.jpg", [("cat", 21, 11, 41, 31)]))
    return [str(case / "ds"), "--split", "0.5,0.5"]


def _check_dup_names(rep: dict, out: Path) -> None:
    assert rep["totals"]["images"] == 2 and len(rep["renamed"]) == 1
    labels = {p.name: p.read_text() for p in (out / "labels").rglob("*.txt")}
    assert len(labels) == 2 and len(set(labels.values())) == 2  # both images, each with its own box
    boxes = sorted(tuple(round(float(v) * s) for v, s in zip(t.split()[1:3], (40, 30)))
                   for t in labels.values())
    assert boxes == [(5, 5), (30, 20)]  # centres of (0,0,10,10) and (20,10,40,30)


def _non_ascii_voc(case: Path, out: Path) -> list[str]:
    stem = "ñandú café 1"
    voc_pair(case / "dätä set", stem, xml=voc_xml(f"{stem}.jpg", [("gato negro", 1, 1, 20, 15)]))
    return [str(case / "dätä set")]


def _check_non_ascii(rep: dict, out: Path) -> None:
    assert rep["classes"] == ["gato negro"]
    names = yaml.safe_load((out / "data.yaml").read_text(encoding="utf-8"))["names"]
    assert names == {0: "gato negro"}
    assert (out / "images" / "train" / "ñandú café 1.jpg").is_file()
    assert_pixels(out, "ñandú café 1", (40, 30), [(0, 0, 19, 14)])


def _latin1_voc(case: Path, out: Path) -> list[str]:
    xml = voc_xml("a.jpg", [("café", 1, 1, 20, 15)], prolog='<?xml version="1.0" encoding="ISO-8859-1"?>')
    voc_pair(case / "ds", "a", xml=xml.encode("latin-1"))
    return [str(case / "ds")]


def _exif(voc: bool, annotated: tuple[int, int]):
    """A 40x30 JPEG stored with EXIF orientation 6: it is displayed (and trained on) as 30x40."""
    def build(case: Path, out: Path) -> list[str]:
        img = write_image(case / "ds" / "a.jpg", 40, 30, orientation=6)
        shown = ImageOps.exif_transpose(Image.open(img)).size  # independent: PIL applies the tag
        assert shown == (30, 40)
        if voc:
            (case / "ds" / "a.xml").write_text(voc_xml("a.jpg", [("cat", 1, 1, 16, 21)], size=annotated))
            return [str(case / "ds")]
        doc = one_image(coco_ann(bbox=[0, 0, 15, 20]), width=annotated[0], height=annotated[1])
        return [str(coco_dataset(case / "ds", doc, images=()))]
    return build


def _check_exif(stored_frame: bool):
    def check(rep: dict, out: Path) -> None:
        assert rep["size_mismatches"] == []
        if stored_frame:
            # drawn on the stored 40x30 pixels: turned 90 degrees clockwise with the image, the box
            # x 0-15, y 0-20 becomes x 30-20..30-0, y 0..15 (tests/dataset/test_exif.py checks every
            # orientation against the pixels Pillow turns)
            assert rep["exif"] == {"turned": 1}
            assert_pixels(out, "a", (30, 40), [(10, 0, 30, 15)])
        else:
            assert rep["exif"] == {"shown": 1}
            assert_pixels(out, "a", (30, 40), [(0, 0, 15, 20)])
    return check


def _voc_devkit_missing_image(case: Path, out: Path) -> list[str]:
    (case / "VOC" / "Annotations").mkdir(parents=True)
    (case / "VOC" / "JPEGImages").mkdir()
    (case / "VOC" / "Annotations" / "a.xml").write_text(voc_xml("a.jpg"))
    return [str(case / "VOC")]


def _fifo_image_voc(case: Path, out: Path) -> list[str]:
    voc_pair(case / "ds", "a", image=False)
    os.mkfifo(case / "ds" / "a.jpg")
    return [str(case / "ds")]


def _fifo_coco_instances(case: Path, out: Path) -> list[str]:
    (case / "ds" / "annotations").mkdir(parents=True)
    os.mkfifo(case / "ds" / "annotations" / "instances_train.json")
    return [str(case / "ds")]


def _fifo_imagesets(case: Path, out: Path) -> list[str]:
    root = case / "VOC"
    voc_pair(root / "Annotations", "a", image=False)
    write_image(root / "JPEGImages" / "a.jpg")
    (root / "ImageSets" / "Main").mkdir(parents=True)
    os.mkfifo(root / "ImageSets" / "Main" / "train.txt")
    return [str(root), "--split", "0.5,0.5"]


def _empty_dir(case: Path, out: Path) -> list[str]:
    (case / "ds").mkdir()
    return [str(case / "ds")]


def _no_annotations(case: Path, out: Path) -> list[str]:
    write_image(case / "ds" / "a.jpg")
    (case / "ds" / "README.txt").write_text("photos\n")
    return [str(case / "ds")]


def _out_exists(marker: bool, overwrite: bool):
    def build(case: Path, out: Path) -> list[str]:
        voc_pair(case / "ds", "a")
        out.mkdir()
        (out / "notes.txt").write_text("my own file\n")
        if marker:
            (out / "prepare_report.json").write_text("{}\n")
        return [str(case / "ds"), *(["--overwrite"] if overwrite else [])]
    return build


def _out_at(where: str):
    def build(case: Path, out: Path) -> list[str]:
        voc_pair(case / "ds", "a")
        target = {"inside": case / "ds" / "yolo", "same": case / "ds", "around": case,
                  "inside_images": case / "ds" / "pics" / "yolo"}[where]
        args = [str(case / "ds"), "--out", str(target)]
        if where == "inside_images":
            write_image(case / "ds" / "pics" / "a.jpg")
            args = [str(case / "ds"), "--images", str(case / "ds" / "pics"), "--out", str(target)]
        return args
    return build


def _out_under_file(case: Path, out: Path) -> list[str]:
    voc_pair(case / "ds", "a")
    (case / "afile").write_text("x")
    return [str(case / "ds"), "--out", str(case / "afile" / "yolo")]


def _voc_skip_mix(case: Path, out: Path) -> list[str]:
    ds = case / "ds"
    voc_pair(ds, "good1")
    voc_pair(ds, "good2", xml=voc_xml("good2.jpg", [("dog", 3, 3, 30, 25)]))
    voc_pair(ds, "broken", xml="<annotation><object>")
    voc_pair(ds, "noimage", xml=voc_xml("noimage.jpg"), image=False)
    voc_pair(ds, "xxe", xml=XXE.format(enc=""))
    voc_pair(ds, "nan", xml=voc_xml("nan.jpg", [("cat", "nan", 1, 5, 5)]))
    voc_pair(ds, "corrupt", image=b"\xff\xd8 this is not a jpeg")
    return [str(ds), "--on-error", "skip", "--split", "0.5,0.5"]


def _check_voc_skip(rep: dict, out: Path) -> None:
    assert rep["totals"]["images"] == 2 and rep["totals"]["boxes"] == 2
    skipped = sorted(Path(s["path"]).name for s in rep["skipped"])
    assert skipped == ["broken.xml", "corrupt.jpg", "nan.xml", "noimage.xml", "xxe.xml"]
    assert all(s["reason"] for s in rep["skipped"])


def _coco_skip_mix(case: Path, out: Path) -> list[str]:
    doc = coco_doc(
        [coco_image(1, "a.jpg"), coco_image(2, "missing.jpg"), coco_image(3, "corrupt.jpg"),
         coco_image(1, "dup-id.jpg")],
        [coco_ann(1, 1, 1), coco_ann(2, 99, 1), coco_ann(3, 1, 42), coco_ann(4, 1, 1, "abc"),
         coco_ann(5, 3, 1)],
    )
    js = coco_dataset(case / "ds", doc, images=("a.jpg", "dup-id.jpg"))
    (case / "ds" / "corrupt.jpg").write_bytes(b"")
    return [str(js), "--on-error", "skip"]


def _check_coco_skip(rep: dict, out: Path) -> None:
    assert rep["totals"]["images"] == 1 and rep["totals"]["boxes"] == 1
    skipped = sorted((Path(s["path"]).name, s["field"], s["reason"].split(" (")[0]) for s in rep["skipped"])
    assert [s[:2] for s in skipped] == [
        ("annotations.json", "annotations[1].image_id"), ("annotations.json", "annotations[2].category_id"),
        ("annotations.json", "annotations[3].bbox"), ("annotations.json", "images[3]"),
        ("annotations.json", "images[id=2].file_name"), ("corrupt.jpg", ""),
    ]
    reasons = " | ".join(s[2] for s in skipped)
    for word in ("unknown image_id 99", "unknown category_id 42", "duplicate image id 1",
                 "'missing.jpg' not found", "not a readable image", "bbox must be"):
        assert word in reasons, reasons


def _all_bad_skip(case: Path, out: Path) -> list[str]:
    voc_pair(case / "ds", "a", xml="<annotation>")
    voc_pair(case / "ds", "b", xml="")
    return [str(case / "ds"), "--on-error", "skip"]


def _roboflow_bad_split(case: Path, out: Path) -> list[str]:
    for split in ("train", "holiday"):
        coco_dataset(case / "ds" / split, images=("a.jpg",)).rename(
            case / "ds" / split / "_annotations.coco.json")
    return [str(case / "ds")]


def _check_boxes(expect_boxes: int, dropped: dict[str, int], clipped: int, pixels=None):
    def check(rep: dict, out: Path) -> None:
        assert rep["totals"]["boxes"] == expect_boxes
        assert rep["boxes_dropped"] == dropped
        assert rep["boxes_clipped"] == clipped
        if pixels is not None:
            assert_pixels(out, "a", (40, 30), pixels)
    return check


def _check_size(mismatches: int, size=(40, 30), pixels=((4, 4, 19, 14),)):
    def check(rep: dict, out: Path) -> None:
        assert len(rep["size_mismatches"]) == mismatches
        assert_pixels(out, "a", size, list(pixels))
    return check


# VOC boxes are written 1-based in the XML; expected pixels below are 0-based (subtract 1).
VOC_EDGE_BOXES = voc_xml("a.jpg", [
    ("cat", 20, 10, 5, 25),     # inverted (xmax < xmin)
    ("cat", -5, -5, 10, 10),    # negative: clipped to (0, 0, 9, 9)
    ("cat", 30, 20, 45, 35),    # past the right/bottom edge: clipped to (29, 19, 40, 30)
    ("cat", 2, 2, 41, 31),      # xmax = width + 1 (common): exactly the edge, not clipped
    ("cat", 7, 7, 7, 20),       # zero area
    ("cat", 100, 100, 120, 120),  # entirely outside the image
    ("cat", 5.5, 4.25, 20.75, 15),  # floats, inside
])
COCO_EDGE_BOXES = one_image(
    coco_ann(1, bbox=[10, 10, -5, 5]),    # inverted (negative width)
    coco_ann(2, bbox=[-5, -5, 15, 15]),   # negative: clipped to (0, 0, 10, 10)
    coco_ann(3, bbox=[30, 20, 20, 20]),   # past the edges: clipped to (30, 20, 40, 30)
    coco_ann(4, bbox=[5, 5, 0, 10]),      # zero width
    coco_ann(5, bbox=[100, 100, 5, 5]),   # outside
    coco_ann(6, bbox=[5, 5, 10, 10], iscrowd=1),  # crowd: skipped
    coco_ann(7, bbox=[2.5, 3.5, 10.25, 10], segmentation=[[0, 0, 1, 1, 2, 2]]),  # polygon ignored
)

CASES: list[Case] = [
    # ---- VOC: malformed, truncated, hostile XML ----
    Case("voc_malformed_xml", voc_case("<annotation><object><name>cat</object></annotation>"),
         err("a.xml", r"malformed XML")),
    Case("voc_truncated_xml", voc_case(GOOD_XML[: len(GOOD_XML) // 2]), err("a.xml", r"malformed XML")),
    Case("voc_zero_byte_xml", voc_case(""), err("a.xml", r"empty file")),
    Case("voc_binary_garbage_xml", voc_case(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe"), err("a.xml", r"malformed")),
    Case("voc_wrong_root", voc_case("<html><body/></html>"), err("a.xml", r"root element is <html>")),
    Case("voc_xxe_passwd", voc_case(XXE.format(enc="")), err("a.xml", r"DOCTYPE")),
    Case("voc_xxe_utf16", voc_case(XXE.format(enc=' encoding="UTF-16"').encode("utf-16")),
         err("a.xml", r"DOCTYPE")),
    Case("voc_external_dtd", voc_case('<!DOCTYPE annotation SYSTEM "file:///etc/passwd">\n' + GOOD_XML),
         err("a.xml", r"DOCTYPE")),
    Case("voc_doctype_after_long_comment",
         voc_case("<!--" + "x" * 8000 + '-->\n<!DOCTYPE annotation SYSTEM "file:///etc/passwd">' + GOOD_XML),
         err("a.xml", r"DOCTYPE")),
    Case("voc_billion_laughs", voc_case(LAUGHS.format(enc="")), err("a.xml", r"DOCTYPE"), bomb=True),
    Case("voc_billion_laughs_utf16", voc_case(LAUGHS.format(enc=' encoding="UTF-16"').encode("utf-16")),
         err("a.xml", r"DOCTYPE"), bomb=True),
    # ---- VOC: missing and non-numeric fields ----
    Case("voc_missing_xmax", voc_case(GOOD_XML.replace("<xmax>20</xmax>", "")),
         err("a.xml", r"object\[0\]/bndbox/xmax: missing value")),
    Case("voc_empty_ymin", voc_case(voc_xml("a.jpg", [("cat", 1, "", 5, 5)])),
         err("a.xml", r"object\[0\]/bndbox/ymin: missing value")),
    Case("voc_nan_coordinate", voc_case(voc_xml("a.jpg", [("cat", "NaN", 1, 5, 5)])),
         err("a.xml", r"bndbox/xmin: not a finite number")),
    Case("voc_inf_coordinate", voc_case(voc_xml("a.jpg", [("cat", 1, 1, "inf", 5)])),
         err("a.xml", r"bndbox/xmax: not a finite number")),
    Case("voc_abc_coordinate", voc_case(voc_xml("a.jpg", [("cat", 1, 1, 5, "abc")])),
         err("a.xml", r"bndbox/ymax: not a number: 'abc'")),
    Case("voc_object_without_name", voc_case(voc_xml("a.jpg", [("", 1, 1, 5, 5)])),
         err("a.xml", r"object\[0\]/name")),
    Case("voc_object_without_bndbox",
         voc_case(GOOD_XML.replace(GOOD_XML[GOOD_XML.index("<bndbox>"):GOOD_XML.index("</bndbox>") + 9], "")),
         err("a.xml", r"no <bndbox>")),
    Case("voc_size_abc", voc_case(voc_xml("a.jpg", size=("abc", 30))), err("a.xml", r"size/width: not a number")),
    Case("voc_size_negative", voc_case(voc_xml("a.jpg", size=(40, -30))),
         err("a.xml", r"size/height: invalid image size")),
    # ---- VOC: boxes and sizes, handled and counted ----
    Case("voc_boxes_inverted_negative_past_edges_zero_area_outside", voc_case(VOC_EDGE_BOXES),
         check=_check_boxes(4, {"inverted": 1, "outside_image": 1, "zero_area": 1}, 2,
                            [(0, 0, 9, 9), (29, 19, 40, 30), (1, 1, 40, 30), (4.5, 3.25, 19.75, 14)])),
    Case("voc_missing_size", voc_case(voc_xml("a.jpg", size=None)), check=_check_size(0)),
    Case("voc_zero_size", voc_case(voc_xml("a.jpg", size=(0, 0))), check=_check_size(0)),
    Case("voc_wrong_size", voc_case(voc_xml("a.jpg", size=(400, 300))), check=_check_size(1)),
    Case("voc_exif_rotated", _exif(True, (30, 40)), check=_check_exif(False)),
    Case("voc_exif_rotated_raw_size", _exif(True, (40, 30)), check=_check_exif(True)),
    Case("voc_latin1_encoding", _latin1_voc,
         check=lambda rep, out: rep["classes"] == ["café"] or pytest.fail(rep["classes"])),
    Case("voc_foreign_absolute_path_ignored",
         voc_case(voc_xml("a.jpg", extra="<path>C:\\Users\\bob\\a.jpg</path>")), check=_check_size(0)),
    # ---- VOC: images ----
    Case("voc_corrupt_image", voc_case(GOOD_XML, image=b"\xff\xd8\xff\xe0garbage" * 10),
         err("a.jpg", r"not a readable image|unreadable image|without image data")),
    Case("voc_jpeg_cut_before_the_scan", voc_case(GOOD_XML, image=_cut_before_scan()),
         err("a.jpg", r"JPEG without image data")),
    Case("voc_zero_byte_image", voc_case(GOOD_XML, image=b""), err("a.jpg", r"not a readable image")),
    Case("voc_missing_image", voc_case(GOOD_XML, image=False), err("a.xml", r"filename: image 'a.jpg' not found")),
    Case("voc_devkit_missing_image", _voc_devkit_missing_image, err("a.xml", r"not found")),
    Case("voc_fifo_as_image", _fifo_image_voc, err("a.xml", r"not found")),
    Case("voc_decompression_bomb_header",
         voc_case(voc_xml("a.png", size=None), image=png_header_only(40000, 40000), suffix=".png"),
         err("a.png", r"too large")),
    # ---- VOC: names that escape, symlinks, duplicates, non-ASCII ----
    Case("voc_filename_dotdot", _outside_target("../outside/secret.jpg", False, True),
         err("a.xml", r"filename: .*escapes the images folder")),
    Case("voc_filename_absolute", _outside_target("", True, True), err("a.xml", r"filename: .*absolute path")),
    Case("voc_filename_backslash_dotdot", _outside_target("..\\outside\\secret.jpg", False, True),
         err("a.xml", r"escapes the images folder")),
    Case("voc_symlink_escapes", _symlink_escape_voc, err("a.xml", r"resolves outside the images folder")),
    Case("voc_duplicate_names_in_two_folders", _dup_names_voc, check=_check_dup_names),
    Case("voc_non_ascii_and_spaces", _non_ascii_voc, check=_check_non_ascii),
    # ---- empty sources, FIFOs, devices ----
    Case("empty_source_folder", _empty_dir, err("ds", r"no VOC XML or COCO JSON found")),
    Case("source_without_annotations", _no_annotations, err("ds", r"no VOC XML or COCO JSON found")),
    Case("source_missing", lambda c, o: [str(c / "nope")], err("nope", r"source not found")),
    Case("source_is_a_device", lambda c, o: ["/dev/null"], err("/dev/null", r"not a regular file or folder")),
    Case("coco_instances_is_a_fifo", _fifo_coco_instances, err("ds", r"no VOC XML or COCO JSON found")),
    Case("voc_imagesets_is_a_fifo", _fifo_imagesets,
         check=lambda rep, out: rep["totals"]["images"] == 1 or pytest.fail(str(rep["totals"]))),
    # ---- output folder ----
    Case("out_exists_not_empty", _out_exists(False, False), err("out", r"exists and is not empty")),
    Case("out_exists_not_ours_overwrite", _out_exists(False, True), err("out", r"not made by yolo-tl")),
    Case("out_inside_source", _out_at("inside"), err("yolo", r"inside the source")),
    Case("out_is_source", _out_at("same"), err("ds", r"inside the source")),
    Case("out_contains_source", _out_at("around"), err("case", r"contains the source")),
    Case("out_inside_images_folder", _out_at("inside_images"), err("yolo", r"inside the source")),
    Case("out_under_a_file", _out_under_file, err("afile", r"file is in the way")),
    # ---- --on-error skip ----
    Case("voc_skip_mixed_bad_files", _voc_skip_mix, check=_check_voc_skip),
    Case("voc_skip_everything_bad", _all_bad_skip, err("ds", r"no usable images")),
    Case("voc_fail_is_default", lambda c, o: _voc_skip_mix(c, o)[:1],
         err("broken.xml", r"malformed XML")),
    # ---- COCO: malformed, truncated ----
    Case("coco_malformed_json", coco_case('{"images": [}'), err("annotations.json", r"malformed JSON")),
    Case("coco_truncated_json", coco_case(json.dumps(one_image())[:-20]),
         err("annotations.json", r"malformed JSON")),
    Case("coco_zero_byte_json", coco_case(""), err("annotations.json", r"malformed JSON")),
    Case("coco_invalid_utf8", coco_case(b'{"images": "\xff\xfe\xfa"}'), err("annotations.json", r"malformed JSON")),
    Case("coco_deeply_nested", coco_case("[" * 200000 + "]" * 200000),
         err("annotations.json", r"malformed JSON|top level")),
    Case("coco_top_level_list", coco_case("[]"), err("annotations.json", r"top level is not a JSON object")),
    Case("coco_missing_images_key", coco_case({"annotations": [], "categories": []}),
         err("annotations.json", r"images: missing or invalid 'images' list")),
    Case("coco_utf8_bom", coco_case(b"\xef\xbb\xbf" + json.dumps(one_image()).encode()),
         check=_check_size(0, pixels=[(5, 5, 20, 15)])),
    # ---- COCO: missing and non-numeric fields ----
    Case("coco_bbox_nan", coco_case('{"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [{"id": 1, '
                                    '"name": "cat"}], "annotations": [{"image_id": 1, "category_id": 1, '
                                    '"bbox": [NaN, 1, 5, 5]}]}'),
         err("annotations.json", r"annotations\[0\]\.bbox: not a finite number")),
    Case("coco_bbox_inf", coco_case('{"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [{"id": 1, '
                                    '"name": "cat"}], "annotations": [{"image_id": 1, "category_id": 1, '
                                    '"bbox": [1, 1e999, 5, 5]}]}'),
         err("annotations.json", r"annotations\[0\]\.bbox: not a finite number")),
    Case("coco_bbox_string", coco_case(one_image(coco_ann(bbox=[1, "abc", 5, 5]))),
         err("annotations.json", r"annotations\[0\]\.bbox: not a number: 'abc'")),
    Case("coco_bbox_null", coco_case(one_image(coco_ann(bbox=[1, None, 5, 5]))),
         err("annotations.json", r"annotations\[0\]\.bbox: not a number")),
    Case("coco_bbox_three_values", coco_case(one_image(coco_ann(bbox=[1, 2, 3]))),
         err("annotations.json", r"bbox must be \[x, y, w, h\]")),
    Case("coco_bbox_missing", coco_case(one_image({"id": 1, "image_id": 1, "category_id": 1})),
         err("annotations.json", r"annotations\[0\]\.bbox: missing 'bbox'")),
    Case("coco_huge_integer", coco_case(json.dumps(one_image()).replace('"width": 40', '"width": ' + "9" * 400)),
         err("annotations.json", r"images\[0\]\.width: not a finite number")),
    Case("coco_integer_over_4300_digits",
         coco_case(json.dumps(one_image()).replace('"width": 40', '"width": ' + "9" * 5000)),
         err("annotations.json", r"malformed JSON")),
    Case("coco_width_as_string", coco_case(one_image(width="640")),
         err("annotations.json", r"images\[0\]\.width: not a number")),
    Case("coco_image_without_file_name", coco_case(coco_doc([{"id": 1, "width": 40}], [])),
         err("annotations.json", r"file_name")),
    Case("coco_category_name_not_string", coco_case(one_image(cats=[{"id": 1, "name": 7}])),
         err("annotations.json", r"categories\[0\]: category needs")),
    # ---- COCO: unknown ids, duplicates ----
    Case("coco_unknown_image_id", coco_case(one_image(coco_ann(image_id=7))),
         err("annotations.json", r"annotations\[0\]\.image_id: unknown image_id 7")),
    Case("coco_unknown_category_id", coco_case(one_image(coco_ann(category_id=3))),
         err("annotations.json", r"annotations\[0\]\.category_id: unknown category_id 3")),
    Case("coco_duplicate_image_id", coco_case(coco_doc([coco_image(1, "a.jpg"), coco_image(1, "b.jpg")], []),
                                              images=("a.jpg", "b.jpg")),
         err("annotations.json", r"images\[1\]: duplicate image id 1")),
    Case("coco_duplicate_file_name", coco_case(coco_doc([coco_image(1, "a.jpg"), coco_image(2, "a.jpg")], [])),
         err("annotations.json", r"listed twice")),
    # ---- COCO: boxes and sizes, handled and counted ----
    Case("coco_boxes_inverted_negative_past_edges_zero_area_outside_crowd", coco_case(COCO_EDGE_BOXES),
         check=_check_boxes(3, {"crowd": 1, "inverted": 1, "outside_image": 1, "zero_area": 1}, 2,
                            [(0, 0, 10, 10), (30, 20, 40, 30), (2.5, 3.5, 12.75, 13.5)])),
    Case("coco_missing_size", coco_case(one_image(width=None, height=None)),
         check=_check_size(0, pixels=[(5, 5, 20, 15)])),
    Case("coco_wrong_size", coco_case(one_image(width=80, height=60)), check=_check_size(1, pixels=[(5, 5, 20, 15)])),
    Case("coco_exif_rotated", _exif(False, (30, 40)), check=_check_exif(False)),
    Case("coco_exif_rotated_raw_size", _exif(False, (40, 30)), check=_check_exif(True)),
    Case("coco_no_annotations", coco_case(coco_doc([coco_image()], [])),
         check=lambda rep, out: (rep["totals"]["boxes"] == 0 and label_boxes(out, "train", "a") == [])
         or pytest.fail(str(rep["totals"]))),
    Case("coco_no_images", coco_case(coco_doc([], [])), err("annotations.json", r"no usable images")),
    # ---- COCO: images ----
    Case("coco_corrupt_image", coco_with_file("a.jpg", b"\xff\xd8\xff\xe0" + b"garbage" * 20),
         err("a.jpg", r"not a readable image|unreadable image|without image data")),
    Case("coco_jpeg_cut_before_the_scan", coco_with_file("a.jpg", _cut_before_scan()),
         err("a.jpg", r"JPEG without image data")),
    Case("coco_zero_byte_image", coco_with_file("a.jpg", b""), err("a.jpg", r"not a readable image")),
    Case("coco_truncated_png", coco_with_file("a.png", png_header_only(40, 30)[:20]),
         err("a.png", r"not a readable image|unreadable image|without image data")),
    Case("coco_missing_image", coco_case(one_image(), images=()),
         err("annotations.json", r"images\[id=1\]\.file_name: image 'a.jpg' not found")),
    Case("coco_decompression_bomb_header", coco_with_file("a.png", png_header_only(30000, 30000), sized=False),
         err("a.png", r"too large")),
    Case("coco_file_name_with_nul", coco_case(one_image(file_name="a\x00.jpg")), err("annotations.json", r"NUL byte")),
    # ---- COCO: names that escape, symlinks, non-ASCII ----
    Case("coco_file_name_dotdot", _outside_target("../outside/secret.jpg", False, False),
         err("annotations.json", r"images\[id=1\]\.file_name: .*escapes the images folder")),
    Case("coco_file_name_absolute", _outside_target("", True, False),
         err("annotations.json", r"file_name: .*absolute path")),
    Case("coco_file_name_windows_drive", _outside_target("C:\\Windows\\secret.jpg", False, False),
         err("annotations.json", r"absolute path")),
    Case("coco_symlinked_folder_escapes", _symlink_dir_escape_coco,
         err("annotations.json", r"resolves outside the images folder")),
    Case("coco_non_ascii_and_spaces",
         coco_case(one_image(file_name="sub dir/ñandú 2.jpg", cats=[{"id": 5, "name": "gato negro"}],
                             ) | {"annotations": [coco_ann(category_id=5)]}, images=("sub dir/ñandú 2.jpg",)),
         check=lambda rep, out: (rep["classes"] == ["gato negro"]
                                 and (out / "images" / "train" / "ñandú 2.jpg").is_file()) or pytest.fail(str(rep))),
    Case("coco_roboflow_bad_split_folder", _roboflow_bad_split, err("holiday", r"not a split name")),
    # ---- COCO: --on-error skip ----
    Case("coco_skip_mixed_bad_items", _coco_skip_mix, check=_check_coco_skip),
]


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    return lines[0]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    root = tmp_path / "case"
    root.mkdir()
    out = tmp_path / "out"
    args = case.build(root, out)
    if "--out" not in args:
        args = [*args, "--out", str(out)]
    out_arg = Path(args[args.index("--out") + 1])
    out_before = tree_fingerprint(out_arg) if out_arg.exists() else None
    before = tree_fingerprint(root)

    if case.bomb:
        tracemalloc.start()
    with deadline(20):  # a guard against hangs (an entity bomb would expand for minutes), not a timing
        result = RUNNER.invoke(app, ["prepare", *args])
    if case.bomb:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 32 * 2**20, f"entity bomb used {peak / 2**20:.0f} MiB"

    # never a traceback, whatever the outcome
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"uncaught {type(result.exception).__name__}: {result.exception}")
    assert "Traceback" not in result.stdout + result.stderr
    # never a changed byte in the source tree; no leftovers of the partial output
    assert tree_fingerprint(root) == before, "prepare changed the source tree"
    assert not list(out_arg.parent.glob(f".{out_arg.name}.yolo-tl-*"))

    if case.error is not None:
        where, problem = case.error
        assert result.exit_code == 1, f"expected exit 1, got {result.exit_code}: {result.stdout}"
        line = _one_error_line(result.stderr)
        assert line.startswith("error: ")
        assert where in line, f"{where!r} not named in: {line}"
        assert re.search(problem, line), f"{problem!r} not in: {line}"
        if out_before is None:
            assert not out_arg.exists(), "a failed run left an output folder"
        else:
            assert tree_fingerprint(out_arg) == out_before, "a failed run changed the existing output"
    else:
        assert result.exit_code == 0, f"expected success, got {result.exit_code}: {result.stderr}"
        report = valid_dataset(out_arg)
        assert case.check is not None
        case.check(report, out_arg)


def test_corpus_covers_every_category_of_bad_input() -> None:
    """The corpus is big enough and spans both formats, errors and handled successes."""
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)
    ids = " ".join(c.id for c in CASES)
    for word in ("malformed", "truncated", "xxe", "laughs", "nan", "inf", "abc", "inverted", "negative",
                 "edge", "zero", "missing_size", "wrong_size", "exif", "corrupt", "zero_byte_image",
                 "missing_image", "unknown_image_id", "unknown_category_id", "dotdot", "absolute",
                 "symlink", "duplicate_image_id", "duplicate_names", "non_ascii", "empty_source",
                 "out_exists", "out_inside_source", "skip"):
        assert word in ids, word
    assert sum(c.error is None for c in CASES) >= 10 and sum(c.error is not None for c in CASES) >= 30


# -- the same, through a real process: stderr carries no traceback ---------------------------------

SUBPROCESS_CASES = ["voc_malformed_xml", "voc_billion_laughs", "coco_unknown_image_id",
                    "coco_decompression_bomb_header", "out_under_a_file"]


@pytest.mark.slow
@pytest.mark.parametrize("case_id", SUBPROCESS_CASES)
def test_bad_input_in_a_real_process(case_id: str, tmp_path: Path) -> None:
    case = next(c for c in CASES if c.id == case_id)
    root = tmp_path / "case"
    root.mkdir()
    args = case.build(root, tmp_path / "out")
    if "--out" not in args:
        args = [*args, "--out", str(tmp_path / "out")]
    env = {**os.environ, "COLUMNS": "60", "YOLO_TL_DEBUG": ""}
    env.pop("YOLO_TL_DEBUG")
    proc = subprocess.run([sys.executable, "-m", "yolo_tl", "prepare", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    line = _one_error_line(proc.stderr)  # one line even in a narrow terminal
    assert case.error[0] in line and re.search(case.error[1], line), line
