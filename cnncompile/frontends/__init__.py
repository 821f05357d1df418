"""Frontends: ONNX models (and later the Python DSL) into the IR."""
