"""onnxruntime set up as the peer every timing in cnncompile is compared against.

Two threads, all graph optimizations, and by default no spinning: after a run, an
onnxruntime session's threads busy-wait for ~40 ms (measured here), stealing the cores of
whatever runs next in the same process, the contender it is being compared with included.
A benchmark that lets them spin must leave them that long to go idle.
"""

from __future__ import annotations

import onnx


def onnxruntime_session(model: onnx.ModelProto, threads: int = 2, spinning: bool = False):
    """An onnxruntime CPU session for `model` (onnxruntime is a test extra: import it lazily)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def openvino_model(model: onnx.ModelProto, threads: int = 2, hint: str | None = None):
    """An OpenVINO CPU compiled model for `model` (a test extra: imported lazily): at INFERENCE_PRECISION_HINT
    `hint` (f32, bf16, f16), or with None as OpenVINO ships, which is bf16 on a CPU with AVX512_BF16 or AMX."""
    import openvino as ov

    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": threads, **({"INFERENCE_PRECISION_HINT": hint} if hint else {})}
    return core.compile_model(core.read_model(model.SerializeToString(), b""), "CPU", config)
