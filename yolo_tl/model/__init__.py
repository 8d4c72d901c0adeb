"""Models of every kind: weights (.pt, .yaml, exported), predict, evaluate, metrics, device, class names by name."""
