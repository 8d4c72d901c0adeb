"""Where a sweep's trials run: here one after another, one per GPU, or as Ray Tune trials.

Every runner calls yolo-tl's own :func:`yolo_tl.training.finetune.finetune` with keyword options, one
run folder per recipe under the project folder, and returns ``{run name: error line}`` for the recipes
that failed (the others' runs are in the project folder). A job's options may carry its own ``data``
(``analyze --folds``: one derived data.yaml per fold); without it the runner's shared data is used.
``pick_runner`` and ``run_jobs`` choose and call the runner the same way for ``sweep`` and
``analyze --folds``. Ultralytics' ``tune(use_ray=True)`` is not used: it resets the model's callbacks,
which would drop yolo-tl's freeze / unfreeze / lr-factor schedules.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from pathlib import Path
from typing import Any

from yolo_tl.errors import TrainingError, YoloTLError

log = logging.getLogger(__name__)
Job = tuple[str, dict[str, Any]]  # (run name, finetune keyword options)


def run_trial(data: str | Path, name: str, options: dict[str, Any], project: str | Path,
              device: str | None = None) -> dict[str, Any]:
    """One recipe: finetune into ``project/name``; returns the run's metrics (empty without validation).
    ``options["data"]``, when there, is this job's own data.yaml (instead of ``data``)."""
    from yolo_tl.training.finetune import finetune

    kwargs = dict(options)
    data = kwargs.pop("data", None) or data
    if device is not None:
        kwargs["device"] = device
    result = finetune(Path(data), project=Path(project), name=name, **kwargs)
    return result.metrics.to_dict() if result.metrics else {}


def device_list(device: str | None) -> list[str]:
    """``"0,1"`` -> ``["0", "1"]``; None or one device -> at most one entry."""
    return [d.strip() for d in str(device or "").split(",") if d.strip()]


def pick_runner(device: str | None, ray_address: str | None) -> str:
    """``ray`` with an address (or ``RAY_ADDRESS``), ``devices`` for several devices, else ``local``."""
    if ray_address or os.environ.get("RAY_ADDRESS"):
        return "ray"
    return "devices" if len(device_list(device)) > 1 else "local"


def run_jobs(runner: str, data: Path, jobs: list[Job], project: Path, *, device: str | None,
             ray_address: str | None = None, cpus_per_trial: float = 1.0,
             gpus_per_trial: float = 0.0) -> dict[str, str]:
    """The jobs through ``runner`` (from ``pick_runner``); ``{run name: error line}`` for those that failed."""
    if runner == "ray":
        if device and device != "auto":
            jobs = [(name, {**options, "device": device}) for name, options in jobs]
        return run_ray(data, jobs, project, ray_address or os.environ.get("RAY_ADDRESS"), cpus_per_trial,
                       gpus_per_trial)
    if runner == "devices":
        return run_per_device(data, jobs, project, device_list(device))
    return run_local(data, jobs, project, device)


def run_local(data: Path, jobs: list[Job], project: Path, device: str | None) -> dict[str, str]:
    """One trial after another in this process; Ctrl-C stops the sweep, finished runs stay."""
    failed: dict[str, str] = {}
    for i, (name, options) in enumerate(jobs, 1):
        log.info("sweep trial %d/%d: %s", i, len(jobs), name)
        try:
            run_trial(data, name, options, project, device)
        except YoloTLError as err:
            log.error("%s: %s", name, err)
            failed[name] = str(err)
    return failed


def _trial_process(data: str, name: str, options: dict[str, Any], project: str, device: str) -> None:
    import sys

    try:
        run_trial(data, name, options, project, device)
    except YoloTLError as err:
        sys.stderr.write(f"{name}: {err}\n")
        sys.exit(1)


def run_per_device(data: Path, jobs: list[Job], project: Path, devices: list[str]) -> dict[str, str]:
    """One trial per device at a time (several GPUs), each in its own process (CUDA state stays apart)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    todo: queue.Queue[Job] = queue.Queue()
    for job in jobs:
        todo.put(job)
    failed: dict[str, str] = {}
    running: list[Any] = []
    lock = threading.Lock()

    def worker(device: str) -> None:
        while True:
            try:
                name, options = todo.get_nowait()
            except queue.Empty:
                return
            log.info("sweep trial %s on device %s", name, device)
            proc = ctx.Process(target=_trial_process, args=(str(data), name, options, str(project), device),
                               name=f"yolo-tl-sweep-{name}")
            proc.start()
            with lock:
                running.append(proc)
            proc.join()
            if proc.exitcode != 0:
                with lock:
                    failed[name] = f"trial process exited with code {proc.exitcode} (see its log above)"

    threads = [threading.Thread(target=worker, args=(d,), daemon=True) for d in devices]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    except KeyboardInterrupt:
        with lock:
            for proc in running:
                if proc.is_alive():
                    proc.terminate()
        raise
    return failed


def _ray_trial(config: dict[str, Any]) -> None:
    """A Ray Tune trial: yolo-tl's finetune into the shared project folder, then its metrics to Tune."""
    job = config["job"]
    metrics = run_trial(job["data"], job["name"], job["options"], job["project"])
    report = {"map50_95": metrics.get("map50_95") or 0.0, "map50": metrics.get("map50") or 0.0, "run": job["name"]}
    try:
        from ray import tune

        tune.report(report)
    except (ImportError, AttributeError, TypeError):  # Ray before 2.x's tune.report(dict)
        from ray import train

        train.report(report)


def run_ray(data: Path, jobs: list[Job], project: Path, address: str | None, cpus_per_trial: float,
            gpus_per_trial: float) -> dict[str, str]:
    """Ray Tune trials on the cluster at ``address`` (or the Ray already started in this process).

    Each trial writes its run into ``project``: on a cluster of several machines that folder must be shared
    storage mounted at the same path on every node, as Ray requires for trial results.
    """
    try:
        import ray
        from ray import tune
    except ImportError:
        raise TrainingError("Ray is not installed", field="ray_address",
                            hint="pip install 'yolo-tl[sweep]' (ray[tune])") from None
    if not jobs:
        return {}
    if not ray.is_initialized():
        try:
            ray.init(address=address, log_to_driver=True)
        except Exception as err:  # noqa: BLE001  (ConnectionError, RuntimeError, ... by Ray version)
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise TrainingError(f"cannot connect to the Ray cluster: {first}", field="ray_address",
                                hint=f"is a Ray head running at {address}? (ray start --head)") from None
    configs = [{"data": str(data), "name": name, "options": _plain(options), "project": str(project)}
               for name, options in jobs]
    trainable = tune.with_resources(_ray_trial, {"cpu": cpus_per_trial, "gpu": gpus_per_trial})
    run_config = _run_config(project)
    tuner = tune.Tuner(trainable, param_space={"job": tune.grid_search(configs)},
                       tune_config=tune.TuneConfig(num_samples=1), run_config=run_config)
    results = tuner.fit()
    failed: dict[str, str] = {}
    for result in results:
        if result.error is not None:
            name = (result.config or {}).get("job", {}).get("name", "?")
            first = (str(result.error).strip().splitlines() or ["error"])[-1]
            failed[name] = first[:300]
    return failed


def _run_config(project: Path) -> Any:
    try:
        from ray.tune import RunConfig
    except ImportError:  # Ray < 2.x keeps it in ray.train / ray.air
        from ray.train import RunConfig
    return RunConfig(storage_path=str(project / "ray"), name="sweep", verbose=1)


def _plain(options: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in options.items()}


__all__ = ["device_list", "pick_runner", "run_jobs", "run_local", "run_per_device", "run_ray", "run_trial"]
