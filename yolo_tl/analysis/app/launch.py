"""Serve a dataset in the FiftyOne App (loopback by default)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from yolo_tl.analysis.app.views import scheme_for
from yolo_tl.analysis.store.our_datasets import open_fiftyone
from yolo_tl.errors import DatabaseError, OutputError


@dataclass
class AppHandle:
    """A running App: ``url`` to print, ``wait()`` blocks until Ctrl-C, ``close()`` stops it."""

    session: Any
    url: str
    address: str
    port: int

    def wait(self) -> None:
        self.session.wait(-1)  # -1: keep serving when the last browser tab closes

    def close(self) -> None:
        self.session.close()


def launch_app(name: str, *, address: str = "127.0.0.1", port: int = 5151,
               open_browser: bool = False, view: str | None = None) -> AppHandle:
    """Serve dataset ``name`` in the FiftyOne App on ``address:port`` (loopback by default).

    The App opens on saved view ``view``; by default the one analyze recorded (``worst_samples``:
    the images with the most errors, predictions under the display confidence hidden). An
    ``error_<type>`` view opens with the boxes coloured by error type, any other by outcome.
    """
    fo = open_fiftyone()
    if not fo.dataset_exists(name):
        raise OutputError(f"no FiftyOne dataset named '{name}'", hint="see: yolo-tl datasets list")
    ds = fo.load_dataset(name)
    view = view or (ds.info or {}).get("yolo_tl", {}).get("default_view")
    saved = None
    if view:
        if view not in ds.list_saved_views():
            raise OutputError(f"dataset '{name}' has no saved view '{view}'",
                              hint=f"its views: {', '.join(ds.list_saved_views()) or 'none'}")
        saved = ds.load_saved_view(view)
    logging.getLogger("fiftyone.core.session").setLevel(logging.WARNING)  # we print our own URL
    try:
        session = fo.launch_app(ds, view=saved, address=address, port=port, remote=not open_browser,
                                color_scheme=scheme_for(ds, view) if view else None)
    except Exception as err:
        if isinstance(err, DatabaseError):
            raise
        raise OutputError(f"could not start the FiftyOne App on {address}:{port}: {err}",
                          hint="try another --port") from err
    host = "localhost" if address in ("127.0.0.1", "localhost") else address
    url = f"http://{host}:{port}/datasets/{ds.slug}"
    if saved is not None:
        from fiftyone.core.utils import to_slug

        url += f"?view={to_slug(view)}"
    return AppHandle(session, url, address, port)
