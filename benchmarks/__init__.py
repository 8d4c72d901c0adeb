"""Benchmarks: yolo-tl against the tools users would pick instead.

``python -m benchmarks.run`` (``make bench``) generates synthetic data, runs every case in its own
subprocess several times (interleaved, so drift hits both sides), and writes
``benchmarks/RESULTS.md`` with medians, ratios and their targets.

Modules: ``common`` (Config, Row, Ctx: the types every module shares), ``harness`` (subprocess timing,
medians), ``datagen`` (tiny real JPEGs, VOC / COCO / YOLO datasets), ``suite`` / ``suite_analyze`` (the
comparisons of ``make bench``), ``worker`` (runs one case in a fresh process) and the ``payload_*``
modules it runs, ``profiling`` (cProfile buckets), ``report`` (RESULTS.md). Standalone benchmarks,
each ``python -m benchmarks.bench_NAME`` with its own RESULTS_NAME.md: ``bench_scale``,
``bench_export``, ``bench_transfer``, ``bench_keep_classes_gap``.
"""
