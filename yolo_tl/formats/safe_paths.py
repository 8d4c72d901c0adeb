"""Resolve a file name written in an annotation inside an images root, never outside it."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Optional

from yolo_tl.errors import ImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".dng", ".mpo")


def check_relative_name(name: str, *, source: Path, field: str) -> str:
    """Refuse names that try to leave the images root (absolute paths, ``..``, drive letters)."""
    if not name or not name.strip():
        raise ImageError("empty file name", path=source, field=field)
    name = name.strip()
    posix, win = PurePosixPath(name), PureWindowsPath(name)
    if posix.is_absolute() or win.is_absolute() or win.drive or name.startswith(("/", "\\")):
        raise ImageError(f"file name {name!r} is an absolute path; it must be relative to the images "
                         "folder", path=source, field=field)
    if ".." in posix.parts or ".." in win.parts:
        raise ImageError(f"file name {name!r} escapes the images folder", path=source, field=field)
    return name


def resolve_inside(root: Path, name: str, *, source: Path, field: str) -> Optional[Path]:
    """``root/name`` if it exists and really lies inside ``root`` (symlinks followed), else None.

    Raises ImageError when the name or a symlink on its way leads outside the root.
    """
    name = check_relative_name(name, source=source, field=field)
    candidate = root / name
    if not os.path.lexists(candidate):
        return None
    real = Path(os.path.realpath(candidate))
    real_root = Path(os.path.realpath(root))
    if real != real_root and real_root not in real.parents:
        raise ImageError(f"file name {name!r} resolves outside the images folder (symlink to {real})",
                         path=source, field=field)
    if not real.is_file():
        return None
    return candidate


def find_image(root: Path, name: Optional[str], stem: str, *, source: Path, field: str,
               boundary: Optional[Path] = None) -> Optional[Path]:
    """Find an annotation's image: the name as written, else the annotation's stem with an image suffix.

    ``boundary`` is the folder nothing may escape (defaults to ``root``).
    """
    bound = boundary or root
    if name:
        checked = check_relative_name(name, source=source, field=field)
        rel = os.path.relpath(root / checked, bound)
        hit = resolve_inside(bound, rel, source=source, field=field)
        if hit is not None:
            return hit
    for suffix in IMAGE_SUFFIXES + tuple(s.upper() for s in IMAGE_SUFFIXES):
        rel = os.path.relpath(root / (stem + suffix), bound)
        hit = resolve_inside(bound, rel, source=source, field=field)
        if hit is not None:
            return hit
    return None
