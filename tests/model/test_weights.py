"""--weights resolution: local file, cache, offline message, model yaml, non-detection refusal."""

from __future__ import annotations

import hashlib
import logging
import shutil
import socket

import pytest
from typer.testing import CliRunner

from yolo_tl.cli import app
from yolo_tl.errors import WeightsError
from yolo_tl.model.weights import resolve_weights, weights_cache_dir


def test_weights_offline_not_cached_gives_one_clear_message(monkeypatch, tmp_path):
    monkeypatch.setenv("YOLO_OFFLINE", "true")
    monkeypatch.setattr("yolo_tl.model.weights.weights_cache_dir", lambda: tmp_path / "empty_cache")
    def no_network(*args, **kwargs):  # deciding offline-ness must not wait on the network
        raise AssertionError("the network was probed although YOLO_OFFLINE=true")

    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(WeightsError) as info:
        resolve_weights("yolov8s.pt")
    message = str(info.value)
    assert "\n" not in message
    assert "network is unavailable" in message
    assert str(tmp_path / "empty_cache" / "yolov8s.pt") in message  # where to put the file
    assert "https://github.com/ultralytics/assets/releases/download/" in message


@pytest.mark.slow
def test_weights_offline_cli_exit_1_without_traceback(monkeypatch, tmp_path, tiny_yolo_data):
    monkeypatch.setenv("YOLO_OFFLINE", "true")
    monkeypatch.setattr("yolo_tl.model.weights.weights_cache_dir", lambda: tmp_path / "empty_cache")
    result = CliRunner().invoke(app, ["finetune", str(tiny_yolo_data), "--weights", "yolo11s.pt",
                                      "--project", str(tmp_path / "runs")])
    assert result.exit_code == 1
    out = result.output
    assert "yolo11s.pt is not in the Ultralytics weights cache" in out
    assert "Traceback" not in out
    assert not (tmp_path / "runs").exists()  # refused before any run directory was made


def test_weights_cached_name_is_found(monkeypatch, tmp_path, tiny_base_weights):
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copy(tiny_base_weights, cache / "yolov8n.pt")
    monkeypatch.setattr("yolo_tl.model.weights.weights_cache_dir", lambda: cache)
    resolved = resolve_weights("yolov8n.pt")
    assert resolved.source == "cache"
    assert resolved.path == cache / "yolov8n.pt"
    assert resolved.sha256 == hashlib.sha256((cache / "yolov8n.pt").read_bytes()).hexdigest()
    assert resolved.task == "detect" and resolved.nc == 3


def test_weights_local_file(tiny_base_weights):
    resolved = resolve_weights(str(tiny_base_weights))
    assert resolved.source == "local"
    assert len(resolved.model_yaml["backbone"]) == 10


@pytest.mark.parametrize(("spec", "match"), [
    ("no/such/dir/best.pt", "file not found"),
    ("my_custom_model.pt", "not a model name Ultralytics can download"),
    ("weights.bin", "expected a .pt checkpoint"),
    ("not_a_model.yaml", "not a model architecture yaml"),
])
def test_weights_bad_names(spec, match):
    with pytest.raises(WeightsError, match=match):
        resolve_weights(spec)


def test_weights_yaml_warns_training_from_scratch(caplog):
    with caplog.at_level(logging.WARNING, logger="yolo_tl.model.weights"):
        resolved = resolve_weights("yolov8n.yaml")
    assert resolved.source == "scratch"
    assert "training from scratch, not transfer learning" in caplog.text


def test_weights_non_detection_checkpoint_is_refused(tmp_path):
    from ultralytics import YOLO

    path = tmp_path / "classifier.pt"
    YOLO("yolov8n-cls.yaml").save(path)
    with pytest.raises(WeightsError, match="classify-task model"):
        resolve_weights(path)
    with pytest.raises(WeightsError, match="segment-task model"):
        resolve_weights("yolov8n-seg.yaml")


def test_weights_cache_dir_is_ultralytics_setting():
    from ultralytics.utils import SETTINGS

    assert str(weights_cache_dir()) == str(SETTINGS["weights_dir"])
