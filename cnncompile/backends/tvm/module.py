"""A Graph as one Relax function calling one scheduled TIR PrimFunc per node.

Nodes that would produce the same kernel (same op, attributes and operand types, as the
repeated blocks of a ResNet do) share one PrimFunc, so LLVM compiles each distinct layer
once. Constants become Relax constants, embedded in the compiled artifact.

Every value is stored in its type's layout: kernels take and return physical shapes, and
a constant whose type carries a layout (its array is logical, as every array in the IR)
is converted at build time. Graph inputs and outputs are logical.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

import numpy as np
import tvm
from tvm import relax, te, tirx

from cnncompile.backends.tvm.kernel import Kernel, Repack
from cnncompile.backends.tvm.lowering import check_lowerable, lower_node
from cnncompile.backends.tvm.lowering.layouts import physical_shape
from cnncompile.backends.tvm.plan import ConvPlan
from cnncompile.backends.tvm.schedule import schedule
from cnncompile.backends.tvm.target import TargetSpec
from cnncompile.errors import CnnCompileError
from cnncompile.ir.graph import Graph, Node, Value
from cnncompile.ir.types import TensorType


@dataclass(frozen=True)
class NodeKernel:
    """Where one node's code lives in the built module: its PrimFunc's symbol, bound tables, the
    node's operand and result types (whose layouts say how the kernel stores them), the
    inputs it takes repacked (by input index), to call it alone on logical arrays, and, for a
    conv, the plan it was built from (what `--explain` reports as built)."""

    node: str
    symbol: str
    tables: tuple[np.ndarray, ...]
    inputs: tuple[TensorType, ...]
    outputs: tuple[TensorType, ...]
    repacks: tuple[tuple[int, Repack], ...] = ()
    plan: ConvPlan | None = None

    def arguments(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """The kernel's array arguments (before its outputs) for the node's logical input arrays: each
        repacked as the kernel asked, or stored in its value's layout."""
        repacks = dict(self.repacks)
        return [repacks[i](a) if i in repacks else _stored(t, a)
                for i, (a, t) in enumerate(zip(inputs, self.inputs))] + list(self.tables)

    @property
    def output_shapes(self) -> list[tuple[int, ...]]:
        """The shapes the kernel writes its outputs in (their layouts' physical shapes)."""
        return [physical_shape(t) for t in self.outputs]

    def logical_outputs(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """The kernel's output arrays back in the logical order."""
        return [t.layout.to_logical(a) if t.layout else a for a, t in zip(arrays, self.outputs)]


@dataclass
class LoweredGraph:
    module: tvm.IRModule
    kernels: list[NodeKernel]


def _frozen(value: Any) -> Any:
    """A hashable stand-in for an attribute value: arrays by content, nested attrs by fields."""
    if isinstance(value, np.ndarray):
        return value.dtype.str, value.shape, value.tobytes()
    if is_dataclass(value):
        return type(value).__name__, tuple(_frozen(getattr(value, f.name)) for f in fields(value))
    if isinstance(value, tuple):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _kernel_key(node: Node, constant: tuple[bool, ...]) -> tuple:
    return (node.op.name, _frozen(node.attrs), tuple(v.type for v in node.inputs),
            tuple(v.type for v in node.outputs), constant)


def _stored(t: TensorType, array: np.ndarray) -> np.ndarray:
    """A logical array in `t`'s layout."""
    return t.layout.to_physical(array) if t.layout else array


def _relax_type(t: TensorType) -> relax.TensorType:
    return relax.TensorType(physical_shape(t), t.dtype.value)


@dataclass(frozen=True)
class _Built:
    gvar: relax.GlobalVar
    symbol: str
    tables: tuple[np.ndarray, ...]
    repacks: tuple[tuple[int, Repack], ...]
    plan: ConvPlan | None


def build_primfunc(node: Node, constant: tuple[bool, ...], target: TargetSpec,
                   symbol: str) -> tuple[tirx.PrimFunc, Kernel]:
    """The node's scheduled PrimFunc (parameters: inputs, tables, outputs) and the kernel it came from."""
    try:
        params, kernel = lower_node(node, constant, target)
    except CnnCompileError as err:
        raise type(err)(f"lowering node '{node.name}' ({node.op.name}) failed: {err}") from err
    func = te.create_prim_func([*params, *(t for t, _ in kernel.tables), *kernel.outputs])
    try:
        func = schedule(func, kernel, target)
    except (RuntimeError, tvm.s_tir.ScheduleError, CnnCompileError) as err:
        raise CnnCompileError(f"scheduling node '{node.name}' ({node.op.name}) for {target} failed: "
                              f"{str(err).strip().splitlines()[-1]}") from err
    return func.with_attr("global_symbol", symbol), kernel


def lower_graph(graph: Graph, target: TargetSpec, progress: Callable[[int, int], None] | None = None) -> LoweredGraph:
    """The whole graph as an IRModule whose `main` takes the graph inputs and returns a tuple of its outputs."""
    module, (kernels,) = lower_graphs({"main": graph}, target, progress)
    return LoweredGraph(module, kernels)


def lower_graphs(graphs: Mapping[str, Graph], target: TargetSpec,
                 progress: Callable[[int, int], None] | None = None) -> tuple[tvm.IRModule, list[list[NodeKernel]]]:
    """One IRModule with a Relax function per graph, named by its key (a shape bucket each), and each
    function's kernels. A kernel two graphs would build alike (same op, attributes and operand types)
    is one PrimFunc for both, as within a graph."""
    for graph in graphs.values():
        check_lowerable(graph)
    bb = relax.BlockBuilder()
    functions: dict[tuple, _Built] = {}
    every: list[list[NodeKernel]] = []
    total, done = sum(len(g.nodes) for g in graphs.values()), 0
    for name, graph in graphs.items():
        kernels: list[NodeKernel] = []
        params = [relax.Var(v.name, _relax_type(v.type)) for v in graph.inputs]
        env: dict[Value, relax.Expr] = dict(zip(graph.inputs, params))
        with bb.function(name, params):
            with bb.dataflow():
                for node in graph.nodes:
                    constant = tuple(graph.is_constant(v) for v in node.inputs)
                    key = _kernel_key(node, constant)
                    if key not in functions:
                        functions[key] = _add_kernel(bb, node, constant, target,
                                                     f"{node.op.name.lower()}_{len(functions)}")
                    built = functions[key]
                    kernels.append(NodeKernel(node.name, built.symbol, built.tables,
                                              tuple(v.type for v in node.inputs),
                                              tuple(v.type for v in node.outputs), built.repacks, built.plan))
                    _emit_call(bb, graph, env, node, built)
                    done += 1
                    if progress is not None:
                        progress(done, total)
                result = bb.emit_output(relax.Tuple([_operand(graph, env, v) for v in graph.outputs]))
            bb.emit_func_output(result)
        every.append(kernels)
    return bb.get(), every


def _add_kernel(bb: relax.BlockBuilder, node: Node, constant: tuple[bool, ...], target: TargetSpec,
                symbol: str) -> _Built:
    func, kernel = build_primfunc(node, constant, target, symbol)
    repacks = tuple((i, transform) for i, (_, transform) in kernel.repacked.items())
    return _Built(bb.add_func(func, symbol), symbol, tuple(a for _, a in kernel.tables), repacks, kernel.plan)


def _emit_call(bb: relax.BlockBuilder, graph: Graph, env: dict[Value, relax.Expr], node: Node, built: _Built) -> None:
    """call_tir of the node's kernel: operands (constants repacked as it asks), then its tables."""
    repacks = dict(built.repacks)
    args = [_const(repacks[i](graph.constants[v])) if i in repacks else _operand(graph, env, v)
            for i, v in enumerate(node.inputs)]
    args += [_const(t) for t in built.tables]
    out_types = [_relax_type(v.type) for v in node.outputs]
    call = bb.emit(relax.call_tir(built.gvar, args, out_types if len(out_types) > 1 else out_types[0]))
    if len(node.outputs) == 1:
        env[node.outputs[0]] = call
        return
    for i, value in enumerate(node.outputs):
        env[value] = bb.emit(relax.TupleGetItem(call, i))


def _operand(graph: Graph, env: dict[Value, relax.Expr], value: Value) -> relax.Expr:
    if value not in env:
        env[value] = _const(_stored(value.type, graph.constants[value]))
    return env[value]


def _const(array: np.ndarray) -> relax.Constant:
    """A Relax constant of the array's own dtype (relax.const would narrow int64 to int32)."""
    return relax.const(array, str(array.dtype))
