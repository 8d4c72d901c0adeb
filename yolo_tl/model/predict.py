"""predict: run a detector on an image, a folder or a glob; write annotated images, YOLO txt, JSON.

Layout of ``out``::

    out/images/<stem>.jpg       annotated image
    out/labels/<stem>.txt       one line per box: cls cx cy w h conf (normalised, like Ultralytics)
    out/predictions.json        every image with its boxes (pixels and normalised), and class counts

Files are written whole (never appended), so running twice gives the same output.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yolo_tl._upstream.ultralytics import offline_guards
from yolo_tl.dataset.formats.safe_paths import IMAGE_SUFFIXES
from yolo_tl.errors import ImageError, TrainingError
from yolo_tl.files import write_text_atomic
from yolo_tl.model.device import check_device
from yolo_tl.model.runtime import no_autoinstall
from yolo_tl.model.weights import load_detector

PathLike = str | Path
log = logging.getLogger(__name__)


@dataclass
class PredictionReport:
    out: Path
    images: int
    boxes: int
    counts: dict[str, int]
    predictions_json: Path
    names: dict[int, str] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)  # inputs whose pixels do not decode: no output

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "images": self.images, "boxes": self.boxes, "counts": self.counts,
                "predictions_json": str(self.predictions_json), "unreadable": self.unreadable}


def list_images(source: PathLike) -> list[Path]:
    """An image file, a folder (its images, not recursive) or a glob pattern, in sorted order."""
    text = str(source)
    path = Path(text).expanduser()
    if path.is_file():
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise ImageError("not an image file (by extension)", path=path)
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ImageError("no images in this folder", path=path)
        return files
    if any(ch in text for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(os.path.expanduser(text), recursive=True)
                       if Path(p).is_file() and Path(p).suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ImageError("the pattern matches no images", path=text)
        return files
    raise ImageError("not found (expected an image, a folder or a glob)", path=path)


def predict(
    weights: PathLike,
    source: PathLike,
    *,
    out: PathLike = "runs/predict",
    conf: float = 0.25,
    iou: float = 0.7,
    imgsz: int = 640,
    device: str | None = None,
    save_images: bool = True,
) -> PredictionReport:
    """Detect objects in ``source`` with ``weights``; write annotated images, txt and JSON to ``out``.

    ``weights`` is a .pt checkpoint or a model made by ``yolo-tl export`` (its class names come from
    the export's metadata; a fixed-size export runs at its own input size).
    """
    if not 0.0 <= conf <= 1.0:
        raise TrainingError(f"must be between 0 and 1, got {conf}", field="conf")
    files = list_images(source)
    dev = check_device(device)
    model, resolved = load_detector(weights)
    import cv2

    names = dict(resolved.names)
    if resolved.imgsz is not None and resolved.imgsz != (imgsz, imgsz):
        log.warning("%s was exported for %sx%s input: predicting at that size, not %s",
                    resolved.path.name, *resolved.imgsz, imgsz)
    out_dir = Path(out).expanduser().resolve()
    (out_dir / "labels").mkdir(parents=True, exist_ok=True)
    if save_images:
        (out_dir / "images").mkdir(parents=True, exist_ok=True)
    stems = _unique_stems(files)
    counts: Counter = Counter()
    # batches of 32, as the list source used to give; Ultralytics' file loader defaults to 1 (slower)
    args: dict[str, Any] = {"conf": conf, "iou": iou, "imgsz": imgsz, "batch": 32, "verbose": False}
    if dev is not None:
        args["device"] = dev
    unreadable: list[str] = []
    by_image: dict[Path, dict[str, Any]] = {}
    with offline_guards(), no_autoinstall():
        for path, result in results_by_path(model, files, chunk=32, **args):
            if result is None:
                log.warning("%s: unreadable image (its pixels do not decode): no predictions", path)
                unreadable.append(str(path))
                by_image[path] = {"image": str(path.absolute()), "unreadable": True, "detections": []}
                continue
            stem = stems[path]
            record = _record(path, result, names)
            lines = [
                f"{d['class_id']} {' '.join(f'{v:.6f}' for v in d['xywhn'])} {d['confidence']:.6f}"
                for d in record["detections"]
            ]
            label_path = out_dir / "labels" / f"{stem}.txt"
            label_path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
            record["labels"] = str(label_path)
            if save_images:
                image_path = out_dir / "images" / f"{stem}.jpg"
                if not cv2.imwrite(str(image_path), result.plot()):
                    raise ImageError("could not write annotated image", path=image_path)
                record["annotated"] = str(image_path)
            counts.update(d["class_name"] for d in record["detections"])
            by_image[path] = record
    records = [by_image[p] for p in files]  # the input's order, whatever order the results came in
    ordered = {names[i]: counts.get(names[i], 0) for i in sorted(names)}
    json_path = out_dir / "predictions.json"
    used = resolved.imgsz[0] if resolved.imgsz else imgsz  # a fixed-size export runs at its own size
    payload = {"weights": str(resolved.path), "source": str(source), "conf": conf, "iou": iou, "imgsz": used,
               "names": names, "counts": ordered, "images": records, "unreadable": unreadable}
    write_text_atomic(json_path, json.dumps(payload, indent=2) + "\n")
    return PredictionReport(out_dir, len(records) - len(unreadable), sum(counts.values()), ordered, json_path,
                            names, unreadable)


def results_by_path(model: Any, images: Sequence[Path], *, chunk: int = 256,
                    **kwargs: Any) -> Iterator[tuple[Path, Any]]:
    """Ultralytics' results for ``images``, each paired with its image by path, never by position.

    Each chunk of images goes to ``model.predict`` as a list file, so Ultralytics' file loader
    (``LoadImagesAndVideos``) reads them with cv2, as its validator does, in batches. That loader
    sorts the list and skips, with a warning, a file whose pixels do not decode; a Python list of
    paths would instead be decoded by Pillow all at once, and one such file would end the run with
    a traceback. Yields ``(image, result)`` as results arrive, then ``(image, None)`` for every image
    of the chunk Ultralytics could not read.
    """
    with tempfile.TemporaryDirectory(prefix="yolo-tl-predict-") as tmp:
        listing = Path(tmp) / "images.txt"
        for start in range(0, len(images), chunk):
            part = [Path(p) for p in images[start:start + chunk]]
            keys = {str(p.absolute()): p for p in part}  # the path the loader reports
            if any("\n" in key or "\r" in key for key in keys):
                bad = next(k for k in keys if "\n" in k or "\r" in k)
                raise ImageError("a file name with a line break cannot be given to Ultralytics", path=bad)
            # a BOM: Ultralytics then reads the list as UTF-8 whatever the locale
            try:
                listing.write_text("\ufeff" + "".join(f"{key}\n" for key in keys), encoding="utf-8")
            except OSError as err:  # a full temporary folder: say which file
                err.filename = err.filename or str(listing)
                raise
            seen = set()
            for result in model.predict(source=str(listing), stream=True, **kwargs):
                image = keys.get(str(Path(result.path).absolute()))
                if image is None:  # not one of ours: never attach it to a neighbour
                    raise ImageError("Ultralytics returned a result for a file it was not given",
                                     path=result.path)
                seen.add(image)
                yield image, result
            for image in part:
                if image not in seen:
                    yield image, None


def _record(path: Path, result: Any, names: dict[int, str]) -> dict[str, Any]:
    h, w = result.orig_shape
    detections = []
    boxes = result.boxes
    if boxes is not None and len(boxes):
        for xyxy, xywhn, cls, score in zip(boxes.xyxy.tolist(), boxes.xywhn.tolist(), boxes.cls.tolist(),
                                           boxes.conf.tolist()):
            detections.append({
                "class_id": int(cls), "class_name": names.get(int(cls), str(int(cls))),
                "confidence": round(float(score), 6),
                "xyxy": [round(float(v), 2) for v in xyxy], "xywhn": [round(float(v), 6) for v in xywhn],
            })
    return {"image": str(path.absolute()), "width": int(w), "height": int(h), "detections": detections}


def _unique_stems(files: list[Path]) -> dict[Path, str]:
    """Output names: the image stem, with a numeric suffix when two inputs share one (globs)."""
    seen: Counter = Counter()
    stems = {}
    for path in files:
        seen[path.stem] += 1
        stems[path] = path.stem if seen[path.stem] == 1 else f"{path.stem}_{seen[path.stem]}"
    return stems
