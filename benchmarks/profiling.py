"""Where the time goes: cProfile self-time grouped into a few buckets.

Self time (``tottime``) of each function goes to the bucket of its file. C builtins (``~``) have no
file, so their self time goes to the buckets of their callers, split by the call edges: a socket
``recv`` called from pymongo counts as database time.
"""

from __future__ import annotations

import pstats
from collections import defaultdict

# (bucket, substrings of the file path); first match wins
BUCKETS = [
    ("database (pymongo, bson)", ("/pymongo/", "/bson/", "/motor/")),
    ("matching (fiftyone.utils.eval, iou)", ("/fiftyone/utils/eval/", "/fiftyone/utils/iou",
                                             "/rtree/", "/shapely/")),
    ("label objects (fiftyone labels/odm, mongoengine)",
     ("/fiftyone/core/labels", "/fiftyone/core/odm/", "/fiftyone/core/document",
      "/fiftyone/core/sample", "/fiftyone/core/fields", "/fiftyone/core/frame",
      "/mongoengine/", "/fiftyone/core/metadata")),
    ("other fiftyone (views, aggregations, set_values)", ("/fiftyone/", "/eta/")),
    ("numpy / sklearn", ("/numpy/", "/sklearn/", "/scipy/")),
    ("yolo_tl", ("/yolo_tl/",)),
    ("ultralytics / torch", ("/ultralytics/", "/torch/", "/torchvision/")),
]
OTHER = "other (stdlib, imports, harness)"


def bucket_of(filename: str) -> str:
    for name, parts in BUCKETS:
        if any(p in filename for p in parts):
            return name
    return OTHER


def bucket_profile(path: str) -> dict[str, float]:
    """Seconds of self time per bucket, builtins attributed to their callers."""
    stats = pstats.Stats(path).stats  # type: ignore[attr-defined]
    out: dict[str, float] = defaultdict(float)

    def resolve(func: tuple, depth: int = 0) -> list[tuple[str, float]]:
        """Buckets and weights for ``func``: its file, or (builtins) its callers' buckets."""
        filename = func[0]
        if filename != "~":
            return [(bucket_of(filename), 1.0)]
        callers = stats.get(func, (0, 0, 0, 0, {}))[4]
        total = sum(edge[2] for edge in callers.values())
        if depth > 3 or not callers or total <= 0:
            return [(OTHER, 1.0)]
        shares: list[tuple[str, float]] = []
        for caller, edge in callers.items():
            for name, w in resolve(caller, depth + 1):
                shares.append((name, w * edge[2] / total))
        return shares

    for func, (_, _, tottime, _, _) in stats.items():
        for name, weight in resolve(func):
            out[name] += tottime * weight
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def top_functions(path: str, n: int = 8) -> list[tuple[str, float, float]]:
    """The ``n`` functions with the most self time: (name, cumulative s, self s); a C builtin is
    named with its main caller (``io.open <- yolo_tl/formats/yolo.py:38(write_text)``)."""
    stats = pstats.Stats(path).stats  # type: ignore[attr-defined]

    def short(func: tuple) -> str:
        filename, line, name = func
        if filename == "~":
            return name
        return f"{filename.split('site-packages/')[-1].split('/work/main/')[-1]}:{line}({name})"

    out = []
    for func, (_, _, tt, ct, callers) in sorted(stats.items(), key=lambda kv: -kv[1][2]):
        if "benchmarks/" in func[0] or "cProfile" in func[2]:
            continue
        label = short(func)
        if func[0] == "~" and callers:
            label += " <- " + short(max(callers.items(), key=lambda kv: kv[1][2])[0])
        out.append((label, ct, tt))
        if len(out) >= n:
            break
    return out


class region:
    """``with region():`` around a case's timed call: profiled with cProfile when the worker was
    asked to (env ``BENCH_PROFILE`` = output path), so imports and setup stay out of the profile."""

    def __enter__(self) -> region:
        import os

        self.path = os.environ.get("BENCH_PROFILE")
        self.prof = None
        if self.path:
            import cProfile

            self.prof = cProfile.Profile()
            self.prof.enable()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.prof is not None:
            self.prof.disable()
            self.prof.dump_stats(self.path)
