"""notebooks/walkthrough.ipynb: executes end to end with tiny settings; the committed file is small."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.helpers import REPO

NOTEBOOK = REPO / "notebooks" / "walkthrough.ipynb"
VOC = REPO / "datasets" / "sample" / "voc"


def test_committed_notebook_has_no_outputs():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert NOTEBOOK.stat().st_size < 50_000


@pytest.mark.slow
def test_notebook_runs_end_to_end(tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    work = tmp_path / "work"
    for key, value in {"WALKTHROUGH_EPOCHS": "1", "WALKTHROUGH_SOURCE_EPOCHS": "1",
                       "WALKTHROUGH_SOURCE_IMAGES": "16", "WALKTHROUGH_IMGSZ": "64",
                       "WALKTHROUGH_WORKERS": "0", "WALKTHROUGH_OUT": str(work),
                       "WALKTHROUGH_DATASET": "walkthrough-test", "WALKTHROUGH_LAUNCH_APP": "0",
                       "MPLBACKEND": "module://matplotlib_inline.backend_inline"}.items():
        monkeypatch.setenv(key, value)  # the kernel inherits this environment (and conftest's)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}},
                   ).execute(env=dict(os.environ))

    def text(cell) -> str:
        return "".join(o.get("text", "") or "".join(o.get("data", {}).get("text/plain", ""))
                       for o in cell.outputs)

    out = "\n".join(text(c) for c in nb.cells if c.cell_type == "code")
    assert "App not launched" in out
    images = [c for c in nb.cells if c.cell_type == "code" and any("image/png" in o.get("data", {})
                                                                   for o in c.outputs)]
    assert len(images) == 2  # sample images + training curves
    for run in ("transfer", "scratch"):
        assert (work / "runs" / run / "results.csv").is_file()
        assert (work / "runs" / run / "weights" / "best.pt").is_file()

    import fiftyone as fo

    val = set((VOC / "ImageSets" / "Main" / "val.txt").read_text().split())
    ds = fo.load_dataset("walkthrough-test")
    assert {Path(p).stem for p in ds.values("filepath")} == val
    n_gt = sum(len(ET.parse(VOC / "Annotations" / f"{s}.xml").getroot().findall("object")) for s in val)
    assert sum(len(d.detections) if d else 0 for d in ds.values("ground_truth")) == n_gt
    assert f"{len(val)} samples" in out
    # the "export and check" cell: best.onnx with its record, evaluated as an exported model
    import hashlib
    import json

    record = json.loads((work / "export" / "export.json").read_text())
    assert record["sha256"] == hashlib.sha256((work / "export" / "best.onnx").read_bytes()).hexdigest()
    assert "evaluate(best.onnx): mAP50-95" in out
