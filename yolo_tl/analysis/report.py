"""What ``analyze`` takes and returns: ``AnalyzeOptions`` and the nested ``AnalysisReport``.

The report groups its figures the way a reader looks for them: the resolved options, the totals,
one row per class, the two mAPs and the measured steps between them, the confusion matrix, TIDE's
error types and what each costs, the saved views, the figures, the time per phase and what was
noticed about the split's images.
``to_dict()`` is the JSON that ``yolo-tl analyze --json`` prints (the same nesting).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from yolo_tl.options import Options, option


@dataclass(frozen=True)
class AnalyzeOptions(Options):
    """What ``analyze`` does, as plain values (the report carries them, resolved)."""

    data: str | None = option(None, "data.yaml of the prepared dataset.", (str,), nullable=True)
    weights: str | None = option(None, "Detection checkpoint (.pt), or a model from yolo-tl export (best.onnx, "
                                 "best_openvino_model/).", (str,), nullable=True)
    split: str = option("val", "Split to analyse: train, val or test.", (str,))
    name: str | None = option(None, "FiftyOne dataset name (default: derived from data + weights, stable across "
                              "re-runs; a re-run replaces it).", (str,), nullable=True)
    conf: float = option(0.001, "Lowest prediction confidence kept (0.001, as Ultralytics validates).", (float,))
    iou: float = option(0.5, "IoU for a prediction to match a GT box.", (float,))
    imgsz: int = option(640, "Inference image size.", (int,))
    batch: int = option(16, "Inference batch size.", (int,))
    high_conf: float = option(0.5, "A false positive at or above this is 'confident'.", (float,))
    show_conf: float = option(0.25, "The saved views and the App show predictions at or above this (all down to "
                              "conf count in the metrics).", (float,))
    worst_k: int = option(50, "Images in the worst_samples view.", (int,))
    device: str | None = option(None, "cpu, 0, 0,1 ... (default: auto).", (str,), nullable=True)
    compare_ultralytics: bool = option(False, "Also run Ultralytics' validator (a second inference pass) for its "
                                       "own mAP.", (bool,))
    plots_dir: str | None = option(None, "Folder for the PR curves and the confusion matrix as PNG (None: not "
                                   "written).", (str,), nullable=True)
    folds: int | None = option(None, "Out-of-fold predictions: K models trained with the weights' recipe (their "
                               "run.json), each on K-1 folds of the split, each predicting its held-out fold.",
                               (int,), nullable=True)
    fold_epochs: int | None = option(None, "Epochs of each fold run (default: the recipe's).", (int,), nullable=True)
    folds_dir: str | None = option(None, "Folder of the fold runs (default: runs/folds/<name>_k<K>).", (str,),
                                   nullable=True)
    ray_address: str | None = option(None, "Train the folds as Ray Tune trials on this cluster (or RAY_ADDRESS).",
                                     (str,), nullable=True)
    gpus_per_fold: float = option(0.0, "Ray: GPUs each fold run reserves.", (float,))

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, ok, wanted in (("conf", 0.0 <= self.conf < 1.0, "[0, 1)"), ("iou", 0.0 < self.iou < 1.0, "(0, 1)"),
                                 ("show_conf", 0.0 <= self.show_conf <= 1.0, "[0, 1]"),
                                 ("high_conf", 0.0 <= self.high_conf <= 1.0, "[0, 1]")):
            if not ok:
                raise self.error(f"must be in {wanted}, got {getattr(self, name)}", field=name)
        for name in ("imgsz", "batch", "worst_k"):
            if getattr(self, name) < 1:
                raise self.error(f"must be >= 1, got {getattr(self, name)}", field=name)
        self._check_folds()

    def _check_folds(self) -> None:
        if self.folds is None:
            for name in ("fold_epochs", "folds_dir", "ray_address"):
                if getattr(self, name) is not None:
                    raise self.error("only used with folds", field=name)
            return
        if self.folds < 2:
            raise self.error(f"must be >= 2, got {self.folds}", field="folds")
        if self.fold_epochs is not None and self.fold_epochs < 1:
            raise self.error(f"must be >= 1, got {self.fold_epochs}", field="fold_epochs")
        if self.gpus_per_fold < 0:
            raise self.error(f"must be >= 0, got {self.gpus_per_fold}", field="gpus_per_fold")
        if self.compare_ultralytics:
            raise self.error("Ultralytics' validator evaluates the analysed weights, not the out-of-fold "
                             "predictions; run it without folds", field="compare_ultralytics")


@dataclass
class ClassRow:
    """Per-class figures. Precision / recall count every prediction above ``conf``."""

    name: str
    gt: int
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    ap: float | None  # FiftyOne COCO-style AP@[.5:.95], None when the class has no GT
    ultralytics_ap: float | None = None  # Ultralytics AP50-95 for the class (compare_ultralytics)
    ap_small: float | None = None  # COCO sizes: area < 32^2, 32^2..96^2, > 96^2 pixels
    ap_medium: float | None = None
    ap_large: float | None = None


@dataclass
class Totals:
    """Counts over the whole split (tp / fp / fn at ``iou``, every prediction down to ``conf``)."""

    samples: int
    gt_boxes: int
    predictions: int
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0


@dataclass
class Maps:
    """Both mAP50-95s, and the measured rules that take FiftyOne's to Ultralytics'."""

    fiftyone_map50_95: float | None  # COCO-style AP@[.5:.95] by FiftyOne's rules, on the stored predictions
    ultralytics_map50_95: float | None = None  # mAP50-95 of Ultralytics' own validation pass (compare_ultralytics)
    ultralytics_map50: float | None = None
    ultralytics_val_run: bool = False
    why_differ: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)  # map_steps.Step: FiftyOne's mAP -> Ultralytics'
    by_size: dict[str, float | None] = field(default_factory=dict)  # all / small / medium / large


@dataclass
class Views:
    """The saved views (name -> samples) and the one the App opens on."""

    counts: dict[str, int] = field(default_factory=dict)
    default: str = ""


@dataclass
class SplitFacts:
    """What was noticed about the split's images."""

    is_train: bool = False  # every image of the split is also a training image
    train_overlap: float = 0.0  # share of the split's images that are in the train split
    unreadable: list[str] = field(default_factory=list)  # images left out: their pixels do not decode


@dataclass
class AnalysisReport:
    """The FiftyOne dataset ``name`` and what its evaluation found."""

    name: str
    url_path: str  # the dataset's page in the App
    options: AnalyzeOptions  # as run: data and weights resolved, name chosen
    totals: Totals
    maps: Maps
    classes: list[ClassRow] = field(default_factory=list)
    # {"labels", "rows", "columns", "iou", "min_conf", "matrix"}: rows are GT classes + background
    confusion: dict[str, Any] = field(default_factory=dict)
    views: Views = field(default_factory=Views)
    plots: dict[str, str] = field(default_factory=dict)  # figure -> PNG path
    seconds: dict[str, float] = field(default_factory=dict)  # read, predict, ingest_evaluate, views, ...
    split: SplitFacts = field(default_factory=SplitFacts)
    # TIDE's error types: ErrorBreakdown.to_dict() (ap50, dap per type, counts; overall / per_class / per_size)
    # plus "reading" (one sentence) and "views" (type -> saved view)
    error_types: dict[str, Any] = field(default_factory=dict)
    evaluation: str = "yolo-tl"  # "yolo-tl" (registered as FiftyOne's run) or "fiftyone" (fallback)
    # likely label mistakes: counts / likely (score >= 0.5) per kind, samples, min_score, top, note
    label_issues: dict[str, Any] = field(default_factory=dict)
    # with folds: the predictions are out-of-fold (folds.FoldPlan.to_dict: k, project, runs, ran, skipped)
    folds: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
