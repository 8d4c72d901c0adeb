"""Stop analyze before FiftyOne's database fills its disk, not after.

A MongoDB server whose disk fills does not fail the insert that filled it: WiredTiger writes its
data files at the next checkpoint (every 60 s) and then aborts the whole server, for every user
of it. So analyze asks the server (``dbStats``: the free space of the filesystem under its data
folder, local or remote alike) before it predicts anything and after every batch it inserts, and
stops with one line while there is still room: it needs ``RESERVE`` bytes free plus, for the
images still to come, as many bytes per image as the batches so far took (``collStats``). The
dataset being built is then deleted (``swap.building``) and the earlier one of that name is left
as it was. A server that does not report its filesystem (some hosted services) is not checked.
"""

from __future__ import annotations

import logging
from typing import Any

from yolo_tl.errors import OutputError

log = logging.getLogger(__name__)

RESERVE = 64 * 2**20  # room for WiredTiger's checkpoints and journal beyond the data itself


def _mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


class SpaceGuard:
    """``check(done)`` before the first batch (``done=0``) and after each one."""

    def __init__(self, ds: Any, total_images: int, *, where: str, reserve: int = RESERVE) -> None:
        from yolo_tl._upstream.fiftyone import database, sample_collection_name

        self.db = database()
        self.collection = sample_collection_name(ds)
        self.total, self.where, self.reserve = total_images, where, reserve

    def free_bytes(self) -> float | None:
        stats = self.db.command("dbStats")
        if "fsTotalSize" not in stats or "fsUsedSize" not in stats:
            return None
        return float(stats["fsTotalSize"]) - float(stats["fsUsedSize"])

    def _bytes_so_far(self) -> float:
        try:
            return float(self.db.command("collStats", self.collection).get("size", 0))
        except Exception as err:  # a server without collStats: the reserve alone is checked
            log.debug("collStats failed: %s", err)
            return 0.0

    def check(self, done: int) -> None:
        free = self.free_bytes()
        if free is None:
            return
        need = self.reserve
        if done:
            need += self._bytes_so_far() / done * max(self.total - done, 0)
        if free < need:
            rest = f" plus about {_mib(need - self.reserve)} for the rest of the split" if done else ""
            raise OutputError(
                f"FiftyOne's database disk has {_mib(free)} free, less than the {_mib(self.reserve)} analyze "
                f"leaves free for MongoDB{rest}: stopped before the disk fills", path=self.where,
                hint="free some space there or point FIFTYONE_DATABASE_DIR / FIFTYONE_DATABASE_URI "
                     "elsewhere; the earlier dataset of this name is unchanged")
