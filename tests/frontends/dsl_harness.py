"""Export a built graph to ONNX and hold the reference to onnxruntime on that file.

onnxruntime is the independent oracle; the reference runs in float64 (the gold
standard) and the error is the numerical policy's: max|ort - ref| / max|ref|.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
import onnxruntime as ort

import cnncompile
from cnncompile.ir.types import DType
from cnncompile.numerics import relative_error, tolerance


def random_inputs(graph: cnncompile.Graph, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {v.name: rng.standard_normal(v.type.shape).astype(np.float32) for v in graph.inputs}


def ort_error(graph: cnncompile.Graph, model: onnx.ModelProto | str | os.PathLike, seed: int = 0) -> float:
    """The largest error over the graph's outputs, ORT on `model` (a proto or a file) against the float64 reference."""
    proto = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))
    onnx.checker.check_model(proto, full_check=True)
    inputs = random_inputs(graph, seed)
    reference = cnncompile.run_reference(graph, inputs, dtype=DType.FLOAT64)
    theirs = run_ort(proto if isinstance(model, onnx.ModelProto) else str(model), inputs)
    assert len(theirs) == len(graph.outputs)
    return max(relative_error(t, reference[v.name]) for v, t in zip(graph.outputs, theirs))


def run_ort(model: onnx.ModelProto | str, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """onnxruntime on one thread; a file is handed over by path, sparing a copy of large weights."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"]).run(None, inputs)


def assert_matches_ort(graph: cnncompile.Graph, seed: int = 0, tol: float = tolerance(DType.FLOAT32)) -> float:
    error = ort_error(graph, cnncompile.to_onnx(graph), seed)
    assert error <= tol, f"{graph.name}: onnxruntime differs from the float64 reference by {error:.3g} > {tol}"
    return error
