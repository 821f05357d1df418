"""The TVM backend's lowering table: one entry per op, keyed by the op's `OpDef`.

The registry (cnncompile.ops) declares what an op means; this table says how it becomes
TE. `lower_node` builds one node's kernel; `check_lowerable` asks every node of a graph
before anything is built, so an unsupported model fails in a second with the full list
rather than halfway through a long build.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from tvm import te

from cnncompile.backends.tvm.kernel import Call, Kernel, Lowering, placeholders
from cnncompile.backends.tvm.target import TargetSpec
from cnncompile.backends.tvm.lowering import (
    conv, elementwise, indexing, layouts, linalg, logic, math, norm, pool, qlinear, quantize, ranking, reduce,
    resize, sampling, tensor, attention,
)
from cnncompile.errors import ResourceError, UnsupportedError
from cnncompile.ir.graph import Graph, Node, Value
from cnncompile.ops.registry import OpDef

LOWERINGS: Mapping[OpDef, Lowering] = MappingProxyType({
    **elementwise.LOWERINGS, **tensor.LOWERINGS, **conv.LOWERINGS, **pool.LOWERINGS,
    **reduce.LOWERINGS, **norm.LOWERINGS, **linalg.LOWERINGS, **resize.LOWERINGS, **layouts.LOWERINGS,
    **ranking.LOWERINGS, **math.LOWERINGS, **logic.LOWERINGS,
    **indexing.LOWERINGS, **attention.LOWERINGS, **sampling.LOWERINGS,
    **quantize.LOWERINGS, **qlinear.LOWERINGS,
})


def lower_node(node: Node, constant: tuple[bool, ...], target: TargetSpec) -> tuple[list[te.Tensor], Kernel]:
    """The kernel's parameters for the node's inputs (in input order) and the kernel built on them.

    A parameter is the input's placeholder, or the repacked placeholder the lowering asked
    for in its place.
    """
    call = Call(placeholders([v.type for v in node.inputs]), node.attrs, tuple(v.type for v in node.inputs),
                tuple(v.type for v in node.outputs), constant, target)
    kernel = LOWERINGS[node.op].build(call)
    params = [kernel.repacked[i][0] if i in kernel.repacked else t for i, t in enumerate(call.inputs)]
    return params, kernel


def unlowerable(graph: Graph) -> dict[str, str]:
    """Op name -> why the TVM backend cannot lower it, for every op of `graph` it cannot."""
    return {node.op.name: f"no TVM lowering is registered for it (first used by node '{node.name}'); "
                          "add one to cnncompile/backends/tvm/lowering"
            for node in reversed(graph.nodes) if node.op not in LOWERINGS}


# The kernels index their buffers with int32: TVM rejects a larger extent as a literal.
MAX_ELEMENTS = (1 << 31) - 1


def check_indexable(graph: Graph) -> None:
    """Refuse a tensor the kernels cannot index, naming the first node that makes or reads one: past their
    int32 indices, or empty (TVM cannot build a loop nest over an extent of 0; the reference runs it)."""
    for value in graph.inputs:
        problem = _extent_problem(value)
        if problem:
            raise ResourceError(f"graph input '{value.name}' {problem}; bind another shape with --input-shape")
    for node in graph.nodes:
        for value in (*node.inputs, *node.outputs):
            problem = _extent_problem(value)
            if problem:
                raise ResourceError(f"node '{node.name}' ({node.op.name}): '{value.name}' {problem}; bind other "
                                    "inputs with --input-shape" + (" or split the batch" if value.type.numel else ""))


def _extent_problem(value: Value) -> str | None:
    shape = "x".join(map(str, value.type.shape))
    if value.type.numel > MAX_ELEMENTS:
        return (f"has {value.type.numel:.3g} elements ({shape}), more than the {MAX_ELEMENTS} that compiled kernels "
                "index")
    if value.type.numel == 0:
        return f"has no elements ({shape}): compiled kernels need non-empty tensors (the reference runs empty ones)"
    return None


def check_element_types(graph: Graph) -> None:
    """Refuse a narrow element type (float8, float4, int4, int2), naming the first node or graph input that
    holds one. TVM 0.27 knows their names, but its LLVM codegen cannot cast to float4, and its float8 and
    sub-byte casts do not follow ONNX's (500.0 to float8e4m3fn gives -0, neither 448 nor NaN; float32 to
    int4 gives wrong values), so no kernel is built on them; the reference runs them."""
    fix = "run the model on the reference (engine 'reference'), or re-export it without that type"
    for value in graph.inputs:
        if value.type.dtype.is_narrow:
            raise UnsupportedError(f"graph input '{value.name}' is {value.type.dtype.value}, an element type the TVM "
                                   f"backend does not compile; {fix}")
    for node in graph.nodes:
        narrow = next((v for v in (*node.inputs, *node.outputs) if v.type.dtype.is_narrow), None)
        if narrow is not None:
            raise UnsupportedError(f"node '{node.name}' ({node.op.name}): '{narrow.name}' is "
                                   f"{narrow.type.dtype.value}, an element type the TVM backend does not compile; "
                                   f"{fix}")


def check_lowerable(graph: Graph) -> None:
    check_element_types(graph)
    problems = unlowerable(graph)
    if problems:
        listed = "; ".join(f"{op}: {why}" for op, why in sorted(problems.items()))
        raise UnsupportedError(f"the TVM backend cannot compile graph '{graph.name}': {listed}")
    check_indexable(graph)
