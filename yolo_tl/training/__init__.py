"""finetune, evaluate, predict: Ultralytics training and inference (imports nothing from analysis/ or cli/)."""
