"""The ``yolo-tl`` command line: a thin Typer layer over the Python API.

Each command module only parses options, calls one library function and prints its result.
"""

from __future__ import annotations

import typer

from yolo_tl import __version__
from yolo_tl.cli._common import state

app = typer.Typer(
    name="yolo-tl",
    help=(
        "Transfer learning for YOLO object detection: prepare VOC/COCO data, fine-tune with "
        "frozen layers, and analyse errors in FiftyOne.\n\n"
        "Example: yolo-tl prepare my_voc/ --out data/ && yolo-tl finetune data/data.yaml --freeze backbone"
    ),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"yolo-tl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks instead of one-line errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """yolo-tl: prepare -> finetune -> evaluate / predict -> analyze -> app."""
    state.debug = debug or state.env_debug


# Command modules register themselves on `app` when imported. One line each.
from yolo_tl.cli import analyze as _analyze  # noqa: E402,F401
from yolo_tl.cli import demo as _demo  # noqa: E402,F401
from yolo_tl.cli import export as _export  # noqa: E402,F401
from yolo_tl.cli import fix_labels as _fix_labels  # noqa: E402,F401
from yolo_tl.cli import prepare as _prepare  # noqa: E402,F401
from yolo_tl.cli import runs as _runs  # noqa: E402,F401
from yolo_tl.cli import sweep as _sweep  # noqa: E402,F401
from yolo_tl.cli import train as _train  # noqa: E402,F401
from yolo_tl.cli import weights as _weights  # noqa: E402,F401


def main() -> None:
    app()
