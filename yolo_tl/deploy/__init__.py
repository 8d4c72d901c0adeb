"""export to ONNX / OpenVINO / TorchScript and the parity checks against the PyTorch model."""
