"""Test-wide setup: offline Ultralytics, private settings and a FiftyOne database folder per session.

Environment variables are set at import time, before any test imports ultralytics or fiftyone.
FiftyOne attaches to any database service already running on the machine, whatever its
FIFTYONE_DATABASE_DIR, so two test sessions at once share one database (and fixed dataset names).
A test that uses one of the session fixtures that train or start the database is marked ``slow``
(``make test-fast`` leaves those out).
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
# Hypothesis keeps its example database and constants cache in ./.hypothesis by default: the repo root
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(_SESSION_DIR / "hypothesis"))

from tests.helpers import SHARED_DATASETS  # noqa: E402  (after the environment above)

# the session fixtures that train a model or start FiftyOne's database (each takes seconds to minutes)
SLOW_FIXTURES = frozenset({"tiny_base_weights", "bccd_detector", "bccd_analysis"})


def pytest_collection_modifyitems(config, items) -> None:
    """Mark ``slow`` every test that needs a slow session fixture, directly or through another fixture,
    so that a test which forgets its marker still stays out of ``make test-fast``."""
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


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


# --- finetune / evaluate / predict: one tiny dataset and one tiny checkpoint per session ---
@pytest.fixture(scope="session")
def tiny_yolo_data(tmp_path_factory) -> Path:
    """data.yaml of a synthetic 8+4 image, 3-class YOLO dataset (see tests/helpers/train_helpers.py)."""
    from tests.helpers.train_helpers import write_tiny_dataset

    return write_tiny_dataset(tmp_path_factory.mktemp("tiny_yolo"))


@pytest.fixture(scope="session")
def tiny_base_weights(tiny_yolo_data: Path, tmp_path_factory) -> Path:
    """best.pt of yolov8n.yaml trained 1 epoch at imgsz 64 on tiny_yolo_data: the start checkpoint."""
    from tests.helpers.train_helpers import FAST
    from yolo_tl.training.finetune import finetune

    runs = tmp_path_factory.mktemp("base_runs")
    result = finetune(tiny_yolo_data, weights="yolov8n.yaml", freeze="none", epochs=1, imgsz=64, batch=4,
                      workers=0, project=runs, name="base", extra=FAST)
    return result.best


# --- analyze / app: BCCD prepared once, one tiny detector, one analysis per session ---
@pytest.fixture(scope="session")
def bccd_yolo(bccd_root: Path, tmp_path_factory) -> Path:
    """data.yaml of ../shared BCCD prepared by yolo_tl.prepare (VOC splits 205/87/72)."""
    import yolo_tl

    out = tmp_path_factory.mktemp("bccd_analysis") / "yolo"
    yolo_tl.prepare(bccd_root, out)
    return out / "data.yaml"


@pytest.fixture(scope="session")
def bccd_detector(bccd_yolo: Path, tmp_path_factory) -> Path:
    """yolov8n.yaml trained 2 epochs at imgsz 128 on BCCD val (87 images, ~30 s on 2 CPUs)."""
    import yaml
    from ultralytics import YOLO

    tmp = tmp_path_factory.mktemp("bccd_detector")
    data = yaml.safe_load(bccd_yolo.read_text())
    data["train"] = data["val"]  # small and fast; the analysis only needs a model that predicts
    (tmp / "data.yaml").write_text(yaml.safe_dump(data))
    YOLO("yolov8n.yaml").train(data=str(tmp / "data.yaml"), epochs=2, imgsz=128, batch=16, nbs=16,
                               workers=0, project=str(tmp / "runs"), name="det", plots=False,
                               val=False, amp=False, verbose=False)
    return tmp / "runs" / "det" / "weights" / "last.pt"


@pytest.fixture(scope="session")
def bccd_analysis(bccd_yolo: Path, bccd_detector: Path, tmp_path_factory):
    """One full `analyze` of BCCD val (with Ultralytics' validator and the PNGs), shared by the analysis tests."""
    from yolo_tl.analysis.analyze import analyze

    return analyze(bccd_yolo, weights=bccd_detector, split="val", name="test-bccd-val",
                   imgsz=128, batch=16, compare_ultralytics=True,
                   plots_dir=tmp_path_factory.mktemp("bccd_analysis_plots"))
