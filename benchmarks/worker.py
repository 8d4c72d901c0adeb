"""Run one benchmark case in this (fresh) process: ``python -m benchmarks.worker CASE JSON``.

Prints ``BENCH_RESULT {json}`` as its last line: the case's own timings plus ``done_at`` (epoch
seconds when the work ended, so the parent can time "spawn to done" without interpreter exit and
untimed cleanup). With ``"_profile": PATH`` in the JSON the case's timed region
(``profiling.region``) runs under cProfile.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time

# case name -> "module:function" (modules are imported only when their case runs)
CASES = {
    "import_only": "benchmarks.payload_prepare:import_only",
    "ours_prepare": "benchmarks.payload_prepare:ours_prepare",
    "io_floor": "benchmarks.payload_prepare:io_floor",
    "fiftyone_voc": "benchmarks.payload_prepare:fiftyone_voc",
    "ultralytics_coco": "benchmarks.payload_prepare:ultralytics_coco",
    "direct_train": "benchmarks.payload_train:direct_train",
    "ours_finetune": "benchmarks.payload_train:ours_finetune",
    "epoch_times": "benchmarks.payload_train:epoch_times",
    "make_checkpoint": "benchmarks.payload_train:make_checkpoint",
    "fo_tutorial_ingest": "benchmarks.payload_analyze:fo_tutorial_ingest",
    "ours_ingest": "benchmarks.payload_analyze:ours_ingest",
    "fo_evaluate": "benchmarks.payload_analyze:fo_evaluate",
    "ours_evaluate": "benchmarks.payload_analyze:ours_evaluate",
    "ours_analyze_steps": "benchmarks.payload_analyze:ours_analyze_steps",
    "fo_add_evaluate": "benchmarks.payload_analyze:fo_add_evaluate",
    "fo_evaluate_classes": "benchmarks.payload_analyze:fo_evaluate_classes",
}


def peak_rss() -> int:
    """This process's peak resident set (bytes), from ``VmHWM``. Unlike ``wait4``'s
    ``ru_maxrss`` it does not include the forking parent's memory."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main(argv: list[str]) -> int:
    os.environ.setdefault("YOLO_OFFLINE", "true")
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    name, kwargs = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    module, func = CASES[name].split(":")
    fn = getattr(importlib.import_module(module), func)
    profile_path = kwargs.pop("_profile", None)
    if profile_path:  # the case's ``profiling.region()`` picks this up
        os.environ["BENCH_PROFILE"] = profile_path
    result = dict(fn(**kwargs) or {})
    result.setdefault("done_at", time.time())
    result["peak_rss"] = peak_rss()
    sys.stdout.flush()
    print("BENCH_RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
