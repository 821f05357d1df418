"""The NumPy reference interpreter: read the inputs, evaluate each node, write the outputs.

In DType.FLOAT64 mode (the gold standard) every floating tensor, inputs and constants
alike, is computed in double precision whatever the graph declares; in DType.FLOAT32 mode
floating tensors are kept as float32. Integer and boolean tensors are never converted.

A value the graph stores in a 16-bit float (float16, bfloat16) is rounded to that type when
it is written, and computed on in the wider type: so the reference emulates the roundings a
reduced-precision kernel makes (operands rounded, products accumulated wide, one rounding on
store) and judges it, in float32 mode, at float32-level tolerance.

A value of a narrow type (float8, float4, int4, int2: DType.is_narrow) is held in that type, never
widened: only Cast, CastLike and the (de)quantizers take one, and they read its element type
from the array (a float8 zero point names QuantizeLinear's output type).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from cnncompile.errors import CnnCompileError, ExecutionError, ModelError
from cnncompile.ir.graph import Graph, Node, Value
from cnncompile.ir.types import DType, is_floating

COMPUTE_DTYPES = (DType.FLOAT32, DType.FLOAT64)

# Called with each node and its input arrays before the node runs; returning a list
# replaces those inputs (calibration overwrites BatchNorm statistics this way).
NodeHook = Callable[[Node, Sequence[np.ndarray]], Sequence[np.ndarray] | None]


def _to_compute(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    array = np.asarray(array)
    if is_floating(array.dtype) and array.dtype != dtype:
        return array.astype(dtype)
    return array


def _stored(array: np.ndarray, value: Value, dtype: np.dtype) -> np.ndarray:
    """`array` as `value` holds it, in the compute `dtype`: rounded first when the graph stores it in a 16-bit float,
    in its own type when in a narrow one (an input fed as float32 for a float8 one is converted)."""
    if value.type.dtype.is_narrow:
        return np.asarray(array).astype(value.type.dtype.numpy, copy=False)
    if value.type.dtype.is_reduced and is_floating(np.asarray(array).dtype):
        array = np.asarray(array).astype(value.type.dtype.numpy)
    return _to_compute(array, dtype)


def check_inputs(graph: Graph, inputs: Mapping[str, np.ndarray]) -> None:
    """Every graph input present with its declared shape; no unknown names."""
    expected = {v.name: v for v in graph.inputs}
    missing = sorted(set(expected) - set(inputs))
    unknown = sorted(set(inputs) - set(expected))
    if missing or unknown:
        parts = []
        if missing:
            parts.append("missing input(s) " + ", ".join(f"'{n}' {expected[n].type}" for n in missing))
        if unknown:
            parts.append("unknown input(s) " + ", ".join(f"'{n}'" for n in unknown))
        raise ModelError(f"graph '{graph.name}': {'; '.join(parts)}; expected inputs: "
                         + ", ".join(f"{v.name} {v.type}" for v in graph.inputs))
    for name, value in expected.items():
        shape = tuple(np.shape(inputs[name]))
        if shape != value.type.shape:
            raise ModelError(f"input '{name}' has shape {list(shape)} but the graph expects "
                             f"{list(value.type.shape)}; pass an array of that shape")


def run_reference(
    graph: Graph, inputs: Mapping[str, np.ndarray], dtype: DType = DType.FLOAT64, *, hook: NodeHook | None = None
) -> dict[str, np.ndarray]:
    """Run `graph` on NumPy arrays, computing floating tensors in `dtype`; its outputs by name."""
    if dtype not in COMPUTE_DTYPES:
        raise CnnCompileError("the reference computes in " + " or ".join(f"DType.{d.name}" for d in COMPUTE_DTYPES)
                              + f" (cnncompile.DType), got {dtype!r}")
    compute = dtype.numpy
    check_inputs(graph, inputs)
    env: dict[Value, np.ndarray] = {v: _stored(a, v, compute) for v, a in graph.constants.items()}
    env.update({v: _stored(inputs[v.name], v, compute) for v in graph.inputs})
    freed = graph.last_uses()
    keep = set(graph.outputs) | set(graph.constants)
    for index, node in enumerate(graph.nodes):
        args = [env[v] for v in node.inputs]
        if hook is not None:
            args = list(hook(node, args) or args)
        try:
            results = node.op.run(args, node.attrs)
        except CnnCompileError as err:
            raise ExecutionError(f"while executing node '{node.name}' ({node.op.name}): {err}") from None
        except (ValueError, IndexError, TypeError, FloatingPointError) as err:
            shapes = ", ".join(str(list(a.shape)) for a in args)
            raise ExecutionError(
                f"while executing node '{node.name}' ({node.op.name}) on inputs {shapes}: {err}"
            ) from err
        for value, result in zip(node.outputs, results, strict=True):
            env[value] = _stored(result, value, compute)
        for value in freed.get(index, ()):
            if value not in keep:
                env.pop(value, None)
    return {v.name: env[v] for v in graph.outputs}
