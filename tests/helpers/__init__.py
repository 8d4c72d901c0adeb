"""Helpers shared by the tests (not test modules): paths, a free port, dataset and checkpoint builders."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"


def free_port() -> int:
    """A loopback TCP port that nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_env(uri: str, **extra: str) -> dict[str, str]:
    """This process's environment for a child ``yolo-tl`` that uses the FiftyOne database at ``uri``
    (this session's private database port dropped) and imports this checkout's yolo_tl."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "FIFTYONE_PRIVATE_DATABASE_PORT"}
    env.update(FIFTYONE_DATABASE_URI=uri, PYTHONPATH=str(REPO), COLUMNS="200", **extra)
    return env


def run_yolo_tl(args: list[str], env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m yolo_tl ARGS`` in its own process, from the repository root, output captured."""
    return subprocess.run([sys.executable, "-m", "yolo_tl", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)
