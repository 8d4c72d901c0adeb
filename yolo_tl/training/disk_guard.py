"""A full disk while training becomes one line, and a run folder this call created is removed."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from yolo_tl.errors import OutputError, is_disk_full


@contextlib.contextmanager
def disk_full_guard(run_dir: Path, *, fresh: bool) -> Iterator[None]:
    """A full disk during training becomes one OutputError line; a run folder this call created is
    removed (its last.pt may be cut short), a resumed run's folder is kept as it was."""
    try:
        yield
    except (OSError, RuntimeError) as err:
        if not is_disk_full(err):
            raise
        if fresh:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise OutputError(f"no space left on the device while writing the run ({err.__class__.__name__})",
                          path=run_dir, hint="free some space or pass --project on another disk"
                          + ("; the partial run folder was removed" if fresh else "")) from None
