"""One declaration per op: attributes, shape rule, reference kernel and cost.

An op is declared by decorating its NumPy reference kernel:

    @declare("Relu", shape=same_as_first, flops=per_output(1))
    def Relu(x):
        return np.maximum(x, 0)

after which the module-level name `Relu` is the `OpDef` every layer keys on: the IR's
nodes point at it, the frontends find it by ONNX name, the TVM backend keeps its lowering
in a table keyed by it. Kernels and shape rules receive the attributes as keyword
arguments, as onnx.reference does, so each transcribes the op's definition directly.

Which storage layouts an op reads is declared with it too (`layouts=OpLayouts(...)`), and
`OpDef.infer` checks it for every op in one place: an op that did not declare a layout
never sees one, operands that must agree do, and a layout always holds its tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, TypeVar

import numpy as np

from cnncompile.errors import AttrError, ShapeError
from cnncompile.ir.types import Layout, LayoutKind, TensorType
from cnncompile.ir.verifier import check_attr_types


@dataclass(frozen=True)
class NoAttrs:
    """Attributes of an op that has none."""


T = TypeVar("T")
ShapeRule = Callable[..., TensorType | Sequence[TensorType]]
CostRule = Callable[[Sequence[TensorType], Sequence[TensorType], Any], int]


def attr_dict(attrs: Any) -> dict[str, Any]:
    return {f.name: getattr(attrs, f.name) for f in fields(attrs)}


@dataclass(frozen=True)
class OpLayouts:
    """The storage layouts an op reads besides the logical NCHW, declared once with the op.

    `kinds`: the layout kinds its feature-map operands may carry (empty: NCHW only, the
    default for every op that declares nothing). `operands`: which operands, by name, may
    carry them (None: every one); the others (weights, per-channel scales) stay logical.
    `follow`: those operands share one layout and the outputs are stored in it, as for
    element-wise ops, pools and Concat; an op that chooses its output's layout by
    attribute (FusedConv, LayoutTransform) checks its operands in its own rule instead.
    """

    kinds: frozenset[LayoutKind] = frozenset()
    operands: tuple[str, ...] | None = None
    follow: bool = True

    def __bool__(self) -> bool:
        return bool(self.kinds)

    def __contains__(self, kind: LayoutKind) -> bool:
        return kind in self.kinds


NCHW_ONLY = OpLayouts()
ANY_LAYOUT = frozenset({LayoutKind.NHWC, LayoutKind.NCHWC})


@dataclass(frozen=True, eq=False)
class OpDef:
    """An op's whole declaration.

    `inputs` and `outputs` name the operands; a trailing `?` marks an optional input that
    may be left off the end, a trailing `*` a variadic one. `onnx_inputs_as_attrs` lists
    the ONNX inputs (by position) that cnncompile keeps as attributes because they must be
    known at compile time (Reshape's shape, Pad's pads, Clip's bounds); `onnx_aliases`
    maps attribute names of older opsets onto the fields.
    `value_independent` ops (Shape) compute their output from the input types alone, so
    they fold away whenever shapes are static. Ops of a `domain` other than ONNX's own ("")
    are cnncompile's fused ops, which export as the standard ops they stand for.
    """

    name: str
    attrs: type
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    shape_rule: ShapeRule
    kernel: Callable[..., Any]
    flops_rule: CostRule
    onnx_inputs_as_attrs: Mapping[int, str] = field(default_factory=dict)
    onnx_aliases: Mapping[str, str] = field(default_factory=dict)
    value_independent: bool = False
    domain: str = ""
    layouts: OpLayouts = NCHW_ONLY
    doc: str = ""

    def __repr__(self) -> str:
        return f"<op {self.name}>"

    # -- arity --------------------------------------------------------------------------
    @property
    def variadic(self) -> bool:
        return bool(self.inputs) and self.inputs[-1].endswith("*")

    def arity(self) -> tuple[int, int | None]:
        """(fewest, most) inputs; most is None for a variadic op."""
        required = sum(1 for name in self.inputs if not name.endswith(("?", "*")))
        if self.variadic:
            return max(required, 1), None
        return required, len(self.inputs)

    def check_arity(self, count: int) -> None:
        low, high = self.arity()
        if count < low or (high is not None and count > high):
            want = f"{low}" if low == high else f"{low}..{high if high is not None else 'n'}"
            raise ShapeError(f"{self.name} takes {want} inputs ({', '.join(self.inputs)}), got {count}")

    # -- the three rules ----------------------------------------------------------------
    def make_attrs(self, **values: Any) -> Any:
        try:
            attrs = self.attrs(**values)
        except TypeError as err:
            raise AttrError(f"{self.name}: {err}") from None
        try:
            check_attr_types(attrs)
        except ValueError as err:
            raise AttrError(f"{self.name}: {err}") from None
        return attrs

    def infer(self, inputs: Sequence[TensorType], attrs: Any) -> list[TensorType]:
        self.check_arity(len(inputs))
        layout = self.check_layouts(inputs)
        try:
            result = self.shape_rule(*inputs, **attr_dict(attrs))
        except ShapeError as err:
            if str(err).startswith(self.name):
                raise
            raise ShapeError(f"{self.name}: {err}") from None
        outputs = [result] if isinstance(result, TensorType) else list(result)
        if self.layouts.follow:
            outputs = [TensorType(t.shape, t.dtype, layout) for t in outputs]
        return outputs

    def operand_name(self, position: int) -> str:
        """The declared name of the input at `position` (a variadic one repeats its name)."""
        name = self.inputs[min(position, len(self.inputs) - 1)]
        return name.rstrip("?*")

    def operand_index(self, name: str) -> int:
        """The position of the input declared as `name` (without its `?` or `*`)."""
        names = [n.rstrip("?*") for n in self.inputs]
        if name not in names:
            raise KeyError(f"{self.name} has no operand {name}; its operands are {', '.join(names)}")
        return names.index(name)

    def operand(self, inputs: Sequence[T], name: str) -> T | None:
        """The input declared as `name` among a node's `inputs` (values, types or arrays alike);
        None for an optional one left off."""
        position = self.operand_index(name)
        return inputs[position] if position < len(inputs) else None

    def check_layouts(self, inputs: Sequence[TensorType]) -> Layout | None:
        """Check the operands' layouts against the declaration; return the one the outputs follow.

        Every layout must hold its tensor (NCHWc: channels a multiple of the block); only the
        declared kinds, on the declared operands, may differ from NCHW; and the operands of a
        `follow` op share one layout, which is the outputs' (None when they are logical).
        """
        for position, t in enumerate(inputs):
            layout = t.layout
            if layout is None:
                continue
            name = self.operand_name(position)
            if not layout.holds(t.shape):
                raise ShapeError(f"{self.name}: operand {name} {list(t.shape)} cannot be stored as {layout}")
            if layout.kind not in self.layouts:
                raise ShapeError(f"{self.name} reads {name} in NCHW only, but it is stored as {layout}; "
                                 "insert a LayoutTransform to NCHW before it")
            if self.layouts.operands is not None and name not in self.layouts.operands:
                raise ShapeError(f"{self.name}: operand {name} must stay logical (NCHW), but it is stored as {layout}")
        if not self.layouts.follow:
            return None
        named = [(self.operand_name(p), t) for p, t in enumerate(inputs)]
        carriers = [(name, t) for name, t in named if self.layouts.operands is None or name in self.layouts.operands]
        layouts = {t.layout for _, t in carriers}
        if len(layouts) > 1:
            stored = ", ".join(f"{name} as {t.layout or 'NCHW'}" for name, t in carriers)
            raise ShapeError(f"{self.name}: operands are stored in different layouts ({stored}); "
                             "they must share one")
        return layouts.pop() if layouts else None

    def run(self, arrays: Sequence[np.ndarray], attrs: Any) -> list[np.ndarray]:
        result = self.kernel(*arrays, **attr_dict(attrs))
        return list(result) if isinstance(result, (tuple, list)) else [result]

    def flops(self, inputs: Sequence[TensorType], outputs: Sequence[TensorType], attrs: Any) -> int:
        return int(self.flops_rule(inputs, outputs, attrs))

    def bytes_moved(self, inputs: Sequence[TensorType], outputs: Sequence[TensorType]) -> int:
        """Bytes read and written by an unfused kernel: every operand once."""
        return sum(t.nbytes for t in inputs) + sum(t.nbytes for t in outputs)


_REGISTRY: dict[str, OpDef] = {}
REGISTRY: Mapping[str, OpDef] = MappingProxyType(_REGISTRY)


def declare(
    name: str,
    attrs: type = NoAttrs,
    *,
    shape: ShapeRule,
    flops: CostRule,
    inputs: tuple[str, ...] = ("X",),
    outputs: tuple[str, ...] = ("Y",),
    onnx_inputs_as_attrs: Mapping[int, str] | None = None,
    onnx_aliases: Mapping[str, str] | None = None,
    value_independent: bool = False,
    domain: str = "",
    layouts: OpLayouts = NCHW_ONLY,
) -> Callable[[Callable[..., Any]], OpDef]:
    """Declare an op around its reference kernel and register it under its ONNX name."""

    def wrap(kernel: Callable[..., Any]) -> OpDef:
        if name in _REGISTRY:
            raise RuntimeError(f"op {name} is declared twice")
        op = OpDef(
            name=name,
            attrs=attrs,
            inputs=inputs,
            outputs=outputs,
            shape_rule=shape,
            kernel=kernel,
            flops_rule=flops,
            onnx_inputs_as_attrs=MappingProxyType(dict(onnx_inputs_as_attrs or {})),
            onnx_aliases=MappingProxyType(dict(onnx_aliases or {})),
            value_independent=value_independent,
            domain=domain,
            layouts=layouts,
            doc=(kernel.__doc__ or "").strip().split("\n")[0],
        )
        _REGISTRY[name] = op
        return op

    return wrap


def lookup(name: str) -> OpDef | None:
    return _REGISTRY.get(name)


# -- rules shared by many ops ---------------------------------------------------------------


def same_as_first(x: TensorType, *_: TensorType, **__: Any) -> TensorType:
    return x


def broadcast(*inputs: TensorType, **__: Any) -> TensorType:
    """NumPy/ONNX multidirectional broadcasting; all operands share one dtype.

    Stored in a layout other than NCHW, operands do not broadcast: they must be the same
    logical shape, so that their elements line up in memory too.
    """
    dtypes = {t.dtype for t in inputs}
    if len(dtypes) > 1:
        raise ShapeError(f"operands have different dtypes: {', '.join(sorted(d.value for d in dtypes))}")
    if inputs[0].layout is not None and len({t.shape for t in inputs}) > 1:
        raise ShapeError(f"operands stored as {inputs[0].layout} do not broadcast, and shapes "
                         + ", ".join(str(list(t.shape)) for t in inputs) + " differ; "
                         "keep such operands in NCHW")
    try:
        shape = np.broadcast_shapes(*(t.shape for t in inputs))
    except ValueError:
        raise ShapeError(
            "shapes " + ", ".join(str(list(t.shape)) for t in inputs) + " do not broadcast"
        ) from None
    return TensorType(shape, inputs[0].dtype, inputs[0].layout)


def per_output(flops_per_element: int) -> CostRule:
    """Cost of an op doing a fixed amount of arithmetic per output element."""

    def rule(inputs: Sequence[TensorType], outputs: Sequence[TensorType], attrs: Any) -> int:
        return flops_per_element * sum(t.numel for t in outputs)

    return rule


def per_input(flops_per_element: int) -> CostRule:
    """Cost of an op doing a fixed amount of arithmetic per input element (reductions)."""

    def rule(inputs: Sequence[TensorType], outputs: Sequence[TensorType], attrs: Any) -> int:
        return flops_per_element * sum(t.numel for t in inputs)

    return rule


def normalize_axis(axis: int, rank: int, op: str) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ShapeError(f"{op}: axis {axis} is out of range for rank {rank}")
    return axis % max(rank, 1)
