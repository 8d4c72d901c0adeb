"""Small builders for the bad-input corpus and the crash test: images, VOC XML, COCO JSON, and a
fingerprint of a whole folder tree (to prove that prepare never changes a byte of its source).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from tests.helpers.builders import voc_xml  # noqa: F401  (one VOC builder for all tests)

ORIENTATION = 0x0112


def image_bytes(width: int = 40, height: int = 30, fmt: str = "JPEG",
                orientation: int | None = None) -> bytes:
    """A real, tiny image; ``orientation`` writes an EXIF orientation tag (6 = rotate 90 CW)."""
    kwargs = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[ORIENTATION] = orientation
        kwargs["exif"] = exif.tobytes()
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (90, 140, 200)).save(buf, fmt, **kwargs)
    return buf.getvalue()


def write_image(path: Path, width: int = 40, height: int = 30, *, orientation: int | None = None,
                data: bytes | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "PNG" if path.suffix.lower() == ".png" else "JPEG"
    path.write_bytes(data if data is not None else image_bytes(width, height, fmt, orientation))
    return path


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels (a decompression-bomb shape)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def voc_pair(folder: Path, stem: str = "a", *, xml: str | bytes | None = None,
             image: bool | bytes = True, size: tuple[int, int] = (40, 30),
             suffix: str = ".jpg") -> Path:
    """``folder/stem.xml`` beside ``folder/stem.jpg`` (the 'XML beside images' layout)."""
    folder.mkdir(parents=True, exist_ok=True)
    if xml is None:
        xml = voc_xml(stem + suffix, size=size)
    (folder / f"{stem}.xml").write_bytes(xml.encode("utf-8") if isinstance(xml, str) else xml)
    if image is True:
        write_image(folder / f"{stem}{suffix}", *size)
    elif isinstance(image, bytes):
        (folder / f"{stem}{suffix}").write_bytes(image)
    return folder


def coco_doc(images: Sequence[dict], annotations: Sequence[dict],
             categories: Sequence[dict] = ({"id": 1, "name": "cat"},)) -> dict:
    return {"images": list(images), "annotations": list(annotations), "categories": list(categories)}


def coco_image(id: Any = 1, file_name: Any = "a.jpg", width: Any = 40, height: Any = 30) -> dict:
    img = {"id": id, "file_name": file_name}
    if width is not None:
        img["width"] = width
    if height is not None:
        img["height"] = height
    return img


def coco_ann(id: int = 1, image_id: Any = 1, category_id: Any = 1, bbox: Any = (5, 5, 15, 10),
             **extra: Any) -> dict:
    return {"id": id, "image_id": image_id, "category_id": category_id,
            "bbox": list(bbox) if isinstance(bbox, tuple) else bbox, "area": 1, "iscrowd": 0, **extra}


def coco_dataset(folder: Path, doc: dict | str | bytes | None = None, *,
                 images: Sequence[str] = ("a.jpg",), size: tuple[int, int] = (40, 30)) -> Path:
    """``folder/annotations.json`` with its images beside it; returns the JSON path."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in images:
        write_image(folder / name, *size)
    if doc is None:
        doc = coco_doc([coco_image()], [coco_ann()])
    path = folder / "annotations.json"
    if isinstance(doc, dict):
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    elif isinstance(doc, str):
        path.write_text(doc, encoding="utf-8")
    else:
        path.write_bytes(doc)
    return path


def tree_fingerprint(root: Path) -> str:
    """Hash of every name, type, size, mtime and byte under ``root`` (symlinks not followed)."""
    h = hashlib.sha256()
    root = Path(root)
    entries = [root] if root.is_file() else sorted(root.rglob("*"))
    for path in entries:
        st = os.lstat(path)
        rel = path.relative_to(root.parent if root.is_file() else root).as_posix()
        h.update(f"{rel}\0{st.st_mode:o}\0{st.st_size}\0{st.st_mtime_ns}\0".encode("utf-8", "surrogateescape"))
        if os.path.islink(path):
            h.update(os.readlink(path).encode("utf-8", "surrogateescape"))
        elif path.is_file():
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()
