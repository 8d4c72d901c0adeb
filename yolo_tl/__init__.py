"""yolo-tl: transfer learning for YOLO object detection.

Public Python API (imported lazily, so ``import yolo_tl`` and ``yolo-tl --help`` stay fast):

- ``prepare(source, out, ...) -> PrepareReport``: VOC / COCO -> Ultralytics YOLO dataset
- ``finetune(data_yaml, options=None, **kwargs) -> FinetuneResult`` (options: ``FinetuneOptions``),
  ``sweep(data_yaml, tries, ...)`` (one run per recipe, ranked),
  ``convert_classic_yolov5(old, new, ...)`` (an ultralytics/yolov5 checkpoint -> an Ultralytics one)
- ``evaluate(weights, data_yaml, ...) -> EvaluationResult``, ``predict(weights, source, ...) -> PredictionReport``
- ``export(weights, format=..., data=...) -> ExportReport``: ONNX / OpenVINO / TorchScript + parity proof
- ``analyze(data_yaml, options=None, **kwargs) -> AnalysisReport`` (options: ``AnalyzeOptions``): FiftyOne
  dataset + evaluation; ``launch_app(name, ...)``, ``list_datasets()``, ``delete_dataset(name)``
- ``fix_labels(name, out, accept_above=None) -> FixLabelsReport``: a corrected YOLO dataset from the label
  suggestions of an analysis that were accepted (tag ``accept`` in the App, or scored above ``accept_above``)

The package is typed (``py.typed``).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_API = {
    "prepare": "yolo_tl.dataset.prepare",
    "PrepareReport": "yolo_tl.dataset.prepare",
    "finetune": "yolo_tl.training.finetune",
    "FinetuneOptions": "yolo_tl.training.options",
    "FinetuneResult": "yolo_tl.training.finetune",
    "sweep": "yolo_tl.training.sweep",
    "convert_classic_yolov5": "yolo_tl.model.convert",
    "evaluate": "yolo_tl.model.evaluate",
    "EvaluationResult": "yolo_tl.model.evaluate",
    "predict": "yolo_tl.model.predict",
    "PredictionReport": "yolo_tl.model.predict",
    "export": "yolo_tl.deploy.export",
    "ExportReport": "yolo_tl.deploy.export",
    "analyze": "yolo_tl.analysis.analyze",
    "launch_app": "yolo_tl.analysis.app.launch",
    "fix_labels": "yolo_tl.analysis.fix_labels",
    "FixLabelsReport": "yolo_tl.analysis.fix_labels",
    "AnalyzeOptions": "yolo_tl.analysis.report",
    "AnalysisReport": "yolo_tl.analysis.report",
    "list_datasets": "yolo_tl.analysis.store.our_datasets",
    "delete_dataset": "yolo_tl.analysis.store.our_datasets",
    "YoloTLError": "yolo_tl.errors",
}

__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'yolo_tl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
