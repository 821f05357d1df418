"""Reduced precision: convs and matrix products from float16 or bfloat16 operands, the rest as the policy says.

    convert_precision(graph, PrecisionOptions(Precision.BF16, keep_fp32=("head",)))

What each op does in reduced precision is data, `POLICY`, one role per op:

    REDUCED  its operands are rounded to the reduced type and its products accumulated in
             float32 (DType.accumulator); its epilogue (bias, residual, activation) is
             computed in float32 and rounded once, on store. Per-channel parameters (a
             conv's bias, a Gemm's C) stay float32: rounding them saves nothing.
    FOLLOW   it computes in float32 from whichever type its operands are stored in and
             rounds once on store (max, data movement, piecewise-linear activations,
             element-wise sums and products, the folded BatchNorm's affine), so it runs in
             the type its neighbours choose.
    (any other op) is kept in float32: softmax and log-softmax, normalization statistics,
             reductions (global and windowed averages among them), exp, log and the other
             transcendental functions, and every op not listed.

A user keeps more nodes in float32 by name (`keep_fp32`; `--keep-fp32 NAME,...`). The
model's inputs and outputs stay float32, and only float32 values change type.

Casts are placed at the fewest points, as the layout pass places transforms: a value is
stored reduced when some reader computes in reduced precision (directly, or through FOLLOW
ops that do), a FOLLOW op runs reduced when its output is wanted so or all its operands
already are, and each value is converted at most once per type, just before its first
reader that needs it. Constants are converted at compile time (a twin of the array in the
reduced type), after BatchNorm has been folded into them in float32.

The conv algorithms whose transforms amplify rounding error (Winograd, FFT) do not apply in
reduced precision (`why_not` says so); a conv that had one is given the direct algorithm.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from cnncompile.algorithms.applicability import ConvAlgorithm
from cnncompile.errors import PassError
from cnncompile.ir.graph import Graph, Node, Value
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops import lookup
from cnncompile.ops.elementwise import Cast, CastAttrs
from cnncompile.ops.fused import FusedConv
from cnncompile.ops.registry import OpDef
from cnncompile.passes.rewrite import RewriteLog


class Precision(enum.Enum):
    """The element type a compile computes its convs and matrix products in; AUTO lets the target decide."""

    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"
    AUTO = "auto"

    @property
    def dtype(self) -> DType:
        if self is Precision.AUTO:
            raise PassError("precision 'auto' means a type only for a target: resolve it with the target first")
        return {Precision.FP32: DType.FLOAT32, Precision.FP16: DType.FLOAT16, Precision.BF16: DType.BFLOAT16}[self]


class Role(enum.Enum):
    REDUCED = "operands rounded, products accumulated in float32, one rounding on store"
    FOLLOW = "computed in float32 from either type, stored in the type its neighbours choose"


@dataclass(frozen=True)
class OpPolicy:
    """An op's role, and the inputs that stay float32 whatever the op computes in (per-channel parameters)."""

    role: Role
    parameters: tuple[str, ...] = ()


def _policy(entries: Mapping[str, OpPolicy]) -> Mapping[OpDef, OpPolicy]:
    table = {}
    for name, policy in entries.items():
        op = lookup(name)
        if op is None:
            raise ValueError(f"the precision policy names op '{name}', which the registry does not declare")
        table[op] = policy
    return MappingProxyType(table)


_REDUCED, _FOLLOW = OpPolicy(Role.REDUCED), OpPolicy(Role.FOLLOW)
POLICY: Mapping[OpDef, OpPolicy] = _policy({
    "Conv": OpPolicy(Role.REDUCED, ("B",)),
    "FusedConv": OpPolicy(Role.REDUCED, ("B",)),
    "Gemm": OpPolicy(Role.REDUCED, ("C",)),
    "MatMul": _REDUCED,
    "ChannelAffine": OpPolicy(Role.FOLLOW, ("scale", "shift")),
    **dict.fromkeys((
        "Relu", "LeakyRelu", "Clip", "HardSwish", "HardSigmoid", "Add", "Sub", "Mul", "Sum", "Max", "Min", "Neg",
        "MaxPool", "Identity", "LayoutTransform", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose",
        "Concat", "Slice", "Split", "Pad", "DepthToSpace", "SpaceToDepth",
    ), _FOLLOW),
})


@dataclass(frozen=True)
class PrecisionOptions:
    """The reduced type, and node names kept in float32 beside what the policy keeps."""

    precision: Precision = Precision.BF16
    keep_fp32: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.precision is Precision.AUTO:
            raise ValueError("precision 'auto' depends on the target: a compile resolves it before the pass runs")


class _Converter:
    def __init__(self, graph: Graph, options: PrecisionOptions):
        self.graph = graph
        self.reduced = options.precision.dtype
        self.kept = set(options.keep_fp32)
        unknown = sorted(self.kept - {n.name for n in graph.nodes})
        if unknown:
            names = ", ".join(n.name for n in graph.nodes[:8])
            raise PassError(f"--keep-fp32 names no node called {', '.join(unknown)} in graph '{graph.name}'; "
                            f"node names are those `cnncompile inspect --ir` prints (e.g. {names})")
        self.log = RewriteLog()
        self.lowered: set[Value] = set()  # the activations this pass stores reduced (not a model's own)
        self.made: dict[tuple[Value, DType], Value] = {}
        self.pending: dict[Node | None, list[Node]] = {}
        self.twins: dict[tuple[int, DType], Value] = {}

    def policy(self, node: Node) -> OpPolicy | None:
        return None if node.name in self.kept else POLICY.get(node.op)

    def converts(self, node: Node, position: int, value: Value) -> bool:
        """Whether the pass may change the type of this input: a float32 value that is no parameter."""
        policy = self.policy(node)
        return value.type.dtype is DType.FLOAT32 and policy is not None \
            and node.op.operand_name(position) not in policy.parameters

    def wanted(self) -> set[Value]:
        """The values some reader wants stored reduced: REDUCED readers, and FOLLOW readers whose output is wanted."""
        wanted: set[Value] = set()
        for node in reversed(self.graph.nodes):
            policy = self.policy(node)
            if policy is None or not any(self.converts(node, i, v) or v.type.dtype is self.reduced
                                         for i, v in enumerate(node.inputs)):
                continue
            if policy.role is Role.REDUCED or any(out in wanted for out in node.outputs):
                wanted.update(v for i, v in enumerate(node.inputs) if self.converts(node, i, v))
        return wanted - set(self.graph.outputs)

    def run(self) -> RewriteLog:
        wanted = self.wanted()
        for node in self.graph.nodes:
            self.retype(node, wanted)
        for value in self.graph.outputs:
            if value in self.lowered:
                self.to_output(value)
        self.graph.nodes = [n for node in self.graph.nodes for n in (*self.pending.get(node, []), node)] \
            + self.pending.get(None, [])
        self.graph.drop_unused_constants()
        self.log.fired = Counter({k: n for k, n in self.log.fired.items() if n})
        return self.log

    def retype(self, node: Node, wanted: set[Value]) -> None:
        policy = self.policy(node)
        floats = [i for i, v in enumerate(node.inputs) if self.converts(node, i, v) or
                  (policy is not None and v.type.dtype is self.reduced)]
        if policy is None or not floats:
            node.inputs = [self.convert(v, DType.FLOAT32, node) if v in self.lowered else v for v in node.inputs]
            return
        stored = [node.inputs[i].type.dtype for i in floats if not self.graph.is_constant(node.inputs[i])]
        reduced = policy.role is Role.REDUCED or any(out in wanted for out in node.outputs) \
            or (bool(stored) and all(t is self.reduced for t in stored))
        dtype = self.reduced if reduced else DType.FLOAT32
        node.inputs = [self.convert(v, dtype, node) if i in floats else v for i, v in enumerate(node.inputs)]
        if node.op is FusedConv and reduced and node.attrs.algorithm not in (ConvAlgorithm.DIRECT,
                                                                             ConvAlgorithm.DEPTHWISE,
                                                                             ConvAlgorithm.GEMM_1X1,
                                                                             ConvAlgorithm.IM2COL_GEMM):
            node.attrs = replace(node.attrs, algorithm=ConvAlgorithm.DIRECT, tile=())
            self.log.fired["direct-in-reduced-precision"] += 1
        for out, t in zip(node.outputs, node.op.infer([v.type for v in node.inputs], node.attrs)):
            if out.type.dtype is DType.FLOAT32 and t.dtype is self.reduced:
                self.lowered.add(out)
                self.log.fired[f"{node.op.name}-in-{self.reduced.value}"] += 1
            out.type = t

    def convert(self, value: Value, dtype: DType, reader: Node | None) -> Value:
        """`value` as a reader of type `dtype` reads it: itself, a constant's twin, or a Cast's output."""
        if value.type.dtype is dtype:
            return value
        if self.graph.is_constant(value):
            return self.twin(value, dtype)
        key = (value, dtype)
        if key not in self.made:
            self.graph.add_node(Cast, [value], CastAttrs(dtype), name=f"{value.name}_to_{dtype.value}")
            node = self.graph.nodes.pop()
            node.outputs[0].origin = value.origin
            self.pending.setdefault(reader, []).append(node)
            self.made[key] = node.outputs[0]
            if dtype is self.reduced:
                self.lowered.add(node.outputs[0])
            self.log.fired["cast"] += 1
        return self.made[key]

    def twin(self, value: Value, dtype: DType) -> Value:
        array = self.graph.constants[value]
        key = (id(array), dtype)
        if key not in self.twins:
            twin = Value(self.graph.fresh_name(f"{value.name}_{dtype.value}"),
                         TensorType(value.type.shape, dtype, value.type.layout))
            self.graph.constants[twin] = array.astype(dtype.numpy)
            self.twins[key] = twin
            self.log.fired["converted-constant"] += 1
        return self.twins[key]

    def to_output(self, value: Value) -> None:
        """A graph output computed reduced: a Cast back to float32 takes over the output's name."""
        cast = self.convert(value, DType.FLOAT32, None)
        value.name, cast.name = cast.name, value.name
        self.graph.outputs = [cast if v is value else v for v in self.graph.outputs]


def convert_precision(graph: Graph, options: PrecisionOptions = PrecisionOptions()) -> tuple[Graph, RewriteLog]:
    """Compute the graph's convs and matrix products in `options.precision`, the rest as POLICY says."""
    if options.precision is Precision.FP32:
        return graph, RewriteLog()
    return graph, _Converter(graph, options).run()
