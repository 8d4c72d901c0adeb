"""Benchmarks: yolo-tl against the tools users would pick instead.

``python -m benchmarks.run`` (``make bench``) generates synthetic data, runs every case in its own
subprocess several times (interleaved, so drift hits both sides), and writes
``benchmarks/RESULTS.md`` with medians, ratios and the targets of issue 6.

Modules: ``harness`` (subprocess timing, medians), ``datagen`` (tiny real JPEGs, VOC / COCO / YOLO
datasets), ``worker`` (runs one case in a fresh process), ``profiling`` (cProfile buckets),
``cases_*`` (one module per comparison), ``report`` (RESULTS.md).
"""
