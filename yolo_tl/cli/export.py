"""``yolo-tl export``: options -> yolo_tl.deploy.export -> a parity table."""
# ruff: noqa: B008  (typer.Option defaults are the Typer idiom)

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from yolo_tl.cli import app
from yolo_tl.cli._common import console, handle_errors, logs_to_stderr, print_json


def render_parity(report: Any) -> None:
    """.pt vs export: mAP, latency, box corners, raw output; one row each."""
    p = report.parity
    fmt = report.format
    table = Table(title=f"{Path(p.get('data_yaml', '')).name or 'export'}: .pt vs {fmt}"
                        + (f" on {p['split']}" if "split" in p else ""))
    for col in ("check", ".pt", fmt, "difference"):
        table.add_column(col, justify="left" if col == "check" else "right")
    if "pt" in p:
        for key, label in (("map50", "mAP50"), ("map50_95", "mAP50-95")):
            a, b = p["pt"][key], p["exported"][key]
            table.add_row(label, f"{a:.4f}", f"{b:.4f}", f"{b - a:+.4f}")
        a, b = p["pt"]["latency_ms"], p["exported"]["latency_ms"]
        table.add_row("CPU ms / image", f"{a:.1f}", f"{b:.1f}", f"{b - a:+.1f} ms (x{a / b:.2f})" if b else "-")
        for key, label in (("boxes", "same letterbox"), ("boxes_default_predict", "predict defaults")):
            boxes = p[key]
            corner = "-" if boxes["max_corner_px"] is None else f"{boxes['max_corner_px']:.3f} px max"
            table.add_row(f"boxes, {label}", str(boxes["pt_boxes"]), str(boxes["exported_boxes"]),
                          f"{boxes['matched']} matched, {corner}")
    table.add_row("raw output (1 input)", "", "", f"{p['raw_output_max_rel_diff']:.1e} rel")
    if "openvino_cpu_precision" in p:
        table.add_row(f"raw, CPU {p['openvino_cpu_precision']}", "", "",
                      f"{p['raw_output_max_rel_diff_cpu_precision']:.1e} rel")
    console.print(table)
    if "pt" in p:
        console.print(f"mAP50-95 drop {p['map50_95_drop']:+.4f} is within --max-drop {p['max_drop']}. "
                      f"Boxes at conf >= {p['boxes_conf']} on {p['boxes']['images']} images; \"predict defaults\": "
                      "the .pt letterboxed to a rectangle, as predict does, the export to its fixed square.")
    else:
        console.print("[dim]No --data: mAP and box parity not measured.[/]")


@app.command("export", rich_help_panel="Train")
@handle_errors
def export_cmd(
    weights: Path = typer.Argument(..., help="Trained checkpoint (.pt), e.g. runs/train/weights/best.pt."),
    fmt: str = typer.Option("onnx", "--format", help="onnx, openvino or torchscript."),
    data: Path | None = typer.Option(None, "--data", help="data.yaml: validate the .pt and the export on --split and compare."),
    split: str = typer.Option("val", "--split", help="Split of --data to compare on."),
    imgsz: int = typer.Option(640, "--imgsz", help="Input size of the exported model (a multiple of 32)."),
    dynamic: bool = typer.Option(False, "--dynamic", help="Dynamic batch and image size (ONNX, OpenVINO)."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: <weights dir>/export_<format>)."),
    max_drop: float = typer.Option(0.005, "--max-drop", help="Largest mAP50-95 drop of the export allowed with --data."),
    conf: float = typer.Option(0.25, "--conf", help="Confidence threshold of the box-by-box comparison (as predict)."),
    opset: int | None = typer.Option(None, "--opset", help="ONNX opset (default: Ultralytics' choice)."),
    as_json: bool = typer.Option(False, "--json", help="Print export.json's content as JSON on stdout."),
) -> None:
    """Export a trained model for deployment and prove it answers like the .pt.

    Writes the model and export.json (hashes, versions, parity figures). With --data, a mAP50-95 drop above --max-drop is an error and nothing is written.

    Example: yolo-tl export runs/train/weights/best.pt --format onnx --data data/data.yaml --imgsz 640
    """
    from yolo_tl.deploy.export import export

    with logs_to_stderr("ultralytics", enabled=True):
        report = export(weights, format=fmt, data=data, split=split, imgsz=imgsz, dynamic=dynamic, out=out,
                        max_drop=max_drop, opset=opset, parity_conf=conf)
    if as_json:
        print_json(report.to_dict())
        return
    render_parity(report)
    console.print(f"Exported: [bold]{report.model}[/]")
    console.print(f"Record:   {report.export_json}")
