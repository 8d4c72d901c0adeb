"""Run cases in fresh subprocesses, repeatedly and interleaved; medians, ratios, machine facts.

One run = one child process. The parent measures the whole process (wall clock from spawn to
exit, peak RSS from ``wait4``); the child may also report inner timings (the timed call alone)
on a last line ``BENCH_RESULT {json}``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

MARK = "BENCH_RESULT "


@dataclass
class Run:
    """One child process: whole-process wall seconds, peak RSS (bytes), what the child reported."""

    wall: float
    maxrss: int
    inner: dict = field(default_factory=dict)
    proc: float = float("nan")  # spawn -> the child's reported ``done_at`` (no exit, no cleanup)


@dataclass
class Case:
    """A command to time. ``cleanup`` runs (untimed) after each run, e.g. to remove outputs."""

    name: str
    cmd: list[str]
    cleanup: Callable[[], None] | None = None
    cwd: str | None = None
    runs: list[Run] = field(default_factory=list)

    def median(self, key: str = "wall") -> float:
        """Median over runs of the process wall (``wall``), peak RSS, or an inner timing."""
        return statistics.median(self.values(key))

    def values(self, key: str = "wall") -> list[float]:
        """Per-run values: ``wall``, ``proc``, ``maxrss`` or a key the child reported."""
        if key in ("wall", "proc", "maxrss"):
            return [getattr(r, key) for r in self.runs]
        return [r.inner[key] for r in self.runs]


class BenchError(RuntimeError):
    pass


def run_once(case: Case, env: dict, timeout: float, log: Callable[[str], None]) -> Run:
    """Spawn ``case.cmd``; return its wall time, peak RSS and reported inner timings."""
    out_path = Path(env["BENCH_WORKDIR"]) / f"_{os.getpid()}_child.log"
    with open(out_path, "w+b") as out:
        t0, spawned_at = time.perf_counter(), time.time()
        proc = subprocess.Popen(case.cmd, env=env, cwd=case.cwd, stdout=out,
                                stderr=subprocess.STDOUT)
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    out_path.unlink(missing_ok=True)
    if proc.returncode != 0:
        tail = "\n".join(text.strip().splitlines()[-15:])
        raise BenchError(f"{case.name} failed (exit {proc.returncode}):\n{tail}")
    inner: dict = {}
    for line in text.splitlines():
        if line.startswith(MARK):
            inner = json.loads(line[len(MARK):])
    # the child's own VmHWM when it reports one: wait4's ru_maxrss also counts the memory the
    # child had right after fork, i.e. this (parent) process's
    maxrss = int(inner.get("peak_rss") or usage.ru_maxrss * 1024)
    log(f"    {case.name}: {wall:.3f} s wall, {maxrss / 2**20:.0f} MiB peak"
        + (f", inner {inner.get('seconds', float('nan')):.3f} s" if "seconds" in inner else ""))
    done = inner.get("done_at")
    return Run(wall=wall, maxrss=maxrss, inner=inner, proc=(done - spawned_at) if done else wall)


def measure(cases: list[Case], repeats: int, env: dict, *, timeout: float = 900,
            warmup: bool = False, log: Callable[[str], None] = print) -> list[Case]:
    """Run all cases ``repeats`` times, interleaved (A B A B ...), after an optional warm-up round
    that fills the page cache and byte-compiles imports; warm-up runs are discarded."""
    rounds = repeats + (1 if warmup else 0)
    for r in range(rounds):
        for case in cases:
            run = run_once(case, env, timeout, log)
            if not (warmup and r == 0):
                case.runs.append(run)
            if case.cleanup:
                case.cleanup()
                # flush this run's writes now: ext4 otherwise writes them back during the next
                # run and bills that run for this one's output
                os.sync()
    return cases


def worker_cmd(case: str, **kwargs) -> list[str]:
    """Command line running ``benchmarks.worker`` case ``case`` with JSON keyword arguments."""
    return [sys.executable, "-m", "benchmarks.worker", case, json.dumps(kwargs)]


def set_aside(path: Path) -> None:
    """Move ``path`` (if present) out of the way, into ``.set-aside/`` beside it, instead of deleting it.

    Deleting thousands of files between runs biases the next run: for a few minutes after a
    deletion ext4 will not reuse the freed inodes (``recently_deleted()`` in fs/ext4/ialloc.c),
    and every new file's inode allocation scans past all of them again. ``perf`` put 25-40% of a
    5,000-label prepare in that scan, and the share changed from run to run with whatever was
    deleted last. A rename frees nothing; the work folder is removed once, after the whole bench.
    """
    if not os.path.lexists(path):
        return
    aside = path.parent / ".set-aside"
    aside.mkdir(exist_ok=True)
    os.rename(path, aside / f"{path.name}-{time.monotonic_ns()}")


def set_aside_after(path: Path) -> Callable[[], None]:
    """A cleanup that sets ``path`` aside (see ``set_aside``): the next run writes a fresh one."""
    return lambda: set_aside(path)


def machine_info() -> dict:
    """Machine, OS, Python and package versions for the RESULTS.md header."""
    from importlib import metadata

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    versions = {}
    for pkg in ("yolo-tl", "ultralytics", "torch", "fiftyone", "opencv-python", "numpy",
                "pymongo", "pyyaml"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    return {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "cpu": cpu,
            "cores": os.cpu_count(), "memory": mem, "os": platform.platform(),
            "python": platform.python_version(), "versions": versions,
            "gpu": _gpu()}


def _gpu() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except (ImportError, RuntimeError, OSError):  # no torch or a broken CUDA: no GPU
        return "none"
    return "none"


_KEEPER = (
    "import sys, fiftyone.core.odm.database as d\n"
    "d.get_db_conn(); d.get_db_client().server_info()\n"
    "print('ready', flush=True); sys.stdin.read()\n"
)


def start_db_keeper(env: dict, timeout: float = 120) -> subprocess.Popen:
    """Keep FiftyOne's database (in ``FIFTYONE_DATABASE_DIR``) up for the whole bench, so that
    every FiftyOne run finds it started, as an interactive user would. Stop with ``stop_db_keeper``."""
    proc = subprocess.Popen([sys.executable, "-c", _KEEPER], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t0 = time.perf_counter()
    lines = []
    while time.perf_counter() - t0 < timeout:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.strip() == "ready":
            return proc
    proc.kill()
    raise BenchError("FiftyOne's database did not start:\n" + "".join(lines[-10:]))


def stop_db_keeper(proc: subprocess.Popen) -> None:
    """Let the keeper exit (FiftyOne stops its mongod when the last client is gone)."""
    try:
        proc.stdin.close()
        proc.wait(timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()
