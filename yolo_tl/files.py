"""Small file and process helpers shared by every layer: atomic writes, whether a process still runs."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

from yolo_tl.errors import OutputError


def write_atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` for a temporary file beside ``path``, then rename it into place.

    A reader never sees a cut-short file: on any error (a full disk, Ctrl-C) the temporary file is
    removed and ``path`` is left as it was. The temporary name is unique per call, so two processes
    writing the same ``path`` do not trip over each other; the later rename wins.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError) and err.filename is None:
            err.filename = str(path)
        raise
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; an OSError becomes one OutputError line."""
    try:
        return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    except OSError as err:
        raise OutputError(f"cannot write ({err.strerror or err.__class__.__name__})", path=path) from None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
