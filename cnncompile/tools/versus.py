"""What `validate --vs` compares the compiled model with: a peer that runs the same model on the same inputs.

    reference     the float64 NumPy reference of the model as imported (the gold standard)
    reference32   the same in float32
    onnxruntime   onnxruntime's CPU session (all graph optimizations) on the ONNX model
    openvino      OpenVINO on the CPU, at INFERENCE_PRECISION_HINT f32 unless --precision asks for f16/bf16
    DIR           a saved artifact (`cnncompile compile -o DIR`), run as it was built

onnxruntime and OpenVINO are imported only when asked for; an ONNX file is given to them as it is,
a zoo model as the exporter writes it.
"""

from __future__ import annotations

import enum
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import onnx

from cnncompile.backends.reference import run_reference
from cnncompile.errors import CnnCompileError, ModelError
from cnncompile.ir.graph import Graph
from cnncompile.ir.types import DType

Runner = Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]


class PeerKind(enum.Enum):
    REFERENCE = "reference"
    REFERENCE32 = "reference32"
    ONNXRUNTIME = "onnxruntime"
    OPENVINO = "openvino"
    ARTIFACT = "artifact"


# OpenVINO's INFERENCE_PRECISION_HINT by --precision; `auto` leaves OpenVINO its own default.
_OPENVINO_HINT = {"fp32": "f32", "fp16": "f16", "bf16": "bf16"}
_PACKAGE = {PeerKind.ONNXRUNTIME: "onnxruntime", PeerKind.OPENVINO: "openvino"}


@dataclass(frozen=True)
class Peer:
    """A parsed --vs: the kind, and the artifact directory for ARTIFACT."""

    kind: PeerKind
    directory: str | None = None

    @classmethod
    def parse(cls, text: str) -> Peer:
        """One of PeerKind's names, or a directory holding an artifact."""
        from cnncompile.backends.tvm.artifact import is_artifact

        try:
            kind = PeerKind(text)
        except ValueError:
            kind = None
        if kind is not None and kind is not PeerKind.ARTIFACT:
            return cls(kind)
        if is_artifact(text):
            return cls(PeerKind.ARTIFACT, text)
        raise CnnCompileError(f"--vs '{text}': choose reference, reference32, onnxruntime, openvino, or a directory "
                              "that `cnncompile compile -o DIR` wrote")

    def __str__(self) -> str:
        return self.directory if self.kind is PeerKind.ARTIFACT else self.kind.value


def _require(kind: PeerKind) -> None:
    package = _PACKAGE[kind]
    if importlib.util.find_spec(package) is None:
        raise CnnCompileError(f"--vs {kind.value}: {package} is not installed here; `pip install {package}`, "
                              "or compare with --vs reference")


def peer_runner(peer: Peer, graph: Graph, onnx_model: Callable[[], onnx.ModelProto], precision: str = "fp32",
                memory_limit: int | str | None = None) -> Runner:
    """A function from input arrays to the peer's outputs by name. `graph` is the model as imported (before
    any pass); `onnx_model` makes its ONNX form, only for the peers that need it."""
    if peer.kind is PeerKind.REFERENCE:
        return lambda inputs: run_reference(graph, inputs, dtype=DType.FLOAT64)
    if peer.kind is PeerKind.REFERENCE32:
        return lambda inputs: run_reference(graph, inputs, dtype=DType.FLOAT32)
    if peer.kind is PeerKind.ARTIFACT:
        return _artifact(peer.directory, graph, memory_limit)
    _require(peer.kind)
    if peer.kind is PeerKind.ONNXRUNTIME:
        from cnncompile.tools.peers import onnxruntime_session

        session = onnxruntime_session(onnx_model())
        names = [o.name for o in session.get_outputs()]
        return lambda inputs: dict(zip(names, session.run(names, dict(inputs))))
    return _openvino(onnx_model(), precision)


def _openvino(model: onnx.ModelProto, precision: str) -> Runner:
    import openvino as ov

    core = ov.Core()
    hint = _OPENVINO_HINT.get(precision)
    config = {"INFERENCE_PRECISION_HINT": hint} if hint else {}
    compiled = core.compile_model(core.read_model(model.SerializeToString(), b""), "CPU", config)
    names = [o.get_any_name() for o in compiled.outputs]

    def run(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = compiled.create_infer_request().infer(dict(inputs))
        return {name: np.asarray(results[output]) for name, output in zip(names, compiled.outputs)}

    return run


def _artifact(directory: str, graph: Graph, memory_limit: int | str | None) -> Runner:
    """The artifact must take the model's inputs: the same names, shapes and element types."""
    from cnncompile.api import load

    model = load(directory, memory_limit)
    theirs = {s.name: (tuple(s.shape), str(s.dtype)) for s in model.inputs}
    ours = {v.name: (tuple(v.type.shape), v.type.dtype.value) for v in graph.inputs}
    if theirs != ours:
        raise ModelError(f"--vs {directory}: the artifact takes {theirs}, but the model takes {ours}; compare builds "
                         "of the same model at the same input shapes")
    return model.run
