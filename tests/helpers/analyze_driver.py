"""Run ``yolo-tl analyze`` in this process, with a real signal sent to itself at a chosen moment.

Not a test module: tests/faults/test_interrupts.py starts it with
``python -m tests.helpers.analyze_driver MODE -- analyze ARGS...``. MODE:

- ``none``: no signal (a plain run; ``slow-swap`` holds the name lock 1 s to make two runs overlap);
- ``sigint-build`` / ``sigkill-build``: SIGINT / SIGKILL once the samples are inserted;
- ``sigint-swap`` / ``sigkill-swap``: SIGINT / SIGKILL just after the old dataset was set aside.
"""

from __future__ import annotations

import os
import signal
import sys
import time


def main(argv: list[str]) -> int:
    mode, args = argv[0], argv[argv.index("--") + 1:]
    import yolo_tl.analysis.store.dataset_swap as swap
    import yolo_tl.analysis.store.evaluated_samples as build

    sig = {"sigint": signal.SIGINT, "sigkill": signal.SIGKILL}.get(mode.split("-")[0])
    # Ctrl-C as a terminal delivers it: a process started in the background by a non-interactive
    # shell (nohup ... &) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if mode.endswith("-build"):
        finish = build.EvaluatedBuilder.finish  # every sample inserted and evaluated

        def finish_then_signal(self, *a, **k):
            out = finish(self, *a, **k)
            os.kill(os.getpid(), sig)
            return out

        build.EvaluatedBuilder.finish = finish_then_signal
    elif mode.endswith("-swap"):
        set_aside = swap._set_aside

        def set_aside_then_signal(old, aside):
            set_aside(old, aside)
            if sig is None:
                time.sleep(1.0)
            else:
                os.kill(os.getpid(), sig)

        swap._set_aside = set_aside_then_signal
    from yolo_tl.cli import app

    try:
        app(args, prog_name="yolo-tl")
    except SystemExit as e:
        return int(e.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
