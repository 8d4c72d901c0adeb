"""Are we offline? One answer for all of yolo-tl, by the same rule as Ultralytics.

- ``offline_requested()``: ``YOLO_OFFLINE`` is set to a truthy value, read exactly as Ultralytics
  8.4 reads it (``ultralytics.utils.env_bool``: ``1``, ``true``, ``yes``, ``on``, ``y``, ``t``, any
  case, spaces trimmed). Anything else (``0``, ``false``, empty) means "not requested".
- ``download_host_reachable(timeout)``: a TCP connect to GitHub, where Ultralytics downloads its
  release assets (weights, fonts). The probe runs in a daemon thread joined with a timeout, so a
  black-holed DNS cannot hang us; its answer is cached for a minute.
- ``offline(timeout)``: requested, or the download host is unreachable.

Used by weights resolution, the offline guards around Ultralytics and ``yolo-tl doctor``.
"""

from __future__ import annotations

import os
import socket
import threading
import time

from yolo_tl.errors import first_line

DOWNLOAD_HOST = ("github.com", 443)
TRUTHY = frozenset({"1", "true", "yes", "on", "y", "t"})  # ultralytics.utils.env_bool
_CACHE_S = 60.0
_probe_cache: dict[str, tuple[bool, str, float]] = {}


def offline_requested() -> bool:
    """True when ``YOLO_OFFLINE`` asks for no network, read as Ultralytics reads it."""
    return os.environ.get("YOLO_OFFLINE", "").strip().lower() in TRUTHY


def download_host_reachable(timeout: float = 3.0) -> tuple[bool, str]:
    """(reachable, one-line reason) for Ultralytics' download host; never blocks past ``timeout``."""
    cached = _probe_cache.get("probe")
    if cached is not None and time.monotonic() - cached[2] < _CACHE_S:
        return cached[0], cached[1]
    result = {"ok": False, "why": f"no answer within {timeout:g} s"}

    def probe() -> None:
        try:
            with socket.create_connection(DOWNLOAD_HOST, timeout=timeout):
                result.update(ok=True, why="reachable")
        except OSError as err:
            result["why"] = first_line(err)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    _probe_cache["probe"] = (bool(result["ok"]), f"{DOWNLOAD_HOST[0]} {result['why']}", time.monotonic())
    return bool(result["ok"]), f"{DOWNLOAD_HOST[0]} {result['why']}"


def offline(timeout: float = 3.0) -> bool:
    """True when downloads must not be tried: ``YOLO_OFFLINE`` requested, or no network."""
    return offline_requested() or not download_host_reachable(timeout)[0]
