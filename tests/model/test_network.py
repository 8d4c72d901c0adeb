"""One "are we offline" rule (yolo_tl.network), the same as Ultralytics', used by weights and doctor."""

from __future__ import annotations

import socket

import pytest

from yolo_tl import doctor, network
from yolo_tl.errors import WeightsError
from yolo_tl.model.weights import resolve_weights

VALUES = ["true", "TRUE", " True ", "1", "yes", "on", "y", "t", "false", "0", "no", "", "off", "2", "truthy"]


@pytest.mark.parametrize("value", VALUES)
def test_offline_requested_reads_yolo_offline_exactly_as_ultralytics(monkeypatch, value):
    from ultralytics.utils import env_bool

    monkeypatch.setenv("YOLO_OFFLINE", value)
    assert network.offline_requested() is env_bool("YOLO_OFFLINE")


def test_unset_yolo_offline_is_not_a_request(monkeypatch):
    from ultralytics.utils import env_bool

    monkeypatch.delenv("YOLO_OFFLINE", raising=False)
    assert network.offline_requested() is env_bool("YOLO_OFFLINE") is False


def _no_network(*args, **kwargs):
    raise AssertionError("the network was probed although YOLO_OFFLINE asked for none")


@pytest.mark.parametrize("value", ["1", "yes", "true"])
def test_weights_and_doctor_agree_without_touching_the_network(monkeypatch, tmp_path, value):
    monkeypatch.setenv("YOLO_OFFLINE", value)
    monkeypatch.setattr(socket, "create_connection", _no_network)
    monkeypatch.setattr("yolo_tl.model.weights.weights_cache_dir", lambda: tmp_path)
    with pytest.raises(WeightsError, match="network is unavailable"):
        resolve_weights("yolov8s.pt")
    reachable, why = doctor.can_download()
    assert reachable is False and f"YOLO_OFFLINE={value}" in why


def test_an_unreachable_host_means_offline(monkeypatch):
    monkeypatch.setenv("YOLO_OFFLINE", "false")
    network._probe_cache.clear()

    def refused(*args, **kwargs):
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(socket, "create_connection", refused)
    try:
        assert network.offline(timeout=0.5) is True
        assert network.download_host_reachable(0.5) == (False, "github.com connection refused")
    finally:
        network._probe_cache.clear()
