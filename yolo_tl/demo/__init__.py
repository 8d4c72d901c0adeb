"""The newcomer's tools: the bundled sample and `yolo-tl demo`."""
