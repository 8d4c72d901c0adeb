"""``prepare --verify-images``: decode every image's pixels, as Ultralytics will, in worker processes.

prepare reads image headers only (fast), so a file whose header reads but whose pixel data does not
decode (a PNG with a broken IDAT chunk, a JPEG cut inside its scan) passes. Ultralytics' loaders
decode with cv2 and skip, or fail on, such a file at training or inference time. Decoding with the
same call here (``cv2.imdecode`` on the file's bytes, what ``ultralytics.utils.patches.imread``
does) finds them before training does.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None] | None


def decode_problem(path: str) -> str | None:
    """Why the image's pixels do not decode with cv2 (the way Ultralytics reads them), or None."""
    import cv2
    import numpy as np

    try:
        data = np.fromfile(path, np.uint8)
    except OSError as err:
        return f"cannot read the file ({err.strerror or err})"
    if not data.size:
        return "empty file"
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error as err:
        return f"pixel data does not decode ({str(err).strip().splitlines()[-1]})"
    if image is None or not image.size:
        return "pixel data does not decode (corrupt or cut short; cv2, so Ultralytics, cannot read it)"
    return None


def decoder_warnings(data: bytes) -> tuple[bool, str]:
    """(whether cv2 decodes these JPEG bytes, what libjpeg said while decoding them).

    libjpeg reports a scan that ends before its last block ("premature end of data segment") only as a
    warning on fd 2, and fills the missing blocks in; that warning is the one sign that pixels are
    missing. Fd 2 is pointed at a temporary file for the call (rare: one call per truncated JPEG).
    """
    import cv2
    import numpy as np

    with tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        except cv2.error:
            image = None
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        said = captured.read().decode("utf-8", "replace").strip()
    return image is not None and image.size > 0, said


def _quiet_worker() -> None:
    """libpng / libjpeg print their complaints to fd 2 themselves; the worker's go nowhere
    (each problem is reported once, in the prepare report)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def _decode_chunk(paths: Sequence[str]) -> list[str | None]:
    return [decode_problem(p) for p in paths]


def find_undecodable(paths: Sequence[Path], *, workers: int | None = None,
                     progress: Progress = None) -> list[tuple[Path, str]]:
    """(path, problem) for every image whose pixels do not decode, in the order of ``paths``.

    Decoding is CPU-bound, so it runs in ``workers`` processes (default: one per CPU, at most 8),
    in chunks, so the per-task overhead stays small next to the decoding. Workers are processes
    even for one chunk: the decoders' own messages on stderr stay out of the user's terminal.
    """
    names = [str(p) for p in paths]
    n = len(names)
    if not n:
        return []
    workers = workers or min(os.cpu_count() or 1, 8)
    size = max(8, min(256, n // (workers * 4) or 1))
    chunks = [names[i:i + size] for i in range(0, n, size)]
    problems: list[str | None] = []
    with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), initializer=_quiet_worker) as pool:
        for result in pool.map(_decode_chunk, chunks):
            problems += result
            if progress:
                progress("decoding", len(problems), n)
    bad = [(Path(p), why) for p, why in zip(names, problems) if why is not None]
    log.info("decoded %d images: %d do not decode", n, len(bad))
    return bad
