"""Pure numpy metrics: COCO evaluation with FiftyOne's rules, mAP steps, error types, plots (no FiftyOne)."""
