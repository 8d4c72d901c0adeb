"""AnalyzeOptions and the nested AnalysisReport, without FiftyOne: checks, JSON shape, the CLI's table."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from yolo_tl.analysis.report import AnalysisReport, AnalyzeOptions, ClassRow, Maps, SplitFacts, Totals, Views
from yolo_tl.cli import app
from yolo_tl.errors import YoloTLError


@pytest.mark.parametrize(("kwargs", "field", "words"), [
    ({"conf": 1.0}, "conf", "must be in [0, 1), got 1.0"),
    ({"iou": 0}, "iou", "must be in (0, 1), got 0.0"),
    ({"show_conf": -0.1}, "show_conf", "must be in [0, 1]"),
    ({"batch": 0}, "batch", "must be >= 1"),
    ({"imgsz": "640"}, "imgsz", "expected an integer, got '640'"),
    ({"compare_ultralytics": "yes"}, "compare_ultralytics", "expected true or false"),
])
def test_options_refuse_bad_values_by_parameter_name(kwargs, field, words):
    with pytest.raises(YoloTLError) as exc:
        AnalyzeOptions(**kwargs)
    assert exc.value.field == field and words in str(exc.value)


def test_options_normalise_paths_and_numbers(tmp_path):
    opts = AnalyzeOptions(data=tmp_path / "data.yaml", weights=Path("w.pt"), conf=0, plots_dir=tmp_path)
    assert opts.data == str(tmp_path / "data.yaml") and opts.weights == "w.pt" and opts.plots_dir == str(tmp_path)
    assert isinstance(opts.conf, float) and opts.conf == 0.0
    assert AnalyzeOptions.from_dict(opts.to_dict()) == opts


def _report() -> AnalysisReport:
    rows = [ClassRow("cat", gt=10, tp=8, fp=2, fn=2, precision=0.8, recall=0.8, ap=0.61),
            ClassRow("dog", gt=5, tp=1, fp=3, fn=4, precision=0.25, recall=0.2, ap=0.123)]
    return AnalysisReport(
        name="yolo-tl-x", url_path="/datasets/yolo-tl-x", options=AnalyzeOptions(data="/d/data.yaml", weights="/w.pt"),
        totals=Totals(samples=7, gt_boxes=15, predictions=14, tp=9, fp=5, fn=6),
        maps=Maps(fiftyone_map50_95=0.3665, why_differ="measured", by_size={"all": 0.3665, "small": None},
                  steps=[{"rule": "FiftyOne's COCO rules", "map50_95": 0.3665, "change": None}]),
        classes=rows, views=Views({"worst_samples": 7, "fp_high_conf": 3}, "worst_samples"),
        seconds={"total": 1.5}, split=SplitFacts(is_train=True, train_overlap=1.0, unreadable=["/d/x.jpg"]))


def test_report_json_is_nested_and_plain():
    d = json.loads(json.dumps(_report().to_dict()))  # only JSON types inside
    assert set(d) == {"name", "url_path", "options", "totals", "maps", "classes", "confusion", "views", "plots",
                      "seconds", "split", "evaluation", "label_issues", "error_types", "folds"}
    assert d["folds"] is None  # predictions by the analysed weights themselves (no --folds)
    assert d["options"]["iou"] == 0.5 and d["options"]["data"] == "/d/data.yaml"
    assert d["totals"] == {"samples": 7, "gt_boxes": 15, "predictions": 14, "tp": 9, "fp": 5, "fn": 6}
    assert d["maps"]["fiftyone_map50_95"] == 0.3665 and d["maps"]["ultralytics_val_run"] is False
    assert d["views"] == {"counts": {"worst_samples": 7, "fp_high_conf": 3}, "default": "worst_samples"}
    assert d["split"]["unreadable"] == ["/d/x.jpg"] and d["classes"][1]["name"] == "dog"
    assert _report().totals.precision == 9 / 14 and _report().totals.recall == 9 / 15


def test_cli_table_reads_the_nested_report(monkeypatch):
    import yolo_tl.cli.analyze as cli

    console = Console(record=True, width=200)
    monkeypatch.setattr(cli, "console", console)
    cli.render_report(_report().to_dict())
    text = console.export_text()
    assert "yolo-tl-x  (val: 7 images, conf >= 0.001, IoU 0.5)" in text
    assert "warning: 'val' is the training split" in text
    all_row = next(line for line in text.splitlines() if re.match(r"\W*all\b", line))
    cells = [c.strip() for c in all_row.strip().strip("│").split("│")]
    assert cells == ["all", "15", "9", "5", "6", f"{9 / 14:.3f}", f"{9 / 15:.3f}", f"{0.3665:.3f}"], all_row
    assert re.search(r"worst_samples\s+\W*7", text) and "the App opens on worst_samples" in text


def test_cli_prints_the_error_types_table_at_80_columns(monkeypatch):
    """The report's error_types JSON back into error_report's 80-column table and its sentence, in a terminal
    80 columns wide (nothing wrapped)."""
    import numpy as np

    import yolo_tl.cli.analyze as cli
    from yolo_tl.analysis.metrics.error_costs import ErrorAccumulator
    from yolo_tl.analysis.metrics.error_report import VIEWS, reading, table
    from yolo_tl.analysis.metrics.error_types import type_errors

    acc = ErrorAccumulator(["cat", "dog"])
    gt = np.array([[0, 0, 40, 40], [50, 50, 90, 90], [100, 0, 140, 40]], float)
    pred = np.array([[0, 0, 40, 40], [60, 50, 100, 90], [50, 50, 90, 90], [200, 200, 240, 240]], float)
    acc.add(type_errors(gt, [0, 1, 0], pred, [0, 1, 0, 1], [0.9, 0.8, 0.7, 0.6]))
    res = acc.result()
    rep = _report()
    rep.error_types = {**res.to_dict(), "reading": reading(res), "views": dict(VIEWS)}
    console = Console(record=True, width=80)
    monkeypatch.setattr(cli, "console", console)
    cli.render_report(json.loads(json.dumps(rep.to_dict())))
    lines = console.export_text().splitlines()
    for line in table(res).splitlines():
        assert line.rstrip() in [x.rstrip() for x in lines], line
    assert reading(res) in " ".join(" ".join(lines).split())  # wrapped at 80 columns between words
    assert max(len(x.rstrip()) for x in lines) <= 80


def test_cli_bad_option_is_one_line_with_its_flag(tmp_path):
    r = CliRunner().invoke(app, ["analyze", str(tmp_path / "data.yaml"), "--weights", str(tmp_path / "w.pt"),
                                 "--iou", "1.5"])
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert r.exit_code == 1 and lines == ["error: --iou: must be in (0, 1), got 1.5"], r.output
