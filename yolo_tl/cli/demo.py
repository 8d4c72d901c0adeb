"""``yolo-tl demo``, ``yolo-tl doctor`` and ``yolo-tl sample``: the newcomer's commands."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from yolo_tl.cli import app
from yolo_tl.cli._common import console, err_console, handle_errors, logs_to_stderr, print_json, setup_logging

PANEL = "Getting started"
_STYLE = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[bold red]fail[/]"}


@app.command(rich_help_panel=PANEL)
@handle_errors
def doctor(
    database: bool = typer.Option(True, "--database/--no-database",
                                  help="Check that FiftyOne's database starts (takes a few seconds)."),
    online: bool = typer.Option(True, "--online/--no-online",
                                help="Check whether pretrained weights could be downloaded now."),
    port: int = typer.Option(5151, "--port", help="The FiftyOne App port to check."),
    json_out: bool = typer.Option(False, "--json", help="Print the checks as JSON."),
) -> None:
    """Check torch/CUDA, Ultralytics, pretrained weights, FiftyOne's database and the App port.

    Each check says ok, warn or fail, and how to fix it. Exit code 1 only when a check fails.

    Example: yolo-tl doctor
    """
    from yolo_tl.doctor import run_checks

    setup_logging()
    report = run_checks(database=database, online=online, port=port)
    if json_out:
        print_json(report.as_dict())
    else:
        table = Table(title="yolo-tl doctor")
        table.add_column("check")
        table.add_column("status")
        table.add_column("detail", overflow="fold")
        table.add_column("how to fix", overflow="fold")
        for c in report.checks:
            table.add_row(c.name, _STYLE.get(c.status, c.status), c.detail, c.fix)
        console.print(table)
        n_warn = sum(c.status == "warn" for c in report.checks)
        if report.ok:
            console.print(f"[green]No hard failures[/] ({n_warn} warning(s)).")
        else:
            console.print("[bold red]Some checks failed[/]: see 'how to fix' above.")
    if not report.ok:
        raise typer.Exit(1)


@app.command(rich_help_panel=PANEL)
@handle_errors
def sample(
    out: Path | None = typer.Option(None, "--out", "-o",
                                    help="Where to write it (default: datasets/sample in the source tree)."),
    source_task: bool = typer.Option(False, "--source-task",
                                     help="Write the synthetic source task (other classes) instead."),
    n_images: int = typer.Option(240, "--images", min=1, help="Images of the source task (with --source-task)."),
    json_out: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Regenerate the bundled sample dataset (VOC + COCO), byte-identical to the committed one.

    Example: yolo-tl sample --out /tmp/sample
    """
    from yolo_tl.demo.sample import REPO_SAMPLE_DIR, generate_sample, generate_source_task

    setup_logging()
    if source_task:
        if out is None:
            raise typer.BadParameter("--source-task needs --out", param_hint="--out")
        info = generate_source_task(out, n_images=n_images)
    else:
        info = generate_sample(out or REPO_SAMPLE_DIR, overwrite=True)
    if json_out:
        print_json(info.as_dict())
        return
    console.print(f"Wrote {info.images} images ({info.empty_images} without objects), {info.boxes} "
                  f"boxes to [bold]{info.root}[/]: "
                  + ", ".join(f"{k} {v}" for k, v in info.per_class.items()))


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _render_keep(d: dict) -> None:
    """Plain transfer beside transfer with --keep-classes: the new task, and the old one."""
    k = d.get("keep_classes")
    if not k:
        return
    src = k.get("source_map50_95") or {}
    t = next(r for r in d["runs"] if r["label"] == "transfer")
    table = Table(title="Keep what the start model knew (--keep-classes), beside plain transfer",
                  caption="both runs: backbone frozen; source = the start model's classes, matched by name")
    for col in ("run", "sample mAP50", "sample mAP50-95", "source mAP50-95", "time"):
        table.add_column(col, justify="left" if col == "run" else "right")
    if src:
        table.add_row("start model", "-", "-", _f(src.get("source model")), "")
    table.add_row("transfer", _f(t["map50"]), _f(t["map50_95"]),
                  _f(src.get("transfer")) if src else "-", f"{t['seconds']:.0f}s")
    table.add_row("transfer --keep-classes", _f(k["target_map50"]), _f(k["target_map50_95"]),
                  _f(src.get("keep")) if src else "-", f"{k['run']['seconds']:.0f}s")
    console.print(table)


def render_demo(d: dict) -> None:
    """The demo's result: data check, runs side by side, per-class metrics, where things are."""
    console.rule("[bold]yolo-tl demo: results")
    console.print(f"Sample: {d['images']} images, {d['boxes']} boxes; the VOC and COCO forms give "
                  f"{'[green]the same boxes[/]' if d['same_boxes'] else '[red]different boxes[/]'}.")
    console.print(d["pretrained_note"], highlight=False)

    runs = Table(title="Training runs (mAP on the val split of the data each run trained on)")
    for col in ("run", "starting weights", "frozen", "epochs", "mAP50", "mAP50-95", "time"):
        runs.add_column(col, justify="right" if col in ("epochs", "mAP50", "mAP50-95", "time") else "left",
                        overflow="fold")
    labels = {"source": "pretrain on source task", "transfer": "transfer, backbone frozen",
              "scratch": "from scratch"}
    for r in d["runs"]:
        frozen = r["frozen_layers"]
        frozen_txt = f"{frozen[0]}-{frozen[-1]}" if frozen else "none"
        runs.add_row(labels.get(r["label"], r["label"]), r["start"], frozen_txt, str(r["epochs"]),
                     _f(r["map50"]), _f(r["map50_95"]), f"{r['seconds']:.0f}s")
    console.print(runs)
    _render_keep(d)

    ev = d["evaluation"]
    per = Table(title="Fine-tuned model, val split (yolo_tl.evaluate, Ultralytics' validator)")
    for col in ("class", "images", "instances", "precision", "recall", "mAP50", "mAP50-95"):
        per.add_column(col, justify="left" if col == "class" else "right")
    for row in ev.get("per_class", []):
        per.add_row(row["name"], str(row["images"]), str(row["instances"]), _f(row["precision"]),
                    _f(row["recall"]), _f(row["map50"]), _f(row["map50_95"]))
    per.add_row("[bold]all[/]", "", "", _f(ev["precision"]), _f(ev["recall"]), _f(ev["map50"]),
                _f(ev["map50_95"]), end_section=True)
    console.print(per)

    a = d.get("analysis")
    if a:
        views = ", ".join(f"{k} ({v})" for k, v in a["views"]["counts"].items())
        totals, maps = a["totals"], a["maps"]
        console.print(f"FiftyOne: dataset [bold]{a['name']}[/], {totals['samples']} samples, "
                      f"tp {totals['tp']} / fp {totals['fp']} / fn {totals['fn']} at IoU {a['options']['iou']}, "
                      f"COCO-style mAP {_f(maps['fiftyone_map50_95'])} (Ultralytics mAP50-95 "
                      f"{_f(maps['ultralytics_map50_95'] or ev['map50_95'])}). Saved views: {views or 'none'}.",
                      highlight=False)
        if maps["steps"]:
            steps = "; ".join(f"{s['rule']}: {_f(s['map50_95'])}" for s in maps["steps"])
            console.print(f"The gap, measured on the same predictions: {steps}.", highlight=False)
            console.print("The rest, to Ultralytics' validator, is its own inference pass: its NMS keeps a box "
                          "once for every class scoring above --conf (multi_label=True), predictions keep one "
                          "class per box (see README, 'Why the two mAPs differ').", highlight=False)
    elif d.get("analysis_error"):
        console.print(f"[bold red]FiftyOne analysis failed:[/] {d['analysis_error']} "
                      "(run: yolo-tl doctor)", highlight=False)
    t = next(r for r in d["runs"] if r["label"] == "transfer")
    console.print(f"Dataset:  {d['data_yaml']}", highlight=False, soft_wrap=True)
    console.print(f"Run:      {t['run_dir']}", highlight=False, soft_wrap=True)
    console.print(f"Weights:  {t['best']}", highlight=False, soft_wrap=True)
    console.print(f"Summary:  {d['out']}/demo.json  ({d['seconds']['total']:.0f}s in all)",
                  highlight=False, soft_wrap=True)
    if d.get("app_command"):
        console.print(f"Open the results in the FiftyOne App:  [bold]{d['app_command']}[/]",
                      highlight=False, soft_wrap=True)


@app.command(rich_help_panel=PANEL)
@handle_errors
def demo(
    out: Path = typer.Option(Path("demo_out"), "--out", "-o",
                             help="Folder for the prepared data, runs and demo.json."),
    fast: bool = typer.Option(False, "--fast", help="Tiny settings (1 epoch, imgsz 64): checks the "
                                                   "plumbing in about two minutes, learns little."),
    launch: bool = typer.Option(False, "--launch", help="Open the results in the FiftyOne App when done "
                                                       "(Ctrl-C stops)."),
    weights: str = typer.Option("yolov8n.pt", "--weights", "-w",
                                help="Pretrained weights to transfer from, if they can be had."),
    scratch: bool = typer.Option(True, "--scratch/--no-scratch",
                                 help="Also train from scratch for comparison."),
    keep: bool = typer.Option(True, "--keep-classes/--no-keep-classes",
                              help="Also run the transfer with --keep-classes, shown beside plain transfer."),
    name: str = typer.Option("yolo-tl-demo", "--name", help="FiftyOne dataset name."),
    device: str | None = typer.Option(None, "--device", help="cpu, 0, 0,1 ... (default: auto)."),
    port: int = typer.Option(5151, "--port", help="App port (with --launch)."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Run the whole workflow on the bundled sample: prepare -> finetune (frozen backbone) ->
    evaluate -> analyze in FiftyOne, and print the metrics and the App command.

    Offline, without yolov8n.pt, it pretrains briefly on a synthetic source task instead (and says so).

    Example: yolo-tl demo --launch
    """
    from yolo_tl.demo.run import run_demo

    setup_logging()

    def step(title: str, detail: str) -> None:
        c = err_console if json_out else console
        c.rule(f"[bold]{title}", align="left", style="cyan")
        if detail:
            c.print(detail, highlight=False, soft_wrap=True)

    with logs_to_stderr("ultralytics", "fiftyone", enabled=json_out):
        result = run_demo(out, fast=fast, weights=weights, compare_scratch=scratch,
                          compare_keep=keep, dataset_name=name, device=device, step=step)
    d = result.to_dict()
    if json_out:
        print_json(d)
    else:
        render_demo(d)
    if result.analysis_error:
        raise typer.Exit(1)
    if launch:
        from yolo_tl.cli.analyze import _serve

        _serve(name, "127.0.0.1", port, False, json_out)
