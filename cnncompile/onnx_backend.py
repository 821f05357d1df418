"""cnncompile as an `onnx.backend`: code written against onnx.backend.base, ONNX's own
conformance runner included, drives cnncompile through it.

The IR is static: every shape is bound, and the inputs cnncompile keeps as attributes
(Reshape's shape, Pad's pads, Resize's scales, ...) must be known at compile time. An
ONNX model may leave both to run time, so a prepared model compiles once per distinct
binding: the shapes of inputs with dynamic dims, and the values of the graph inputs that
reach an attribute input. A model with neither compiles at `prepare`, where its errors
belong.

Two engines: the NumPy reference (the default, on "CPU", in float64 — the gold standard —
or float32) and TVM (`engine="tvm"`: "CPU" compiles for LLVM, "CUDA" for the visible GPU,
each binding compiled once with the chosen pipeline). Each result is cast back to the
element type the model declares for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.backend.base import Backend, BackendRep, Device, DeviceType, namedtupledict

from cnncompile.backends.reference import run_reference
from cnncompile.backends.reference.interpreter import COMPUTE_DTYPES
from cnncompile.errors import CnnCompileError, ModelError, UnsupportedError
from cnncompile.frontends.onnx import load_onnx
from cnncompile.ir.graph import Graph
from cnncompile.ir.types import DType
from cnncompile.ops import lookup

ENGINES = ("reference", "tvm")

Inputs = Sequence[np.ndarray] | Mapping[str, np.ndarray] | np.ndarray
BindingKey = tuple[tuple[Any, ...], ...]


def compile_time_inputs(graph: onnx.GraphProto) -> list[str]:
    """Graph inputs whose *values* the IR needs at compile time.

    Walks back from every ONNX input that an op keeps as an attribute to the graph inputs
    it is computed from. Shape-like (value-independent) ops stop the walk: Shape needs
    its operand's dims, which the input shapes bind, not its values.
    """
    initialized = {init.name for init in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output if out}
    needed: list[str] = []
    for node in graph.node:
        op = lookup(node.op_type) if node.domain in ("", "ai.onnx") else None
        if op is not None:
            needed += [node.input[p] for p in op.onnx_inputs_as_attrs if p < len(node.input) and node.input[p]]
    seen: set[str] = set()
    found: list[str] = []
    while needed:
        name = needed.pop()
        if name in seen or name in initialized:
            continue
        seen.add(name)
        node = producer.get(name)
        if node is None:
            found.append(name)
            continue
        op = lookup(node.op_type)
        if op is None or not op.value_independent:
            needed += [n for n in node.input if n]
    graph_inputs = [i.name for i in graph.input]
    return [name for name in graph_inputs if name in found]


def _has_dynamic_dims(info: onnx.ValueInfoProto) -> bool:
    return any(not dim.HasField("dim_value") for dim in info.type.tensor_type.shape.dim)


def _freeze(model: onnx.ModelProto, values: Mapping[str, np.ndarray]) -> onnx.ModelProto:
    """A copy of `model` in which the named graph inputs have initializers holding `values`.

    The inputs stay listed, as IR versions before 4 require of every initializer; an
    input with an initializer imports as a constant.
    """
    frozen = onnx.ModelProto()
    frozen.CopyFrom(model)
    frozen.graph.initializer.extend(numpy_helper.from_array(np.asarray(a), name) for name, a in values.items())
    return frozen


class CnnCompileRep(BackendRep):
    """A prepared model: its imported graph(s), run by the reference or compiled by TVM."""

    def __init__(self, model: onnx.ModelProto, dtype: str, target: str | None = None, pipeline: str = "O3"):
        self.model = model
        self.dtype = dtype
        self.target = target
        self.pipeline = pipeline
        self.compiled: dict[BindingKey, Any] = {}
        initialized = {init.name for init in model.graph.initializer}
        feedable = [info for info in model.graph.input if info.name not in initialized]
        self.input_names = [info.name for info in feedable]
        self.output_names = [info.name for info in model.graph.output]
        self.dynamic = [info.name for info in feedable if _has_dynamic_dims(info)]
        self.frozen = compile_time_inputs(model.graph)
        # The graphs compiled so far, one per binding of dynamic dims and compile-time values.
        self.graphs: dict[BindingKey, Graph] = {}
        if not self.dynamic and not self.frozen:
            self.graphs[()] = load_onnx(model)

    def run(self, inputs: Inputs, **kwargs: Any) -> tuple[np.ndarray, ...]:
        """Run on `inputs` (positional in the model's input order, or by name); outputs in the model's order."""
        if kwargs:
            raise TypeError(f"run() takes no keyword arguments, got {sorted(kwargs)}")
        feeds = self._feeds(inputs)
        key = self._key(feeds)
        graph = self._graph_for(key, feeds)
        graph_feeds = {v.name: feeds[v.name] for v in graph.inputs}
        if self.target is None:
            results = run_reference(graph, graph_feeds, DType(self.dtype))
        else:
            if key not in self.compiled:
                from cnncompile.api import compile as compile_model

                self.compiled[key] = compile_model(graph, self.target, self.pipeline)
            results = self.compiled[key].run(graph_feeds)
        outputs = [np.asarray(results[v.name]).astype(v.type.dtype.numpy, copy=False) for v in graph.outputs]
        return namedtupledict("Outputs", self.output_names)(*outputs)

    def _feeds(self, inputs: Inputs) -> dict[str, np.ndarray]:
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        if isinstance(inputs, Mapping):
            feeds = {name: np.asarray(a) for name, a in inputs.items()}
        else:
            if len(inputs) != len(self.input_names):
                raise ModelError(f"the model takes {len(self.input_names)} input(s) ({', '.join(self.input_names)}), "
                                 f"got {len(inputs)}")
            feeds = {name: np.asarray(a) for name, a in zip(self.input_names, inputs, strict=True)}
        missing = [name for name in self.input_names if name not in feeds]
        unknown = [name for name in feeds if name not in self.input_names]
        if missing or unknown:
            problems = [f"{label} input(s) {', '.join(names)}" for label, names in
                        (("missing", missing), ("unknown", unknown)) if names]
            raise ModelError(f"{'; '.join(problems)}; the model takes {', '.join(self.input_names)}")
        return feeds

    def _key(self, feeds: Mapping[str, np.ndarray]) -> BindingKey:
        """What decides the graph: the dynamic dims' sizes and the compile-time inputs' values."""
        return tuple((name, feeds[name].shape) for name in self.dynamic) + tuple(
            (name, feeds[name].dtype.str, feeds[name].shape, feeds[name].tobytes()) for name in self.frozen
        )

    def _graph_for(self, key: BindingKey, feeds: Mapping[str, np.ndarray]) -> Graph:
        """The graph imported for this binding."""
        if key not in self.graphs:
            model = _freeze(self.model, {name: feeds[name] for name in self.frozen})
            shapes = {name: feeds[name].shape for name in self.dynamic if name not in self.frozen}
            self.graphs[key] = load_onnx(model, input_shapes=shapes)
        return self.graphs[key]


def _device_type(device: str) -> DeviceType | None:
    try:
        return Device(device).type
    except (AttributeError, ValueError):  # an unknown device kind, a non-integer device id
        return None


class CnnCompileBackend(Backend):
    """onnx.backend.base.Backend over cnncompile's reference backend, or TVM with engine="tvm"."""

    @classmethod
    def supports_device(cls, device: str) -> bool:
        kind = _device_type(device)
        if kind == DeviceType.CUDA:
            from cnncompile.backends.tvm.target import gpu_visible

            return gpu_visible()
        return kind == DeviceType.CPU

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", *, dtype: str = "float64",
                engine: str = "reference", pipeline: str = "O3") -> CnnCompileRep:
        """Import (and, with static bindings, compile) `model` for repeated runs on `device`."""
        if engine not in ENGINES:
            raise CnnCompileError(f"engine must be one of {', '.join(ENGINES)}, got '{engine}'")
        if not cls.supports_device(device):
            raise UnsupportedError(f"device '{device}' is not supported here: 'CPU' runs the reference or TVM's "
                                   "LLVM build; 'CUDA' needs engine='tvm' and a visible CUDA GPU")
        if _device_type(device) == DeviceType.CUDA and engine != "tvm":
            raise UnsupportedError("device 'CUDA' runs only compiled models: pass engine='tvm'")
        if dtype not in (d.value for d in COMPUTE_DTYPES):
            raise CnnCompileError(f"dtype must be one of {', '.join(d.value for d in COMPUTE_DTYPES)}, got '{dtype}'")
        target = None if engine == "reference" else ("cuda" if _device_type(device) == DeviceType.CUDA else "llvm")
        return CnnCompileRep(model, dtype, target, pipeline)

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Inputs, device: str = "CPU", *,
                  dtype: str = "float64", engine: str = "reference") -> tuple[np.ndarray, ...]:
        return cls.prepare(model, device, dtype=dtype, engine=engine).run(inputs)

    @classmethod
    def run_node(
        cls,
        node: onnx.NodeProto,
        inputs: Inputs,
        device: str = "CPU",
        outputs_info: Sequence[tuple[np.dtype, tuple[int, ...]]] | None = None,
        *,
        opset_version: int | None = None,
        dtype: str = "float64",
    ) -> tuple[np.ndarray, ...]:
        """Run one node on `inputs` (one array per non-empty input name, in order, or by name).

        The node becomes a one-node model at `opset_version` (the newest onnx knows by
        default) whose outputs are typed by `outputs_info` where given, by shape inference
        otherwise.
        """
        names = [name for name in node.input if name]
        if isinstance(inputs, Mapping):
            arrays = [inputs[name] for name in names if name in inputs]
        else:
            arrays = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
        if len(arrays) != len(names):
            raise ModelError(f"node '{node.name or node.op_type}' takes {len(names)} input(s) "
                             f"({', '.join(names)}), got {len(arrays)}")
        feeds = {name: np.asarray(a) for name, a in zip(names, arrays, strict=True)}
        model = _node_model(node, feeds, list(outputs_info or []), opset_version or onnx.defs.onnx_opset_version())
        return cls.run_model(model, feeds, device, dtype=dtype)


def _node_model(node: onnx.NodeProto, feeds: Mapping[str, np.ndarray],
                outputs_info: Sequence[tuple[np.dtype, tuple[int, ...]]], opset: int) -> onnx.ModelProto:
    """A one-node model over `feeds`; outputs typed by `outputs_info`, else by shape inference."""
    outputs = [
        helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.dtype(outputs_info[i][0])),
                                      outputs_info[i][1])
        if i < len(outputs_info) else helper.make_tensor_value_info(name, onnx.TensorProto.UNDEFINED, None)
        for i, name in enumerate(node.output) if name
    ]
    inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
              for n, a in feeds.items()]
    graph = helper.make_graph([node], node.name or node.op_type.lower(), inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return onnx.shape_inference.infer_shapes(model)


prepare = CnnCompileBackend.prepare
run_model = CnnCompileBackend.run_model
run_node = CnnCompileBackend.run_node
supports_device = CnnCompileBackend.supports_device
