"""``python -m benchmarks.run`` (``make bench``): run the comparisons, write RESULTS.md.

Options set sizes and repeats (``--quick`` for a smoke run); ``--only`` picks comparisons.
Everything is generated under a temporary work folder (``--workdir`` to choose one, ``--keep``
to keep it); FiftyOne and Ultralytics get private settings and database folders there.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import fields
from pathlib import Path

from benchmarks import common, harness, report, suite

REPO = Path(__file__).resolve().parents[1]
NOTES = Path(__file__).with_name("NOTES.md")


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (smoke test)")
    ap.add_argument("--only", default="", help="comma list of: " + ", ".join(suite.COMPARISONS)
                    + "; opt-in (not run by default): " + ", ".join(suite.OPT_IN))
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS.md"),
                    help="where to write the results (default benchmarks/RESULTS.md)")
    ap.add_argument("--workdir", type=Path, default=None, help="work folder (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--no-profile", action="store_true", help="skip the cProfile runs")
    for f in fields(common.Config):
        if f.name == "profile":
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("int",):
            ap.add_argument(flag, type=int, default=None)
        else:  # tuples: comma lists
            ap.add_argument(flag, default=None, help="comma list")
    return ap.parse_args(argv)


def make_config(args: argparse.Namespace) -> common.Config:
    cfg = common.Config.quick() if args.quick else common.Config()
    for f in fields(common.Config):
        value = getattr(args, f.name, None)
        if value is None:
            continue
        if isinstance(value, str):
            value = tuple(int(x) for x in value.split(",") if x.strip())
        setattr(cfg, f.name, value)
    if args.no_profile:
        cfg.profile = False
    return cfg


def bench_env(work: Path) -> dict:
    """Environment of every child: offline, no tracking, private settings and database."""
    env = dict(os.environ)
    env.update({
        "YOLO_OFFLINE": "true", "FIFTYONE_DO_NOT_TRACK": "true",
        "FIFTYONE_DATABASE_DIR": str(work / "fiftyone-db"),
        "FIFTYONE_DATABASE_VALIDATION": "false",
        "YOLO_CONFIG_DIR": str(work / "ultralytics"), "MPLBACKEND": "Agg",
        "BENCH_WORKDIR": str(work), "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p]),
    })
    env.pop("FIFTYONE_DATABASE_URI", None)
    return env


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    cfg = make_config(args)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(suite.COMPARISONS)
    known = {**suite.COMPARISONS, **suite.OPT_IN}
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"error: unknown comparison(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    work = args.workdir or Path(tempfile.mkdtemp(prefix="yolo-tl-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    env = bench_env(work)
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:7.1f}s] {msg}", flush=True)

    ctx = common.Ctx(cfg, work, env, log)
    rows: list[common.Row] = []
    failures: list[str] = []
    keeper = harness.start_db_keeper(env) if suite.FIFTYONE & set(names) else None
    if not args.quick:
        # files deleted in the last minute (a test run, the previous bench's work folder) slow
        # down every file this run creates: ext4 skips recently freed inodes one by one (see
        # NOTES.md, "Noise"); after a sync that window is 60 s
        log("letting ext4 forget recently deleted inodes (sync, 65 s) ...")
        os.sync()
        time.sleep(65)
    try:
        for name in names:
            log(f"{name} ...")
            try:
                rows += known[name](ctx)
            except (harness.BenchError, OSError, KeyError, ValueError) as err:
                first = str(err).strip().splitlines()
                log(f"{name} FAILED: {err}")
                if os.environ.get("BENCH_DEBUG"):
                    traceback.print_exc()
                failures.append(f"{name}: {first[0] if first else type(err).__name__}"
                                + (f" ... {first[-1]}" if len(first) > 1 else ""))
    finally:
        if keeper is not None:
            harness.stop_db_keeper(keeper)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    total = time.perf_counter() - t0
    if NOTES.is_file() and not args.quick:
        ctx.extras["findings"] = ["", NOTES.read_text().strip(), ""]
    text = report.render(rows, harness.machine_info(), cfg, ctx.extras, argv, total, failures)
    report.write(args.out, text)
    log(f"wrote {args.out} ({len(rows)} rows, {len(failures)} failed) in {total / 60:.1f} min")
    for r in rows:
        log(f"  {r.verdict:7} {r.what}: ratio {r.ratio:.2f}x (target {r.target})"
            if r.ratio is not None else f"  {r.verdict:7} {r.what}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
