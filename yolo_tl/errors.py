"""One exception family for everything a user can get wrong.

The library raises these; the CLI prints ``str(err)`` as one line and exits 1. Messages name the
file (and the field) so the user can go straight to the problem.
"""

from __future__ import annotations

import errno
from pathlib import Path


class YoloTLError(Exception):
    """Base class: a problem with the user's input or environment, not a bug in yolo-tl."""

    exit_code = 1

    def __init__(
        self,
        reason: str,
        *,
        path: str | Path | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.reason = reason
        self.path = str(path) if path is not None else None
        self.field = field
        self.hint = hint
        super().__init__(str(self))

    def renamed(self, field: str) -> YoloTLError:
        """The same error about ``field`` (the CLI shows a Python parameter as its flag)."""
        self.field = field
        self.args = (str(self),)
        return self

    def __str__(self) -> str:
        parts = []
        if self.path:
            parts.append(self.path)
        if self.field:
            parts.append(self.field)
        head = ": ".join(parts)
        text = f"{head}: {self.reason}" if head else self.reason
        if self.hint:
            text = f"{text} ({self.hint})"
        # One line, always: a stray newline from a library message must not break the format.
        return " ".join(text.split())


class AnnotationError(YoloTLError):
    """A malformed annotation file, or a missing / non-numeric field in one."""


class ImageError(YoloTLError):
    """An image that is missing, unreadable, or outside the images root."""


class LayoutError(YoloTLError):
    """A source folder whose layout yolo-tl cannot recognise, or options that do not fit it."""


class OutputError(YoloTLError):
    """The output folder cannot be written as asked (exists, inside the source, ...)."""


class WeightsError(YoloTLError):
    """Pretrained weights that cannot be found, downloaded or used."""


class TrainingError(YoloTLError):
    """Bad training options or a dataset that Ultralytics cannot train on."""


class FixError(YoloTLError):
    """A label fix that cannot be applied (its box no longer exists, two fixes on one box, ...)."""


class DatabaseError(YoloTLError):
    """FiftyOne's database cannot be started or reached."""


def first_line(err: BaseException) -> str:
    """The first line of an upstream exception's message (its name when the message is empty)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def is_disk_full(err: BaseException) -> bool:
    """ENOSPC / EDQUOT, also as torch.save reports it (a RuntimeError from its zip writer)."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and ("file write failed" in text or "No space left" in text)
