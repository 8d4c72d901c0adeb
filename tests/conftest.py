"""Test-wide setup: offline Ultralytics, private settings and FiftyOne database per session.

Environment variables are set at import time, before any test imports ultralytics or fiftyone.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="yolo-tl-tests-"))
os.environ["YOLO_OFFLINE"] = "true"  # exactly "true": Ultralytics never tries the network
os.environ["FIFTYONE_DO_NOT_TRACK"] = "true"
os.environ.setdefault("YOLO_CONFIG_DIR", str(_SESSION_DIR / "ultralytics"))
os.environ.setdefault("FIFTYONE_DATABASE_DIR", str(_SESSION_DIR / "fiftyone-db"))
os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """../shared/datasets (read in place, never copied); skip when absent."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATASETS} (../shared beside the repo)")
    return SHARED_DATASETS


@pytest.fixture(scope="session")
def bccd_root(shared_datasets: Path) -> Path:
    return shared_datasets / "bccd_voc" / "BCCD"


@pytest.fixture(scope="session")
def fruits_json(shared_datasets: Path) -> Path:
    return shared_datasets / "fruits_nuts_coco" / "data" / "trainval.json"
