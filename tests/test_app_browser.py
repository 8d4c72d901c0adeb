"""`yolo-tl app NAME` rendered by a real headless Chromium; the App must listen on loopback only."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listen_addresses(port: int) -> set:
    """Local addresses with a LISTEN socket on ``port``, read from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            cols = line.split()
            addr, hexport = cols[1].rsplit(":", 1)
            if cols[3] == "0A" and int(hexport, 16) == port:  # 0A = TCP_LISTEN
                if len(addr) == 8:  # IPv4, little-endian hex
                    found.add(socket.inet_ntoa(bytes.fromhex(addr)[::-1]))
                else:
                    found.add(addr)
    return found


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180.0) -> None:
    """Until the CLI has printed its URL (session connected) and the server answers HTTP."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"yolo-tl app exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if "FiftyOne App: http" not in log.read_text():
            time.sleep(2)
            continue
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(2)
    pytest.fail(f"the App did not answer on {url} within {timeout:.0f}s:\n{log.read_text()[-3000:]}")


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed "
                    "(Debian: apt-get install -y chromium; .ci/run installs it)")
def test_app_renders_dataset_in_chromium_on_loopback(bccd_analysis, tmp_path):
    name, port = bccd_analysis.name, _free_port()
    log = tmp_path / "app.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "yolo_tl", "app", name, "--port", str(port)],
                                stdout=fh, stderr=subprocess.STDOUT)
    try:
        _wait_ready(f"http://127.0.0.1:{port}/", proc, log)
        assert _listen_addresses(port) == {"127.0.0.1"}  # loopback only by default
        assert f"http://localhost:{port}/datasets/{name}" in log.read_text()
        dom = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={tmp_path / 'chromium'}",
             "--virtual-time-budget=20000", "--dump-dom",
             f"http://127.0.0.1:{port}/datasets/{name}"],
            capture_output=True, text=True, timeout=180).stdout
        assert name in dom, dom[-2000:]
        assert "predictions" in dom and "ground_truth" in dom
        assert dom.count('data-cy="looker"') > 0, "no sample tiles rendered"
    finally:
        proc.send_signal(signal.SIGTERM)  # the CLI turns SIGTERM into a clean App shutdown
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # FiftyOne's server process follows its parent; the port is freed
    deadline = time.time() + 60
    while _listen_addresses(port) and time.time() < deadline:
        time.sleep(1)
    assert proc.returncode == 0, log.read_text()[-2000:]
    assert not _listen_addresses(port), "the App server outlived `yolo-tl app`"
