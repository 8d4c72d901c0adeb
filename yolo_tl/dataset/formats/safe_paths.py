"""Resolve a file name written in an annotation inside an images root, never outside it."""

from __future__ import annotations

import functools
import os
import re
import stat
from pathlib import Path

from yolo_tl.errors import ImageError

_DRIVE = re.compile(r"^[A-Za-z]:")
_SEPARATORS = re.compile(r"[\\/]")
# Ultralytics' IMG_FORMATS: the only suffixes it trains on
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".dng", ".mpo", ".pfm", ".heic")


def check_relative_name(name: str, *, source: Path, field: str) -> str:
    """Refuse names that try to leave the images root (absolute paths, ``..``, drive letters)."""
    if not name or not name.strip():
        raise ImageError("empty file name", path=source, field=field)
    name = name.strip()
    if "\x00" in name:
        raise ImageError(f"file name {name!r} contains a NUL byte", path=source, field=field)
    # plain string checks (pathlib is slow at 50k names): POSIX and Windows absolute forms, drives
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise ImageError(f"file name {name!r} is an absolute path; it must be relative to the images "
                         "folder", path=source, field=field)
    if ".." in _SEPARATORS.split(name):
        raise ImageError(f"file name {name!r} escapes the images folder", path=source, field=field)
    return name


@functools.lru_cache(maxsize=256)
def real_dir(folder: str) -> str:
    """realpath of a folder, cached: thousands of images share a handful of folders.

    prepare() clears the cache at its start, so a long-lived process sees changed symlinks.
    """
    return os.path.realpath(folder)


def resolve_inside(root: Path, name: str, *, source: Path, field: str) -> Path | None:
    """``root/name`` if it exists and really lies inside ``root`` (symlinks followed), else None.

    Raises ImageError when the name or a symlink on its way leads outside the root.
    """
    name = check_relative_name(name, source=source, field=field)
    candidate = os.path.join(root, name)
    try:
        st = os.lstat(candidate)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode):
        real = os.path.realpath(candidate)
    else:  # only the folders on the way can be links: resolve the (cached) parent folder
        real = os.path.join(real_dir(os.path.dirname(candidate)), os.path.basename(candidate))
    real_root = real_dir(str(root))
    if not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise ImageError(f"file name {name!r} resolves outside the images folder (symlink to {real})",
                         path=source, field=field)
    if stat.S_ISLNK(st.st_mode):
        if not os.path.isfile(real):
            return None
    elif not stat.S_ISREG(st.st_mode):
        return None
    return Path(candidate)


@functools.lru_cache(maxsize=256)
def _relative_dir(root: str, bound: str) -> str:
    return os.path.relpath(root, bound)


def clear_path_caches() -> None:
    """Forget cached realpaths and relative folders: prepare() starts with this, so a long-lived
    process sees changed symlinks (and a changed working directory)."""
    real_dir.cache_clear()
    _relative_dir.cache_clear()


def _relative_to(bound: Path, root: Path, name: str) -> str:
    """``os.path.relpath(root / name, bound)`` for a checked name (no '..', not absolute), with the
    folder's part computed once per folder: relpath costs ~10 µs, as much as the XML parse."""
    return os.path.normpath(os.path.join(_relative_dir(str(root), str(bound)), name))


def find_image(root: Path, name: str | None, stem: str, *, source: Path, field: str,
               boundary: Path | None = None) -> Path | None:
    """Find an annotation's image: the name as written, else the annotation's stem with an image suffix.

    ``boundary`` is the folder nothing may escape (defaults to ``root``).
    """
    bound = boundary or root
    if name:
        checked = check_relative_name(name, source=source, field=field)
        rel = checked if root == bound else _relative_to(bound, root, checked)
        hit = resolve_inside(bound, rel, source=source, field=field)
        if hit is not None:
            return hit
    for suffix in IMAGE_SUFFIXES + tuple(s.upper() for s in IMAGE_SUFFIXES):
        rel = _relative_to(bound, root, stem + suffix)
        hit = resolve_inside(bound, rel, source=source, field=field)
        if hit is not None:
            return hit
    return None
