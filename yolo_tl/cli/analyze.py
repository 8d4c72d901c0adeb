"""``yolo-tl analyze``, ``yolo-tl app`` and ``yolo-tl datasets list|delete``: FiftyOne error analysis."""
# ruff: noqa: B008  (typer.Option defaults are the Typer idiom)

from __future__ import annotations

import contextlib
import signal
import socket
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from yolo_tl.analysis.report import AnalyzeOptions
from yolo_tl.cli import app
from yolo_tl.cli._common import as_flags, console, err_console, handle_errors, logs_to_stderr, print_json, setup_logging
from yolo_tl.cli._suspects import render_suspects

datasets_app = typer.Typer(
    help="List or delete the FiftyOne datasets that yolo-tl made.\n\nExample: yolo-tl datasets list",
    no_args_is_help=True,
)
app.add_typer(datasets_app, name="datasets")

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_O = AnalyzeOptions  # defaults and help texts, declared once there
_FLAGS = {name: f"--{name.replace('_', '-')}" for name in _O.names()}
_FLAGS.update(data="DATA_YAML", compare_ultralytics="--ultralytics-val", plots_dir="--out")


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _fmt4(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def _change(v: float | None) -> str:
    if v is None:
        return ""
    return "0" if abs(v) < 5e-5 else f"{v:+.4f}"


def render_report(d: dict) -> None:
    """Per-class table, AP by object size, the measured steps between the two mAPs, views, figures."""
    o, totals, maps, facts = d["options"], d["totals"], d["maps"], d["split"]
    title = (f"{d['name']}  ({o['split']}: {totals['samples']} images, conf >= {o['conf']}, IoU {o['iou']})")
    if facts["is_train"]:
        title += f"\n[bold yellow]warning: '{o['split']}' is the training split[/] (every image is in train)"
    elif facts["train_overlap"]:
        title += f"\n[yellow]{facts['train_overlap']:.0%} of these images are also in the train split[/]"
    ul = maps["ultralytics_val_run"]
    t = Table(title=title)
    cols = ["class", "GT", "TP", "FP", "FN", "prec.", "recall", "AP"]
    for col in cols + (["AP (UL val)"] if ul else []):
        t.add_column(col, justify="left" if col == "class" else "right")
    for r in d["classes"]:
        t.add_row(r["name"], str(r["gt"]), str(r["tp"]), str(r["fp"]), str(r["fn"]),
                  f"{r['precision']:.3f}", f"{r['recall']:.3f}", _fmt(r["ap"]),
                  *([_fmt(r["ultralytics_ap"])] if ul else []))
    tp, fp, fn = totals["tp"], totals["fp"], totals["fn"]
    t.add_row("[bold]all[/]", str(totals["gt_boxes"]), str(tp), str(fp), str(fn),
              f"{tp / (tp + fp) if tp + fp else 0:.3f}", f"{tp / (tp + fn) if tp + fn else 0:.3f}",
              _fmt(maps["fiftyone_map50_95"]), *([_fmt(maps["ultralytics_map50_95"])] if ul else []), end_section=True)
    console.print(t)
    console.print(f"AP: AP@[.5:.95] by FiftyOne's COCO rules{'; UL val: by Ultralytics validator' if ul else ''}. "
                  f"Precision and recall count every prediction with confidence >= {o['conf']}; "
                  f"see view fp_high_conf for false positives >= {o['high_conf']}.")
    s = Table(title="AP@[.5:.95] by object size")
    for col in ("class", "small", "medium", "large", "all"):
        s.add_column(col, justify="left" if col == "class" else "right")
    for r in d["classes"]:
        s.add_row(r["name"], _fmt(r.get("ap_small")), _fmt(r.get("ap_medium")), _fmt(r.get("ap_large")),
                  _fmt(r["ap"]))
    sz = maps["by_size"]
    s.add_row("[bold]all[/]", *(_fmt(sz.get(k)) for k in ("small", "medium", "large", "all")))
    console.print(s)
    console.print("COCO sizes: small < 32x32 px <= medium <= 96x96 px < large.")
    m = Table(title=f"From FiftyOne's mAP to Ultralytics', one rule at a time, on the same {totals['predictions']} "
                    "predictions")
    m.add_column("rule", overflow="fold")
    m.add_column("mAP50-95", justify="right")
    m.add_column("change", justify="right")
    for step in maps["steps"]:
        ch = step["change"]
        m.add_row(step["rule"], _fmt4(step["map50_95"]), _change(ch))
    steps = maps["steps"] or [{}]
    if ul:
        last, own = steps[-1].get("map50_95"), maps["ultralytics_map50_95"]
        m.add_row("Ultralytics' own val (its separate inference pass)", _fmt4(own),
                  _change(None if last is None or own is None else own - last))
    console.print(m)
    if not ul:
        console.print("[dim]Ultralytics' separate validation pass was not run (add --ultralytics-val).[/]")
    v = Table(title="Saved views")
    v.add_column("view")
    v.add_column("samples", justify="right")
    for name, n in d["views"]["counts"].items():
        v.add_row(name, str(n))
    console.print(v)
    console.print(f"The views show predictions >= {o['show_conf']} (--show-conf), boxes coloured by "
                  f"outcome (the error_* views: by error type); the App opens on {d['views']['default']}.")
    if d.get("error_types"):
        from yolo_tl.analysis.metrics.error_costs import ErrorBreakdown
        from yolo_tl.analysis.metrics.error_report import table

        console.print(table(ErrorBreakdown.from_dict(d["error_types"])), highlight=False, markup=False)
        console.print("TIDE's error types at IoU 0.5 (dAP50: AP points gained by fixing each type alone; FP / FN: "
                      "every false positive / negative fixed).", highlight=False)
        console.print(d["error_types"]["reading"], style="bold", highlight=False)
    for what, path in d["plots"].items():
        console.print(f"{what.replace('_', ' ')}: {path}", highlight=False, soft_wrap=True)


class _Bars:
    """One rich progress bar per phase on stderr (only on a terminal)."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.progress = Progress(TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
                                 console=err_console, transient=False)
        self.tasks: dict[str, int] = {}

    def __call__(self, phase: str, n: int, total: int | None) -> None:
        if phase not in self.tasks:
            self.tasks[phase] = self.progress.add_task(phase, total=total)
        self.progress.advance(self.tasks[phase], n)

    def __enter__(self) -> _Bars:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def _lan_hint(port: int) -> str:
    host = socket.gethostname()
    return f"ssh -N -L {port}:127.0.0.1:{port} USER@{host}"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _precheck_database() -> None:
    """A MongoDB server that is down is one line within seconds, before fiftyone is even imported."""
    from yolo_tl.analysis.store.mongod import precheck_database

    precheck_database()


def _serve(name: str, address: str, port: int, open_browser: bool, as_json: bool,
           view: str | None = None) -> None:
    from yolo_tl.analysis.app.launch import launch_app

    _precheck_database()
    with logs_to_stderr("fiftyone"):
        handle = launch_app(name, address=address, port=port, open_browser=open_browser, view=view)
    if address not in LOOPBACK:
        err_console.print(f"[bold yellow]warning:[/] the App listens on {address}:{port}; anyone who "
                          "can reach this machine on that port can see the images and labels.")
        err_console.print(f"From your own computer, a private alternative: {_lan_hint(port)} "
                          f"then open http://localhost:{port}/ (and use the default --address).")
    msg = f"FiftyOne App: {handle.url}  (Ctrl-C to stop)"
    if as_json:
        err_console.print(msg, highlight=False, soft_wrap=True)
    else:
        console.print(msg, highlight=False, soft_wrap=True)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill PID` stops the App as cleanly as Ctrl-C
    try:
        handle.wait()
    except KeyboardInterrupt:
        pass
    finally:
        handle.close()


@app.command("analyze")
@handle_errors
def analyze_cmd(
    data_yaml: Path = typer.Argument(..., help=_O.help("data")),
    weights: Path = typer.Option(..., "--weights", "-w", help=_O.help("weights")),
    split: str = typer.Option(_O.default("split"), "--split", help=_O.help("split")),
    name: str | None = typer.Option(None, "--name", help=_O.help("name")),
    conf: float = typer.Option(_O.default("conf"), "--conf", help=_O.help("conf")),
    iou: float = typer.Option(_O.default("iou"), "--iou", help=_O.help("iou")),
    imgsz: int = typer.Option(_O.default("imgsz"), "--imgsz", help=_O.help("imgsz")),
    batch: int = typer.Option(_O.default("batch"), "--batch", help=_O.help("batch")),
    high_conf: float = typer.Option(_O.default("high_conf"), "--high-conf", help=_O.help("high_conf")),
    show_conf: float = typer.Option(_O.default("show_conf"), "--show-conf", help=_O.help("show_conf").replace("conf count", "--conf count")),
    out: Path = typer.Option(Path("runs/analyze"), "--out", help="Folder for the PNG figures (a subfolder per dataset name)."),
    device: str | None = typer.Option(None, "--device", help=_O.help("device")),
    ultralytics_val: bool = typer.Option(False, "--ultralytics-val/--no-ultralytics-val", help=_O.help("compare_ultralytics")),
    folds: int | None = typer.Option(None, "--folds", help=_O.help("folds")),
    fold_epochs: int | None = typer.Option(None, "--fold-epochs", help=_O.help("fold_epochs")),
    folds_dir: Path | None = typer.Option(None, "--folds-dir", help=_O.help("folds_dir")),
    ray_address: str | None = typer.Option(None, "--ray-address", help=_O.help("ray_address")),
    gpus_per_fold: float = typer.Option(_O.default("gpus_per_fold"), "--gpus-per-fold", help=_O.help("gpus_per_fold")),
    launch: bool = typer.Option(False, "--launch", help="Open the App when done (Ctrl-C stops)."),
    port: int = typer.Option(5151, "--port", help="App port."),
    address: str = typer.Option("127.0.0.1", "--address",
                                help="App address; 0.0.0.0 exposes it to the network."),
    open_browser: bool = typer.Option(False, "--open-browser", help="Also open a browser tab."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
) -> None:
    """Evaluate WEIGHTS on a split in FiftyOne: per-class report, both mAPs, saved error views.

    Example: yolo-tl analyze data/data.yaml --weights runs/exp/weights/best.pt --launch

    Label mistakes in the training split: yolo-tl analyze data/data.yaml --weights runs/exp/weights/best.pt
    --split train --folds 5
    """
    from yolo_tl.analysis.analyze import analyze, default_name

    setup_logging()
    with as_flags(_FLAGS):  # bad options are one line before the database is even looked at
        opts = AnalyzeOptions(data=data_yaml, weights=weights, split=split, name=name, conf=conf, iou=iou,
                              imgsz=imgsz, batch=batch, high_conf=high_conf, show_conf=show_conf, device=device,
                              compare_ultralytics=ultralytics_val, folds=folds, fold_epochs=fold_epochs,
                              folds_dir=folds_dir, ray_address=ray_address, gpus_per_fold=gpus_per_fold,
                              plots_dir=out / (name or default_name(data_yaml, weights, split)))
    _precheck_database()
    bars = _Bars() if err_console.is_terminal else contextlib.nullcontext()
    with logs_to_stderr("fiftyone", "ultralytics"), bars:
        report = analyze(options=opts, progress=bars if isinstance(bars, _Bars) else None)
    d = report.to_dict()
    if as_json:
        print_json(d)
    else:
        render_report(d)
        if unreadable := report.split.unreadable:  # one line: the images are named in the log above and in --json
            console.print(f"[yellow]{len(unreadable)} image(s) left out: their pixels do not decode "
                          f"(first: {escape(unreadable[0])})[/]")
        if d["folds"]:
            f = d["folds"]
            console.print(f"Predictions: out-of-fold, from {f['k']} fold runs in {escape(f['project'])} (each image "
                          f"predicted by the one that did not train on it; {len(f['ran'])} trained, "
                          f"{len(f['skipped'])} already done).", highlight=False, soft_wrap=True)
        render_suspects(d["label_issues"], report.name)
        console.print(f"Dataset [bold]{report.name}[/] saved. Reopen: yolo-tl app {report.name}")
    if launch:
        _serve(report.name, address, port, open_browser, as_json)


@app.command("app")
@handle_errors
def app_cmd(
    name: str = typer.Argument(..., help="Dataset name (see: yolo-tl datasets list)."),
    port: int = typer.Option(5151, "--port", help="App port."),
    address: str = typer.Option("127.0.0.1", "--address",
                                help="App address; 0.0.0.0 exposes it to the network."),
    open_browser: bool = typer.Option(False, "--open-browser", help="Also open a browser tab."),
    view: str | None = typer.Option(None, "--view", help="Saved view to open on (default: the one "
                                                            "analyze chose, worst_samples)."),
) -> None:
    """Reopen an analysis in the FiftyOne App; blocks until Ctrl-C.

    Example: yolo-tl app yolo-tl-data-val-exp-best-1a2b3c --port 5151
    """
    _serve(name, address, port, open_browser, as_json=False, view=view)


@datasets_app.command("list")
@handle_errors
def datasets_list(
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
) -> None:
    """List the FiftyOne datasets made by yolo-tl.

    Example: yolo-tl datasets list --json
    """
    from yolo_tl.analysis.store.our_datasets import list_datasets

    _precheck_database()
    with logs_to_stderr("fiftyone"):
        rows = list_datasets()
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("No yolo-tl datasets. Make one with: yolo-tl analyze DATA_YAML --weights W")
        return
    t = Table(title="yolo-tl datasets in FiftyOne")
    for col in ("name", "samples", "split", "weights", "data_yaml"):
        t.add_column(col, justify="right" if col == "samples" else "left")
    for r in rows:
        t.add_row(r["name"], str(r["samples"]), str(r.get("split", "")), str(r.get("weights", "")),
                  str(r.get("data_yaml", "")))
    console.print(t)


@datasets_app.command("delete")
@handle_errors
def datasets_delete(
    name: str = typer.Argument(..., help="Dataset to delete (only datasets made by yolo-tl)."),
) -> None:
    """Delete a FiftyOne dataset made by yolo-tl.

    Example: yolo-tl datasets delete yolo-tl-data-val-exp-best-1a2b3c
    """
    from yolo_tl.analysis.store.our_datasets import delete_dataset

    _precheck_database()
    with logs_to_stderr("fiftyone"):
        delete_dataset(name)
    console.print(f"Deleted {name}")
