"""prepare: Pascal VOC / COCO annotations -> an Ultralytics YOLO dataset.

Imports nothing from model/, training/, deploy/, analysis/ or cli/ (tests/test_layout.py checks it).
"""
