"""What every command shares: the consoles, the --debug switch, the error wrapper, stdout kept clean."""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from yolo_tl.errors import YoloTLError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


class _State:
    env_debug: bool = bool(os.environ.get("YOLO_TL_DEBUG"))
    debug: bool = env_debug  # set per invocation by the root callback


state = _State()


def _show_as_flag(err: YoloTLError, fn: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    """The library names Python parameters (``field="pseudo_conf"``); show them as the command's flag
    (``--pseudo-conf``) or argument (``WEIGHTS``), read from the command function's Typer parameters.
    A key of a --config file keeps its name."""
    if not err.field or err.field.startswith("-"):
        return
    if err.path is not None and kwargs.get("config") is not None and err.path == str(kwargs["config"]):
        return
    flag = "--" + err.field.replace("_", "-")
    for name, param in inspect.signature(fn).parameters.items():
        longs = [d for d in getattr(param.default, "param_decls", None) or () if d.startswith("--")]
        if name == err.field or flag in longs:
            is_option = isinstance(param.default, typer.models.OptionInfo)
            err.renamed(longs[0] if is_option and longs else name.upper())
            return


def handle_errors(fn: F) -> F:
    """Turn library errors into one red line and exit code 1 (a traceback only with --debug)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except YoloTLError as err:
            _show_as_flag(err, fn, kwargs)
            if state.debug:
                raise
            # escape(): "images[id=3]" or "[x, y, w, h]" in a message is text, not rich markup
            err_console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False,
                              soft_wrap=True)
            raise typer.Exit(err.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def as_flags(flags: dict[str, str]) -> Iterator[None]:
    """Show a library error about an option by its flag: ``epochs: ...`` -> ``--epochs: ...``.

    The library names Python parameters; an error with a path is about a file's key (``--config``)
    and keeps its name.
    """
    try:
        yield
    except YoloTLError as err:
        if err.path is None and err.field in flags:
            raise err.renamed(flags[err.field]) from err.__cause__
        raise


def print_json(data: Any) -> None:
    """Print machine-readable output on stdout, nothing else on that line."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def setup_logging(verbose: bool = False) -> None:
    level = logging.DEBUG if (verbose or state.debug) else logging.INFO
    logging.basicConfig(level=level, format="%(message)s")


# library -> (module whose import installs its log handlers, loggers that write to stdout)
_LIBRARY_LOGGERS = {
    "ultralytics": ("ultralytics.utils", ("ultralytics",)),
    "fiftyone": ("fiftyone", ("fiftyone", "eta")),
}


@contextlib.contextmanager
def logs_to_stderr(*libraries: str, enabled: bool = True) -> Iterator[None]:
    """Keep stdout for our own output (tables, --json): the libraries' logs and any print go to stderr.

    Ultralytics and FiftyOne log to stdout by default. Their modules are imported here (under the
    redirect, since a first import may print a settings notice) so that their handlers exist, then
    each stdout StreamHandler of theirs writes to stderr until the block ends.
    """
    if not enabled:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        for lib in libraries:
            importlib.import_module(_LIBRARY_LOGGERS[lib][0])
    handlers = [h for lib in libraries for name in _LIBRARY_LOGGERS[lib][1]
                for h in logging.getLogger(name).handlers if type(h) is logging.StreamHandler]
    old = [h.stream for h in handlers]
    for h in handlers:  # plain assignment: setStream() would flush a stream that may be closed
        h.stream = sys.stderr
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        for h, stream in zip(handlers, old):
            h.stream = stream
