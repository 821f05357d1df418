"""Layout assignment: blocked (NCHWc) or channels-last (NHWC) feature maps, with the fewest transforms.

A CPU conv kernel vectorizes over a block of output channels, which it wants contiguous:
NCHW8c stores channels as C/8 outer and 8 inner, the inner block one vector. The pass

1. gives every 2-D FusedConv whose algorithm can work in the layout (`why_not_layout`)
   the target layout for its output: NCHWc with the value's own block (the largest of
   lanes, lanes/2, ... >= 4 dividing its channels) or NHWC;
2. lets every op declared layout-capable (`OpDef.layouts`: element-wise ops, ChannelAffine,
   pools, Concat on channels) run in the layout of its operands where its declaration and
   the shapes allow, and keeps every other op in NCHW;
3. inserts a LayoutTransform wherever a value is read in a layout it is not stored in,
   one per value and layout however many readers share it, placed just before the first
   reader; constants are given a twin typed with the layout instead (the array stays
   logical; the backend stores it physically at compile time: no runtime transform).

Which flexible op runs in which layout is chosen to minimize the bytes the transforms
move, and the choice is optimal: each value is either in NCHW (label 0) or in its layout
(label 1), so the cost

    sum over values v of  2 * bytes(v) * [some reader needs the label v does not have]

is a binary labelling problem with submodular pairwise terms, which a minimum s-t cut
solves exactly (networkx). Two auxiliary vertices per value ("an NCHW copy is needed",
"a laid-out copy is needed") make a transform shared by all readers count once. Ties
go to the later transform (a small bonus per value kept in the layout, too small to
outweigh one byte), so a transform lands after a GlobalAveragePool rather than before it.
What is decided beforehand, and so heuristic, is everything the cut does not weigh:
every eligible conv takes the layout (its kernels are faster there, which the byte count
does not see), the block of each value is the largest that divides its channels, and a
run uses one kind of layout (NCHWc or NHWC).

Transforms already in the graph (the selection pass puts one after every conv whose
chosen layout is not NCHW) are taken out first and put back only where the new assignment
needs them, reusing the same nodes, so adjacent inverse transforms cancel and a second run
changes nothing. A conv's layout is the pass's to decide, whatever selection preferred;
where it changes, the conv's tile, chosen for the old layout, goes back to the target's
default. Graph inputs and outputs stay logical.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace

import networkx as nx

from cnncompile.algorithms.applicability import why_not_layout
from cnncompile.errors import ShapeError
from cnncompile.ir.graph import Graph, Node, Value
from cnncompile.ir.types import NHWC, Layout, LayoutKind, TensorType, channel_block, nchwc
from cnncompile.ops.fused import FusedConv
from cnncompile.ops.layout import LayoutTransform, LayoutTransformAttrs
from cnncompile.passes.rewrite import RewriteLog

SOURCE, SINK = "nchw", "laid-out"  # the cut's terminals: label 0 and label 1
ANY = None  # a reader that takes its operand in NCHW or in the layout alike


@dataclass(frozen=True)
class LayoutOptions:
    """The layout convs compute in, and the target's float32 SIMD width, from which NCHWc blocks follow."""

    layout: LayoutKind = LayoutKind.NCHWC
    lanes: int = 8

    def __post_init__(self) -> None:
        if self.layout is LayoutKind.NCHW:
            raise ValueError("layout NCHW is where every graph starts; choose NCHWc or NHWC")
        if self.lanes < 4 or self.lanes & (self.lanes - 1):
            raise ValueError(f"lanes must be a power of two >= 4, got {self.lanes}")

    def layout_of(self, t: TensorType) -> Layout | None:
        """The layout a 4-D feature map of this type would be stored in; None when it cannot be."""
        if t.rank != 4:
            return None
        if self.layout is LayoutKind.NHWC:
            return NHWC
        block = channel_block((t.shape[1],), self.lanes)
        return None if block is None else nchwc(block)


def _carries(node: Node, position: int) -> bool:
    """Whether the operand at `position` is one the op's declaration lets carry a layout."""
    operands = node.op.layouts.operands
    return bool(node.op.layouts) and (operands is None or node.op.operand_name(position) in operands)


class _Problem:
    """The graph's layout decisions as a cut problem: which values may be laid out, who needs what."""

    def __init__(self, graph: Graph, options: LayoutOptions):
        self.graph = graph
        self.options = options
        self.convs: set[Node] = set()       # FusedConvs that write the layout
        self.flexible: set[Node] = set()    # layout-capable ops that may follow their operands
        for node in graph.nodes:
            if self._conv_can(node):
                self.convs.add(node)
            elif len(node.outputs) == 1 and node.op.layouts.follow and self._follow_can(node):
                self.flexible.add(node)

    def _conv_can(self, node: Node) -> bool:
        """Whether a 2-D FusedConv's algorithm writes the layout (reading its input logical or laid out)."""
        if node.op is not FusedConv:
            return False
        x, y = node.inputs[0].type, node.outputs[0].type
        layout = self.options.layout_of(y)
        logical = TensorType(x.shape, x.dtype)
        return x.rank == 4 and layout is not None \
            and why_not_layout(node.attrs.algorithm, layout, logical, y.shape) is None

    def _follow_can(self, node: Node) -> bool:
        """Whether the op accepts its carrying operands in their layouts and writes its output in its own."""
        if not node.op.layouts:
            return False
        types = []
        for position, value in enumerate(node.inputs):
            layout = self.options.layout_of(value.type) if _carries(node, position) else None
            if _carries(node, position) and layout is None:
                return False
            types.append(TensorType(value.type.shape, value.type.dtype, layout))
        try:
            (out,) = node.op.infer(types, node.attrs)
        except ShapeError:
            return False
        return out.layout is not None and out.layout == self.options.layout_of(node.outputs[0].type)

    def needs(self, node: Node, position: int) -> str | Value | None:
        """What the reader at `position` needs: a terminal, the output whose label it shares, or ANY."""
        if node in self.convs:
            # X is read in NCHW or in the layout alike; the residual Z must be stored as Y is.
            return SINK if position == FusedConv.operand_index("Z") else ANY
        if node in self.flexible and _carries(node, position):
            return node.outputs[0]
        return SOURCE

    def solve(self) -> dict[Value, bool]:
        """Each activation's label: True when it is stored in its layout. Minimum transform bytes."""
        free = {out: None for node in self.graph.nodes if node in self.flexible for out in node.outputs}
        fixed = {out: SINK for node in self.convs for out in node.outputs}
        scale = len(free) + 1  # one byte outweighs every tie-breaking bonus together
        big = scale * (2 * sum(v.type.nbytes for v in self.graph.values()) + 1)
        cut = nx.DiGraph()

        def edge(u: object, v: object, capacity: int) -> None:
            old = cut.get_edge_data(u, v, {"capacity": 0})["capacity"]
            cut.add_edge(u, v, capacity=old + capacity)

        def vertex(value: Value) -> object:
            return value if value in free else fixed.get(value, SOURCE)

        cut.add_nodes_from((SOURCE, SINK))
        for value in free:
            edge(value, SINK, 1)  # the tie-break: kept in the layout costs nothing, in NCHW 1
        readers: dict[Value, list[str | Value | None]] = {}
        for node in self.graph.nodes:
            for position, value in enumerate(node.inputs):
                if not self.graph.is_constant(value):
                    readers.setdefault(value, []).append(self.needs(node, position))
        for value in self.graph.outputs:
            readers.setdefault(value, []).append(SOURCE)
        for value, wants in readers.items():
            here, cost = vertex(value), scale * 2 * value.type.nbytes  # a transform reads and writes v
            to_nchw, to_layout = ("copy", "nchw", value), ("copy", "layout", value)
            edge(to_nchw, here, cost)     # stored laid out while an NCHW copy is needed
            edge(here, to_layout, cost)   # stored in NCHW while a laid-out copy is needed
            for want in wants:
                if want is ANY:
                    continue
                needed = vertex(want) if isinstance(want, Value) else want
                edge(needed, to_nchw, big)     # a reader in NCHW forces the NCHW copy
                edge(to_layout, needed, big)   # a reader in the layout forces the laid-out copy
        _, (nchw_side, _) = nx.minimum_cut(cut, SOURCE, SINK)
        return {**{out: out not in nchw_side for out in free}, **{out: True for out in fixed}}


class _Placer:
    """Rewrites the graph to a labelling: layouts on values and convs, transforms and constant twins."""

    def __init__(self, graph: Graph, problem: _Problem, kept: dict[tuple[Value, Layout | None], Node]):
        self.graph = graph
        self.problem = problem
        self.kept = kept
        self.constants = {(id(a), v.type.layout): v for v, a in graph.constants.items()}
        self.log = RewriteLog()
        self.pending: dict[Node, list[Node]] = {}   # transforms to place before a node
        self.made: dict[tuple[Value, Layout | None], Value] = {}

    def convert(self, value: Value, layout: Layout | None, reader: Node | None) -> Value:
        """`value` as `reader` must read it: itself, a constant's twin, or a transform's output.

        A transform for a graph output (`reader` None) is named for the laid-out value, which
        hands the output's name over to it.
        """
        if value.type.layout == layout:
            return value
        if self.graph.is_constant(value):
            return self._constant(value, layout)
        key = (value, layout)
        if key not in self.made:
            node = self.kept.pop(key, None)
            if node is None:
                hint = f"{value.name}_{str(value.type.layout).lower()}" if reader is None else None
                self.graph.add_node(LayoutTransform, [value], LayoutTransformAttrs(layout),
                                    name=f"{value.name}_to_{str(layout or 'NCHW').lower()}",
                                    output_names=[hint] if hint else None)
                node = self.graph.nodes.pop()
            node.inputs = [value]
            node.outputs[0].type = TensorType(value.type.shape, value.type.dtype, layout)
            node.outputs[0].origin = value.origin
            self.pending.setdefault(reader, []).append(node)
            self.made[key] = node.outputs[0]
        return self.made[key]

    def _constant(self, value: Value, layout: Layout | None) -> Value:
        array = self.graph.constants[value]
        key = (id(array), layout)
        if key not in self.constants:
            twin = Value(self.graph.fresh_name(f"{value.name}_{str(layout or 'NCHW').lower()}"),
                         TensorType(value.type.shape, value.type.dtype, layout))
            self.graph.constants[twin] = array
            self.constants[key] = twin
            self.log.fired["laid-out-constant"] += 1
        return self.constants[key]

    def place(self, labels: dict[Value, bool]) -> None:
        options = self.problem.options
        for node in self.graph.nodes:
            for out in node.outputs:
                layout = options.layout_of(out.type) if labels.get(out, False) else None
                if out.type.layout != layout:
                    self.log.fired["laid-out-value"] += 1
                    if node.op is FusedConv:  # a tile chosen for its old layout no longer describes the kernel
                        node.attrs = replace(node.attrs, layout=layout, tile=())
                out.type = TensorType(out.type.shape, out.type.dtype, layout)
        for node in self.graph.nodes:
            node.inputs = [self.convert(value, self._wanted(node, position, value, labels), node)
                           for position, value in enumerate(node.inputs)]
        outputs, renamed = [], set()
        for value in self.graph.outputs:
            logical = self.convert(value, None, None)
            if logical is not value and logical not in renamed:
                value.name, logical.name = logical.name, value.name  # the output keeps its name
                renamed.add(logical)
            outputs.append(logical)
        self.graph.outputs = outputs
        self.graph.nodes = [n for node in self.graph.nodes for n in (*self.pending.get(node, []), node)] \
            + self.pending.get(None, [])

    def _wanted(self, node: Node, position: int, value: Value, labels: dict[Value, bool]) -> Layout | None:
        need = self.problem.needs(node, position)
        if need is ANY:
            return value.type.layout
        if need == SINK or (isinstance(need, Value) and labels.get(need, False)):
            return self.problem.options.layout_of(value.type)
        return None


def _take_out_transforms(graph: Graph) -> dict[tuple[Value, Layout | None], Node]:
    """Bypass every LayoutTransform (a graph output goes back to the value it transformed).

    Returns the removed nodes by (input, layout) so the placement can reuse them, names and all.
    """
    kept: dict[tuple[Value, Layout | None], Node] = {}
    twin: dict[Value, Value] = {}
    outputs = set(graph.outputs)
    for node in graph.nodes:
        node.inputs = [twin.get(v, v) for v in node.inputs]
        if node.op is not LayoutTransform:
            continue
        (source,), (out,) = node.inputs, node.outputs
        twin[out] = source
        kept.setdefault((source, out.type.layout), node)
        if out in outputs:
            source.name, out.name = out.name, source.name
            graph.outputs = [source if v is out else v for v in graph.outputs]
            outputs = set(graph.outputs)
    graph.nodes = [n for n in graph.nodes if n.op is not LayoutTransform]
    return kept


def _runtime_transforms(graph: Graph) -> Iterator[Node]:
    return (n for n in graph.nodes if n.op is LayoutTransform)


def assign_layouts(graph: Graph, options: LayoutOptions = LayoutOptions()) -> tuple[Graph, RewriteLog]:
    """Store feature maps in `options.layout` where convs benefit, moving the fewest bytes between layouts."""
    before = set(_runtime_transforms(graph))
    kept = _take_out_transforms(graph)
    problem = _Problem(graph, options)
    placer = _Placer(graph, problem, kept)
    placer.place(problem.solve())
    graph.drop_unused_constants()
    after = set(_runtime_transforms(graph))
    # Counted by identity: a transform taken out and put back is neither new nor cancelled.
    placer.log.fired.update({"layout-transform": len(after - before), "cancelled-transform": len(before - after)})
    placer.log.fired = Counter({k: n for k, n in placer.log.fired.items() if n})
    return graph, placer.log

