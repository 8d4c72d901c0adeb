"""The comparisons run by ``make bench``: each builds its data, times both sides, returns table rows.

A row: what, against, the two medians, the ratio, the target and the verdict. Metrics:
``proc`` = spawn of the process to the end of its work (interpreter start and imports included,
interpreter exit and untimed cleanup excluded), ``wall`` = whole process until exit, ``inner`` =
the timed call alone, as the child reports it.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

from benchmarks import datagen, suite_analyze
from benchmarks.common import Ctx, Row, spread, verdict
from benchmarks.harness import Case, measure, run_once, set_aside, set_aside_after, worker_cmd
from benchmarks.profiling import bucket_profile, top_functions


def _profile(ctx: Ctx, case: str, label: str, **kwargs) -> None:
    """One extra run of ``case`` under cProfile; store buckets and top functions for the report."""
    if not ctx.cfg.profile:
        return
    path = ctx.work / f"{case}-{len(ctx.extras.get('profiles', []))}.prof"
    run_once(Case(case, worker_cmd(case, _profile=str(path), **kwargs)), ctx.env, 1800, ctx.log)
    ctx.extras.setdefault("profiles", []).append(
        {"label": label, "buckets": bucket_profile(str(path)), "top": top_functions(str(path))})


def prepare_voc(ctx: Ctx) -> list[Row]:
    """yolo-tl prepare (VOC) vs FiftyOne import+export, and vs the I/O floor."""
    cfg, n = ctx.cfg, ctx.cfg.voc_images
    src = ctx.data("voc")
    if not src.exists():
        ctx.extras["voc"] = datagen.write_voc(src, n)
    out = ctx.work / "out"
    ours = Case("yolo_tl.prepare", worker_cmd("ours_prepare", src=str(src), out=str(out / "o")),
                cleanup=set_aside_after(out / "o"))
    floor = Case("io floor", worker_cmd("io_floor", src=str(src), out=str(out / "f")),
                 cleanup=set_aside_after(out / "f"))
    fo = Case("fiftyone", worker_cmd("fiftyone_voc", src=str(src), out=str(out / "fo")),
              cleanup=set_aside_after(out / "fo"))
    measure([ours, floor], cfg.repeats, ctx.env, warmup=True, log=ctx.log)
    measure([fo], cfg.repeats_slow, ctx.env, log=ctx.log)
    r_fo = fo.median("proc") / ours.median("proc")
    r_floor = ours.median("seconds") / floor.median("seconds")
    info = ctx.extras["voc"]
    rows = [
        Row(f"prepare, VOC, {n:,} images / {info['boxes']:,} boxes, with <size>",
            "FiftyOne VOCDetectionDataset import + YOLOv5Dataset export (symlinks), whole process",
            "proc", ours.median("proc"), fo.median("proc"), r_fo, ">= 25x faster",
            verdict(r_fo >= 25),
            [spread(ours, "proc"), spread(fo, "proc"),
             f"FiftyOne import alone (median): {statistics.median(fo.values('import_seconds')):.2f} s"]),
        Row(f"prepare, VOC, {n:,} images (the call alone)",
            "I/O floor: read every XML, write one small file per image", "inner",
            ours.median("seconds"), floor.median("seconds"), r_floor, "<= 5x the floor",
            verdict(r_floor <= 5), [spread(ours, "seconds"), spread(floor, "seconds")]),
    ]
    if r_floor > 5 or r_fo < 25:
        _profile(ctx, "ours_prepare", f"yolo_tl.prepare, VOC {n:,} images", src=str(src),
                 out=str(out / "p"))
        set_aside(out / "p")
    return rows


def _coco(ctx: Ctx, n: int) -> tuple[Path, dict]:
    root = ctx.data(f"coco{n}")
    key = f"coco{n}"
    if key not in ctx.extras:
        ctx.extras[key] = datagen.write_coco(root, n)
    return root, ctx.extras[key]


def prepare_coco(ctx: Ctx) -> list[Row]:
    """yolo-tl prepare (COCO) vs Ultralytics convert_coco(cls91to80=False)."""
    cfg, n = ctx.cfg, ctx.cfg.coco_images
    root, info = _coco(ctx, n)
    out = ctx.work / "out"
    ours = Case("yolo_tl.prepare", worker_cmd("ours_prepare", src=info["json"],
                                              images=str(root / "images"), out=str(out / "o")),
                cleanup=set_aside_after(out / "o"))
    ul = Case("convert_coco", worker_cmd("ultralytics_coco", labels_dir=str(root / "annotations"),
                                         out=str(out / "u")), cleanup=set_aside_after(out / "u"))
    measure([ours, ul], cfg.repeats, ctx.env, warmup=True, log=ctx.log)
    r = ul.median("seconds") / ours.median("seconds")
    r_proc = ul.median("proc") / ours.median("proc")
    rows = [Row(f"prepare, COCO, {n:,} images / {info['boxes']:,} boxes (the call alone)",
                "Ultralytics convert_coco(cls91to80=False): labels only, no links, no yaml",
                "inner", ours.median("seconds"), ul.median("seconds"), r, ">= 1.5x faster",
                verdict(r >= 1.5),
                [spread(ours, "seconds"), spread(ul, "seconds"),
                 f"whole process (proc): ours {ours.median('proc'):.2f} s, convert_coco "
                 f"{ul.median('proc'):.2f} s, ratio {r_proc:.2f}x (convert_coco imports torch)"])]
    if r < 1.5:
        _profile(ctx, "ours_prepare", f"yolo_tl.prepare, COCO {n:,} images", src=info["json"],
                 images=str(root / "images"), out=str(out / "p"))
        set_aside(out / "p")
    return rows


def scaling(ctx: Ctx) -> list[Row]:
    """Time per image of yolo-tl prepare (COCO) from the smallest to the largest size; peak RSS."""
    cfg = ctx.cfg
    out = ctx.work / "out"
    base = Case("import only", worker_cmd("import_only"))
    measure([base], cfg.repeats, ctx.env, warmup=True, log=ctx.log)
    per_image, notes, rss = {}, [], {}
    for n in cfg.scaling:
        root, info = _coco(ctx, n)
        case = Case(f"prepare {n}", worker_cmd("ours_prepare", src=info["json"],
                                               images=str(root / "images"), out=str(out / "s")),
                    cleanup=set_aside_after(out / "s"))
        reps = cfg.repeats if n < max(cfg.scaling) else cfg.repeats_slow
        measure([case], reps, ctx.env, warmup=n == min(cfg.scaling), log=ctx.log)
        per_image[n] = case.median("seconds") / n
        rss[n] = (case.median("maxrss"), info["json_bytes"])
        notes.append(f"{n:,} images ({info['boxes']:,} boxes, JSON {info['json_bytes'] / 2**20:.1f}"
                     f" MiB): {case.median('seconds'):.2f} s, {per_image[n] * 1e3:.3f} ms/image, "
                     f"peak RSS {case.median('maxrss') / 2**20:.0f} MiB")
        if n == max(cfg.scaling):  # the largest set is only needed here
            set_aside(ctx.data(f"coco{n}"))
    lo, hi = min(cfg.scaling), max(cfg.scaling)
    r = per_image[hi] / per_image[lo]
    base_rss = base.median("maxrss")
    peak, json_bytes = rss[hi]
    growth = (peak - base_rss) / json_bytes
    notes.append(f"baseline process (interpreter + yolo_tl.dataset.prepare imported): "
                 f"{base_rss / 2**20:.0f} MiB")
    return [
        Row(f"prepare scaling, COCO {lo:,} -> {hi:,} images", "itself (time per image)",
            "inner", per_image[hi] * 1e3, per_image[lo] * 1e3, r,
            "within 1.3x (ms/image shown)", verdict(r <= 1.3), notes),
        Row(f"prepare peak RSS, COCO {hi:,} images", "the JSON file size",
            "peak RSS - baseline", (peak - base_rss) / 2**20, json_bytes / 2**20, growth,
            "<= 3x the JSON size (MiB shown)", verdict(growth <= 3),
            [f"raw peak RSS {peak / 2**20:.0f} MiB = {peak / json_bytes:.1f}x the JSON; minus the "
             f"{base_rss / 2**20:.0f} MiB an idle interpreter with our imports takes"]),
    ]


def _train_setup(ctx: Ctx) -> tuple[str, str]:
    data = ctx.data("yolo")
    if not data.exists():
        datagen.write_yolo(data, *ctx.cfg.train_images)
    model = ctx.work / "init.pt"
    if not model.exists():
        run_once(Case("checkpoint", worker_cmd("make_checkpoint", out=str(model))), ctx.env,
                 600, ctx.log)
    return str(model), str(data / "data.yaml")


def finetune(ctx: Ctx) -> list[Row]:
    """yolo_tl.finetune vs the same YOLO(...).train(...) call made directly (freeze backbone)."""
    cfg = ctx.cfg
    model, data = _train_setup(ctx)
    runs = ctx.work / "runs"
    common = {"epochs": cfg.train_epochs, "imgsz": cfg.train_imgsz, "batch": 16, "seed": 0,
              "workers": 2, "device": "cpu"}
    ours_args = dict(common, freeze="backbone")
    # what yolo_tl.finetune passes to model.train for these options (see yolo_tl/train.py)
    train_args = dict(common, patience=100, exist_ok=True, freeze=list(range(10)))
    ours = Case("yolo_tl.finetune", worker_cmd("ours_finetune", model=model, data=data,
                                               project=str(runs), name="o",
                                               ours_args=ours_args), cleanup=set_aside_after(runs))
    direct = Case("YOLO().train()", worker_cmd("direct_train", model=model, data=data,
                                               project=str(runs), name="d",
                                               train_args=train_args), cleanup=set_aside_after(runs))
    measure([ours, direct], cfg.repeats_train, ctx.env, log=ctx.log)
    r = ours.median("proc") / direct.median("proc")
    return [Row(f"finetune, {cfg.train_epochs} epochs, {sum(cfg.train_images)} images, imgsz "
                f"{cfg.train_imgsz}, CPU", "the same YOLO(...).train(...) call made directly",
                "proc", ours.median("proc"), direct.median("proc"), r, "wall <= 1.03x",
                verdict(r <= 1.03),
                [spread(ours, "proc"), spread(direct, "proc"),
                 f"train call alone: ours {ours.median('seconds'):.2f} s, direct "
                 f"{direct.median('seconds'):.2f} s"])]


def freeze(ctx: Ctx) -> list[Row]:
    """Train-epoch time with the backbone frozen vs nothing frozen (CPU)."""
    cfg = ctx.cfg
    model, data = _train_setup(ctx)
    runs = ctx.work / "runs"
    common = {"epochs": cfg.train_epochs, "imgsz": cfg.train_imgsz, "batch": 16, "seed": 0,
              "workers": 2, "device": "cpu"}
    train_args = dict(common, patience=100, exist_ok=True)
    cases = [Case(f"freeze {f}", worker_cmd("epoch_times", model=model, data=data,
                                           project=str(runs), name=f, freeze=f,
                                           ours_args=common, train_args=train_args),
                  cleanup=set_aside_after(runs)) for f in ("backbone", "none")]
    measure(cases, cfg.repeats_slow, ctx.env, log=ctx.log)
    # last epoch of each run: the first carries one-off warm-up (allocator, dataloader)
    last = [statistics.median(r.inner["epoch_seconds"][-1] for r in c.runs) for c in cases]
    r = last[0] / last[1]
    via = cases[0].runs[0].inner.get("via", "?")
    return [Row("finetune, freeze backbone vs none, CPU (train-epoch time)", "itself",
                "epoch", last[0], last[1], r, "report (expect <= 0.75x)", "report",
                [f"through {via}; train-epoch seconds per run: "
                 + "; ".join(f"{c.name}: " + ", ".join(f"{e:.2f}" for r_ in c.runs
                                                      for e in r_.inner['epoch_seconds'])
                             for c in cases)])]


def _ingest_setup(ctx: Ctx) -> str:
    root = ctx.data("ingest")
    if not root.exists():
        ctx.extras["ingest"] = datagen.write_ingest(root, ctx.cfg.ingest_images,
                                                    per_image=ctx.cfg.ingest_boxes)
    return str(root)


def ingest(ctx: Ctx) -> list[Row]:
    """yolo-tl's bulk ingest vs FiftyOne's tutorial loop with sample.save()."""
    cfg = ctx.cfg
    root = _ingest_setup(ctx)
    ours = Case("yolo-tl ingest", worker_cmd("ours_ingest", root=root))
    tut = Case("tutorial loop", worker_cmd("fo_tutorial_ingest", root=root))
    measure([ours, tut], cfg.repeats_slow, ctx.env, log=ctx.log)
    r = tut.median("seconds") / ours.median("seconds")
    n, labels = ours.runs[0].inner["samples"], ours.runs[0].inner["labels"]
    notes = [spread(ours, "seconds"), spread(tut, "seconds")]
    for c in (ours, tut):
        s = c.median("seconds")
        b, w = c.median("build_seconds"), c.median("write_seconds")
        split = (f"building label objects {b / s:.0%}, database calls {w / s:.0%} (phase timers)"
                 if c is tut else "raw documents in insert_many batches, no label objects "
                 "(one sample through FiftyOne's API first)")
        notes.append(f"{c.name}: {n / s:.0f} samples/s, {labels / s:.0f} labels/s; {split}")
    _profile(ctx, "ours_ingest", f"yolo-tl ingest, {cfg.profile_images} samples", root=root,
             limit=cfg.profile_images)
    _profile(ctx, "fo_tutorial_ingest", f"tutorial ingest, {cfg.profile_images} samples",
             root=root, limit=cfg.profile_images)
    return [Row(f"analyze ingest, {n:,} images, {labels:,} labels (GT + predictions)",
                "FiftyOne tutorial: add_samples(GT), then per-sample sample.save() of predictions",
                "inner", ours.median("seconds"), tut.median("seconds"), r, ">= 1.5x faster",
                verdict(r >= 1.5), notes)]


def evaluate(ctx: Ctx) -> list[Row]:
    """FiftyOne's evaluate_detections(compute_mAP=True) alone, and yolo-tl's evaluation step."""
    cfg = ctx.cfg
    root = _ingest_setup(ctx)
    lim = min(cfg.eval_images, cfg.ingest_images)
    fo = Case("evaluate_detections", worker_cmd("fo_evaluate", root=root, limit=lim))
    ours = Case("yolo-tl evaluation", worker_cmd("ours_evaluate", root=root, limit=lim))
    measure([fo, ours], cfg.repeats_eval, ctx.env, log=ctx.log)
    n = fo.runs[0].inner["samples"]
    per_k = {c.name: c.median("seconds") / n * 1000 for c in (fo, ours)}
    _profile(ctx, "ours_evaluate", f"evaluation, {cfg.profile_images} samples", root=root,
             limit=cfg.profile_images)
    return [Row(f"analyze evaluation, the first {n:,} of the ingest images (~{cfg.ingest_boxes} "
                f"GT + ~{cfg.ingest_boxes} predicted boxes each), s per 1,000 samples",
                "FiftyOne evaluate_detections(compute_mAP=True) alone", "inner",
                per_k["yolo-tl evaluation"], per_k["evaluate_detections"],
                per_k["yolo-tl evaluation"] / per_k["evaluate_detections"],
                "report s/1,000 samples (~15 s measured before)", "report",
                [spread(fo, "seconds"), spread(ours, "seconds"),
                 f"mAP (FiftyOne COCO-style): {fo.runs[0].inner['mAP']:.4f}",
                 "yolo-tl's step = its own COCO matching with FiftyOne's rules, written with "
                 "the samples in the bulk insert, run registered as FiftyOne's (insert included)"])]


def predict(ctx: Ctx) -> list[Row]:
    """yolo-tl predict vs yolo predict, both CLIs, on the same folder."""
    cfg = ctx.cfg
    folder = ctx.data("predict")
    if not folder.exists():
        datagen.write_image_folder(folder, cfg.predict_images)
    model = ctx.work / "init.pt"
    if not model.exists():
        run_once(Case("checkpoint", worker_cmd("make_checkpoint", out=str(model))), ctx.env,
                 600, ctx.log)
    bindir = Path(sys.executable).parent
    out = ctx.work / "out"
    ours = Case("yolo-tl predict", [str(bindir / "yolo-tl"), "predict", str(model), str(folder),
                                    "--out", str(out / "o"), "--imgsz", str(cfg.predict_imgsz),
                                    "--device", "cpu"])
    ul = Case("yolo predict", [str(bindir / "yolo"), "predict", f"model={model}",
                               f"source={folder}", f"imgsz={cfg.predict_imgsz}", "device=cpu",
                               f"project={out}", "name=u"], cleanup=set_aside_after(out / "u"))
    ours.cleanup = _keep_count(ctx, out / "o" / "predictions.json", set_aside_after(out / "o"))
    measure([ours, ul], cfg.repeats, ctx.env, log=ctx.log)
    r = ours.median("wall") / ul.median("wall")
    return [Row(f"predict, a folder of {cfg.predict_images} images (imgsz {cfg.predict_imgsz}, CPU)",
                "yolo predict on the same folder (CLI, whole process)", "wall",
                ours.median("wall"), ul.median("wall"), r, "wall <= 1.05x", verdict(r <= 1.05),
                [spread(ours, "wall"), spread(ul, "wall"),
                 "outputs: yolo-tl writes annotated images + one txt per image + "
                 "predictions.json; yolo predict writes annotated images only",
                 f"model: untrained yolov8n from yaml; boxes found: "
                 f"{ctx.extras.get('predict_boxes', '?')}"])]


def _keep_count(ctx: Ctx, pred_json: Path, then: Callable[[], None]) -> Callable[[], None]:
    def cleanup() -> None:
        if pred_json.is_file():
            ctx.extras["predict_boxes"] = sum(
                len(i["detections"]) for i in json.loads(pred_json.read_text())["images"])
        then()
    return cleanup


def export(ctx: Ctx) -> list[Row]:
    """PyTorch vs ONNX Runtime vs OpenVINO latency and mAP (benchmarks/bench_export.py)."""
    from benchmarks.bench_export import comparison

    return comparison(ctx)


COMPARISONS: dict[str, Callable[[Ctx], list[Row]]] = {
    "prepare_voc": prepare_voc, "prepare_coco": prepare_coco, "scaling": scaling,
    "finetune": finetune, "freeze": freeze, "ingest": ingest, "evaluate": evaluate,
    "predict": predict, "export": export,
}
FIFTYONE = {"prepare_voc", "ingest", "evaluate"}


OPT_IN: dict[str, Callable[[Ctx], list[Row]]] = {}  # run only when named in --only (they take long)


OPT_IN.update(suite_analyze.COMPARISONS)  # analyze's comparisons (~45 min)
FIFTYONE.update(suite_analyze.COMPARISONS)
