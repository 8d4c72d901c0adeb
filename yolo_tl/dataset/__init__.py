"""prepare: Pascal VOC / COCO annotations -> an Ultralytics YOLO dataset (imports nothing from training/, analysis/, cli/)."""
