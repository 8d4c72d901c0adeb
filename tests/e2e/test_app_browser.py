"""`yolo-tl app NAME` rendered by a real headless Chromium: loopback only, the saved view it opens on,
the outcome colours, the predictions under the display confidence hidden (screenshot pixels)."""

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

from tests.helpers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


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


def _chromium(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'chromium'}",
         "--window-size=1400,900", "--virtual-time-budget=40000", *args, url],
        capture_output=True, text=True, timeout=240)


def _outcome_pixels(png: Path, colors: dict | None = None) -> dict:
    """Pixels of the sample grid drawn in each colour of ``colors`` (default: the outcome scheme's)."""
    import numpy as np
    from PIL import Image

    from yolo_tl.analysis.app.views import OUTCOME_COLORS

    grid = np.asarray(Image.open(png).convert("RGB")).astype(int)[150:, 300:]  # right of the sidebar
    out = {}
    for outcome, hexcolor in (colors or OUTCOME_COLORS).items():
        rgb = np.array([int(hexcolor[i:i + 2], 16) for i in (1, 3, 5)])
        out[outcome] = int((np.abs(grid - rgb).sum(axis=-1) < 30).sum())
    return out


def _screenshot_pixels(tmp_path: Path, url: str, png: Path) -> dict:
    """Outcome-colour pixel counts of a screenshot; again (up to 4 tries) while the grid is not drawn yet."""
    for _ in range(4):
        _chromium(tmp_path, url, f"--screenshot={png}")
        px = _outcome_pixels(png)
        if px["tp"] + px["fn"] + px["fp"] > 0:
            break
    return px


@pytest.fixture
def app_dataset(bccd_yolo, bccd_detector, monkeypatch):
    """BCCD val, predictions given: every GT box but the first of each image exactly at conf 0.9 (tps;
    the first is missed), plus six thin boxes at conf 0.01 per image (fps under the display threshold)."""
    import fiftyone as fo

    from yolo_tl.analysis import collect as fio
    from yolo_tl.analysis.analyze import analyze

    split = fio.read_split(bccd_yolo, "val")
    label_of = dict(zip(split.images, split.labels))

    def fake_predict(model, images, **kw):
        for p in images:
            gt = fio.read_yolo_boxes(label_of[p], split.names)
            boxes = [(lab, box, 0.9) for lab, box, _ in gt[1:]]
            boxes += [("RBC", (0.05 + 0.15 * k, 0.1 + 0.13 * k, 0.3, 0.01), 0.01) for k in range(6)]
            yield p, boxes, (480, 640)

    monkeypatch.setattr(fio, "predict_boxes", fake_predict)
    rep = analyze(bccd_yolo, weights=bccd_detector, name="test-app-outcomes", show_conf=0.25)
    ds = fo.load_dataset(rep.name)
    ds.save_view("every_box", ds.limit(len(ds)))  # the control: nothing hidden
    yield rep
    ds.delete()


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed "
                    "(Debian: apt-get install -y chromium; .ci/run installs it)")
def test_app_opens_on_worst_samples_coloured_by_outcome(app_dataset, tmp_path):
    """The App, as Chromium renders it: on view worst_samples, boxes in the outcome colours, the
    predictions under --show-conf not drawn (and drawn in the control view that keeps them)."""
    name, port = app_dataset.name, free_port()
    log = tmp_path / "app.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "yolo_tl", "app", name, "--port", str(port)],
                                stdout=fh, stderr=subprocess.STDOUT)
    try:
        _wait_ready(f"http://127.0.0.1:{port}/", proc, log)
        assert _listen_addresses(port) == {"127.0.0.1"}  # loopback only by default
        url = f"http://localhost:{port}/datasets/{name}?view=worst-samples"
        assert url in log.read_text()  # the URL printed opens the saved view
        url = url.replace("localhost", "127.0.0.1")
        for _ in range(4):  # a loaded machine may need more than one try before the grid is drawn
            dom = _chromium(tmp_path, url, "--dump-dom").stdout
            if 'data-cy="looker"' in dom:
                break
        assert "worst_samples" in dom, dom[-2000:]  # the view bar names the view
        assert dom.count('data-cy="looker"') > 0, "no sample tiles rendered"
        shot = tmp_path / "worst.png"
        px = _screenshot_pixels(tmp_path, url, shot)
        assert px["tp"] > 500 and px["fn"] > 100, px  # matched boxes and the missed ones, in their colours
        assert px["fp"] < 20, px  # the 6 x 87 fps at conf 0.01 are not drawn
        control = tmp_path / "every_box.png"
        # the same boxes, drawn when nothing hides them
        assert _screenshot_pixels(tmp_path, url.replace("worst-samples", "every-box"), control)["fp"] > 500
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    deadline = time.time() + 60
    while _listen_addresses(port) and time.time() < deadline:
        time.sleep(1)
    assert proc.returncode == 0, log.read_text()[-2000:]
    assert not _listen_addresses(port), "the App server outlived `yolo-tl app`"


@pytest.fixture
def error_dataset(bccd_yolo, bccd_detector, monkeypatch):
    """BCCD val, predictions given: the first GT box of each image missed, the second found only by a box
    moved right by 0.6 of its width at conf 0.8 (IoU 0.25: a localisation error), the rest exact at 0.9."""
    import fiftyone as fo

    from yolo_tl.analysis import collect as fio
    from yolo_tl.analysis.analyze import analyze

    split = fio.read_split(bccd_yolo, "val")
    label_of = dict(zip(split.images, split.labels))

    def fake_predict(model, images, **kw):
        for p in images:
            gt = fio.read_yolo_boxes(label_of[p], split.names)
            boxes = [(lab, box, 0.9) for lab, box, _ in gt[2:]]
            if len(gt) > 1:
                lab, (x, y, w, h), _ = gt[1]
                boxes.append((lab, (x + 0.6 * w, y, w, h), 0.8))
            yield p, boxes, (480, 640)

    monkeypatch.setattr(fio, "predict_boxes", fake_predict)
    rep = analyze(bccd_yolo, weights=bccd_detector, name="test-app-error-types", show_conf=0.25)
    yield rep, fo.load_dataset(rep.name)
    fo.load_dataset(rep.name).delete()


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed "
                    "(Debian: apt-get install -y chromium; .ci/run installs it)")
def test_error_view_opens_coloured_by_error_type(error_dataset, tmp_path):
    """`yolo-tl app NAME --view error_loc`, as Chromium renders it: only the localisation errors (the moved
    predictions and the GT boxes they point at), drawn in the error-type colour, no outcome colours."""
    from yolo_tl.analysis.app.views import ERROR_COLORS, OUTCOME_COLORS

    rep, ds = error_dataset
    moved = [(s.id, d.id, d["error_type"]) for s in ds.iter_samples() for d in s.predictions.detections
             if d.confidence == 0.8]
    loc = {i for _, i, t in moved if t == "loc"}
    assert len(loc) >= 0.8 * len(moved) > 50  # most moved boxes are localisation errors (tidecv agrees: see
    view = ds.load_saved_view("error_loc")  # tests/analysis/test_analyze_error_types.py)
    assert set(view.values("predictions.detections.id", unwind=True)) == loc  # nothing else in the view
    assert set(view.values("ground_truth.detections.error_type", unwind=True)) == {"loc"}
    assert set(view.values("id")) == {s for s, _, t in moved if t == "loc"}
    assert rep.views.counts["error_loc"] == len(view)
    name, port = rep.name, free_port()
    log = tmp_path / "app.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "yolo_tl", "app", name, "--view", "error_loc",
                                 "--port", str(port)], stdout=fh, stderr=subprocess.STDOUT)
    try:
        _wait_ready(f"http://127.0.0.1:{port}/", proc, log)
        url = f"http://127.0.0.1:{port}/datasets/{name}?view=error-loc"
        for _ in range(4):
            dom = _chromium(tmp_path, url, "--dump-dom").stdout
            if 'data-cy="looker"' in dom:
                break
        assert "error_loc" in dom, dom[-2000:]
        shot = tmp_path / "error_loc.png"
        colors = {"loc": ERROR_COLORS["loc"], **{f"outcome_{k}": v for k, v in OUTCOME_COLORS.items()}}
        for _ in range(4):
            _chromium(tmp_path, url, f"--screenshot={shot}")
            px = _outcome_pixels(shot, colors)
            if px["loc"] > 0:
                break
        print(f"screenshot: {shot}")
        assert px["loc"] > 200, px  # the loc boxes (2 thin boxes a tile), in the error-type colour (0 when not)
        # no box in an outcome colour: tps are not in the view, and the scheme is by error type
        assert px["outcome_tp"] < 20 and px["outcome_fp"] < 20 and px["outcome_fn"] < 20, px
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log.read_text()[-2000:]
