"""yolo-tl doctor: each check says ok / warn / fail with a fix, and only a fail exits non-zero."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from yolo_tl import doctor
from yolo_tl.cli import app


def test_checks_without_database_or_network_report_no_failure_here():
    report = doctor.run_checks(database=False, online=False)
    names = [c.name for c in report.checks]
    assert names == ["python", "torch + CUDA", "opencv", "ultralytics", "pretrained weights", "App port"]
    for c in report.checks:
        assert c.status in {"ok", "warn", "fail"}
        assert c.status == "ok" or c.fix, f"{c.name}: a warning or failure must say how to fix it"
    assert report.ok, [c for c in report.checks if c.status == "fail"]


def test_torch_check_agrees_with_torch():
    import torch

    c = doctor.check_torch()
    assert torch.__version__ in c.detail
    assert (c.status == "ok") == torch.cuda.is_available()


def test_ultralytics_check_names_its_settings_file():
    from ultralytics.utils import SETTINGS_FILE

    c = doctor.check_ultralytics()
    assert c.status == "ok" and str(SETTINGS_FILE) in c.detail


def test_port_in_use_is_a_warning_and_a_free_port_is_ok():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        busy = doctor.check_app_port(port)
    assert busy.status == "warn" and str(port) in busy.detail and "--port" in busy.fix
    assert doctor.check_app_port(port).status == "ok"  # released now


def test_weights_offline_missing_then_found_where_ultralytics_looks(tmp_path, monkeypatch):
    from ultralytics.utils import SETTINGS
    from ultralytics.utils.downloads import attempt_download_asset

    monkeypatch.setenv("YOLO_OFFLINE", "true")
    monkeypatch.chdir(tmp_path)
    name = "yolov8n-doctor-test.pt"
    missing = doctor.check_weights(name)
    assert missing.status == "warn" and "YOLO_OFFLINE" in missing.detail and name in missing.fix
    # Put a file where Ultralytics itself looks (its settings' weights_dir): both must find it.
    wd = Path(SETTINGS["weights_dir"])
    wd.mkdir(parents=True, exist_ok=True)
    target = wd / name
    target.write_bytes(b"not really weights")
    try:
        found = doctor.check_weights(name)
        assert found.status == "ok"
        assert Path(attempt_download_asset(name)).resolve() == doctor.find_local_weights(name)
        assert str(target.resolve()) in found.detail
    finally:
        target.unlink()


def test_cli_json_and_exit_codes(monkeypatch):
    runner = CliRunner()
    res = runner.invoke(app, ["doctor", "--no-database", "--no-online", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["ok"] is True and len(data["checks"]) == 6

    monkeypatch.setattr(doctor, "check_opencv",
                        lambda: doctor.Check("opencv", "fail", "cannot import cv2", "pip install it"))
    res = runner.invoke(app, ["doctor", "--no-database", "--no-online"])
    assert res.exit_code == 1
    assert "cannot import cv2" in res.stdout and "pip install it" in res.stdout


def test_a_crashing_check_is_reported_not_raised(monkeypatch):
    def boom():
        raise RuntimeError("exploded\nsecond line")

    monkeypatch.setattr(doctor, "check_torch", boom)
    report = doctor.run_checks(database=False, online=False)
    c = next(c for c in report.checks if c.name == "torch + CUDA")
    assert c.status == "fail" and c.detail == "check crashed: exploded" and not report.ok


@pytest.mark.slow
def test_database_check_starts_fiftyone_database():
    c = doctor.check_fiftyone()
    assert c.status in {"ok", "warn"}, c
    import fiftyone.core.odm.database as fod

    assert fod.get_db_client().server_info()["ok"] == 1.0
