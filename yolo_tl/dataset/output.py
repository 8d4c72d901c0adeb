"""The output folder: built beside its final place, renamed into place at the end.

An error or a kill leaves either no output folder or the previous complete one, never a
half-written one. Leftovers of killed runs (``.NAME.yolo-tl-partial-PID``) are removed next time.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from yolo_tl.dataset.formats.yolo import PREPARE_MARKER
from yolo_tl.dataset.images import JPEG_END
from yolo_tl.errors import OutputError
from yolo_tl.files import pid_alive

MARKER = PREPARE_MARKER
LINK_MODES = ("hardlink", "copy", "symlink")


def clean_leftovers(out: Path) -> None:
    """Remove partial/old folders of earlier runs that were killed (their process is gone)."""
    if not out.parent.is_dir():
        return
    for kind in ("partial", "old"):
        for leftover in out.parent.glob(f".{out.name}.yolo-tl-{kind}-*"):
            try:
                pid = int(leftover.name.rsplit("-", 1)[1])
            except ValueError:
                continue
            if pid != os.getpid() and not pid_alive(pid):
                shutil.rmtree(leftover, ignore_errors=True)


def check_output(out: Path, sources: Iterable[Path], *, overwrite: bool) -> None:
    """Refuse an output inside the source (or around it), and a non-empty one without overwrite."""
    real_out = Path(os.path.realpath(out))
    for src in sources:
        real_src = Path(os.path.realpath(src))
        if real_out == real_src or real_src in real_out.parents:
            raise OutputError(f"output folder lies inside the source {src}; choose a folder outside it",
                              path=out)
        if real_out in real_src.parents:
            raise OutputError(f"output folder contains the source {src}; choose another folder",
                              path=out)
    if out.exists() and not out.is_dir():
        raise OutputError("output exists and is not a folder", path=out)
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise OutputError("output folder exists and is not empty (pass --overwrite to replace it)",
                              path=out)
        if not (out / MARKER).is_file():
            raise OutputError(f"output folder has no {MARKER}, so it was not made by yolo-tl prepare; "
                              "refusing to replace it", path=out)


def partial_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.yolo-tl-partial-{os.getpid()}"


def commit_output(tmp: Path, out: Path) -> None:
    """Move the finished folder into place, replacing an old output (already vetted) if any."""
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    if out.exists():
        old = out.parent / f".{out.name}.yolo-tl-old-{os.getpid()}"
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def place_image(src: Path, dst: str | Path, mode: str, *, truncated_jpeg: bool) -> str:
    """Hardlink (copy across filesystems), copy, or symlink one image file; returns what was done.

    A truncated JPEG (``truncated_jpeg``, read with the image size; checked beforehand by
    ``images.restored_jpeg``) is written as a copy with its end marker put back: the dataset then
    holds a complete JPEG that finetune, evaluate and analyze accept, Ultralytics has nothing to
    rewrite, and the source file is never touched.
    """
    if truncated_jpeg:
        with open(src, "rb") as fh:
            data = fh.read()
        write_bytes(dst, data + JPEG_END)
        return "copy (truncated JPEG, end marker restored)"
    if mode == "symlink":
        os.symlink(os.path.realpath(src), dst)
        return "symlink"
    if mode == "hardlink":
        try:
            os.link(src, dst)  # follows a symlinked source (linkat with AT_SYMLINK_FOLLOW)
            return "hardlink"
        except OSError as err:
            if err.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
                raise
    shutil.copyfile(src, dst)
    return "copy"


def write_bytes(path: str | Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
