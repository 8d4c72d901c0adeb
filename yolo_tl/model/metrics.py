"""Detection metrics as plain data: overall P, R, mAP50, mAP50-95 and one row per class."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ClassMetrics:
    name: str
    class_id: int
    images: int
    instances: int
    precision: float
    recall: float
    map50: float
    map50_95: float


@dataclass(frozen=True)
class DetectionMetrics:
    """Ultralytics' box metrics on one split, copied out of its ``DetMetrics`` object."""

    precision: float
    recall: float
    map50: float
    map50_95: float
    fitness: float | None = None
    per_class: list[ClassMetrics] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_ultralytics(cls, det_metrics: Any) -> DetectionMetrics:
        """Read an ``ultralytics.utils.metrics.DetMetrics`` (what ``model.val()`` returns)."""
        box = det_metrics.box
        names = dict(getattr(det_metrics, "names", {}) or {})
        nt_class = getattr(det_metrics, "nt_per_class", None)
        nt_image = getattr(det_metrics, "nt_per_image", None)
        rows = []
        for i, class_id in enumerate(box.ap_class_index):
            class_id = int(class_id)
            p, r, ap50, ap = box.class_result(i)
            rows.append(
                ClassMetrics(
                    name=str(names.get(class_id, class_id)),
                    class_id=class_id,
                    images=int(nt_image[class_id]) if nt_image is not None else 0,
                    instances=int(nt_class[class_id]) if nt_class is not None else 0,
                    precision=float(p),
                    recall=float(r),
                    map50=float(ap50),
                    map50_95=float(ap),
                )
            )
        try:
            fitness = float(det_metrics.fitness)
        except Exception:  # noqa: BLE001 - fitness is a nice-to-have
            fitness = None
        return cls(
            precision=float(box.mp),
            recall=float(box.mr),
            map50=float(box.map50),
            map50_95=float(box.map),
            fitness=fitness,
            per_class=rows,
        )
