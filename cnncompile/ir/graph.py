"""The IR: a graph is an ordered list of nodes over typed SSA values.

Like a jaxpr, it is deliberately small: nodes are kept in topological order, constants
(NumPy arrays) live apart from activations, and every value has exactly one producer (a
node, a graph input or a constant). Analyses that want a real graph library get one from
`to_networkx()`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any, Protocol

import networkx as nx
import numpy as np

from cnncompile.errors import ShapeError
from cnncompile.ir.types import TensorType


class OpSpec(Protocol):
    """What the IR needs to know of an op; `cnncompile.ops.OpDef` provides it."""

    name: str
    attrs: type

    def infer(self, inputs: Sequence[TensorType], attrs: Any) -> list[TensorType]: ...

    def make_attrs(self, **values: Any) -> Any: ...


def unique_name(hint: str, taken: set[str]) -> str:
    """`hint`, else `hint_1`, `hint_2`, ...: the first not in `taken`, which it joins."""
    name, suffix = hint, 0
    while name in taken:
        suffix += 1
        name = f"{hint}_{suffix}"
    taken.add(name)
    return name


@dataclass(eq=False)
class Value:
    """A typed SSA value. `origin` is the name of the imported model's value this one stands for: its own
    name when made, and unchanged when a pass renames it. A pass that makes a new value holding an old
    one's numbers (a rewrite's replacement, a layout or element-type copy) gives it the old one's origin,
    so validation can compare every optimized value with the reference's value of that name."""

    name: str
    type: TensorType
    origin: str = ""

    def __post_init__(self) -> None:
        self.origin = self.origin or self.name

    def __repr__(self) -> str:
        return f"%{self.name}: {self.type}"


@dataclass(eq=False)
class Node:
    op: OpSpec
    inputs: list[Value]
    outputs: list[Value]
    attrs: Any
    name: str

    def __repr__(self) -> str:
        return f"Node({self.name}: {self.op.name})"

    def changed_attrs(self) -> dict[str, Any]:
        """Attributes that differ from the op's defaults, for printing."""
        return {
            f.name: getattr(self.attrs, f.name)
            for f in fields(self.attrs)
            if f.default is MISSING or not _same(getattr(self.attrs, f.name), f.default)
        }


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    return a == b


@dataclass(eq=False)
class Graph:
    name: str = "graph"
    inputs: list[Value] = field(default_factory=list)
    outputs: list[Value] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    constants: dict[Value, np.ndarray] = field(default_factory=dict)
    _taken: dict[str, set[str]] = field(default_factory=lambda: {"value": set(), "node": set()}, repr=False)

    # -- naming -------------------------------------------------------------------------
    def fresh_name(self, hint: str, kind: str = "value") -> str:
        """A name not yet used by a value (or node) of this graph: `hint`, else `hint_1`, ...

        Values and nodes have separate namespaces, so an imported model keeps every value
        name it came with whatever its nodes are called.
        """
        return unique_name(hint, self._taken[kind])

    # -- building -----------------------------------------------------------------------
    def add_input(self, name: str, type: TensorType) -> Value:
        value = Value(self.fresh_name(name), type)
        self.inputs.append(value)
        return value

    def add_constant(self, array: np.ndarray, name: str = "const") -> Value:
        array = np.asarray(array)
        value = Value(self.fresh_name(name), TensorType.of(array))
        self.constants[value] = array
        return value

    def add_node(
        self,
        op: OpSpec,
        inputs: Sequence[Value],
        attrs: Any = None,
        name: str | None = None,
        output_names: Sequence[str] | None = None,
        **attr_values: Any,
    ) -> list[Value]:
        """Append a node, infer its output types from the op's rule, return its outputs."""
        if attrs is None:
            attrs = op.make_attrs(**attr_values)
        elif attr_values:
            attrs = replace(attrs, **attr_values)
        node_name = self.fresh_name(name or op.name.lower(), kind="node")
        try:
            out_types = op.infer([v.type for v in inputs], attrs)
        except ShapeError as err:
            raise ShapeError(f"node '{node_name}' ({op.name}): {err}") from None
        hints = output_names or [node_name if i == 0 else f"{node_name}_out{i}" for i in range(len(out_types))]
        outputs = [Value(self.fresh_name(h), t) for h, t in zip(hints, out_types, strict=True)]
        self.nodes.append(Node(op, list(inputs), outputs, attrs, node_name))
        return outputs

    def mark_outputs(self, *values: Value) -> None:
        self.outputs.extend(values)

    def drop_unused_constants(self) -> int:
        """Forget constants no node or output reads; return how many went."""
        used = {v for node in self.nodes for v in node.inputs} | set(self.outputs)
        unused = [v for v in self.constants if v not in used]
        for value in unused:
            del self.constants[value]
            self._taken["value"].discard(value.name)
        return len(unused)

    def copy(self) -> Graph:
        """An independent graph: new nodes and values, sharing the constant arrays and attrs.

        Passes rewrite a graph's node list in place but replace constants and attrs rather
        than write into them, so two copies can be optimized differently at the cost of the
        node list alone.
        """
        twin = {v: Value(v.name, v.type, v.origin) for v in self.values()}
        nodes = [Node(n.op, [twin[v] for v in n.inputs], [twin[v] for v in n.outputs], n.attrs, n.name)
                 for n in self.nodes]
        graph = Graph(self.name, [twin[v] for v in self.inputs], [twin[v] for v in self.outputs], nodes,
                      {twin[v]: a for v, a in self.constants.items()})
        graph._taken = {kind: set(names) for kind, names in self._taken.items()}
        return graph

    # -- queries ------------------------------------------------------------------------
    def is_constant(self, value: Value) -> bool:
        return value in self.constants

    def producers(self) -> dict[Value, Node]:
        return {out: node for node in self.nodes for out in node.outputs}

    def consumers(self) -> dict[Value, list[Node]]:
        users: dict[Value, list[Node]] = {}
        for node in self.nodes:
            for value in node.inputs:
                users.setdefault(value, []).append(node)
        return users

    def values(self) -> Iterable[Value]:
        yield from self.inputs
        yield from self.constants
        for node in self.nodes:
            yield from node.outputs

    def last_uses(self) -> dict[int, list[Value]]:
        """For each node index, the activations no later node or output needs."""
        last: dict[Value, int] = {}
        for index, node in enumerate(self.nodes):
            for value in node.inputs:
                last[value] = index
        keep = set(self.outputs)
        freed: dict[int, list[Value]] = {}
        for value, index in last.items():
            if value not in keep:
                freed.setdefault(index, []).append(value)
        return freed

    def to_networkx(self) -> nx.DiGraph:
        """Nodes by name; an edge per value flowing from producer to consumer.

        Graph inputs and constants appear as source nodes so that liveness and dominator
        analyses see every value's origin.
        """
        dag = nx.DiGraph()
        origin: dict[Value, str] = {}
        for value in self.inputs:
            dag.add_node(value.name, kind="input", type=value.type)
            origin[value] = value.name
        for value in self.constants:
            dag.add_node(value.name, kind="constant", type=value.type)
            origin[value] = value.name
        for node in self.nodes:
            dag.add_node(node.name, kind="node", op=node.op.name)
            for value in node.inputs:
                if value in origin:
                    dag.add_edge(origin[value], node.name, value=value.name)
            for value in node.outputs:
                origin[value] = node.name
        return dag

    def __str__(self) -> str:
        from cnncompile.ir.printer import format_graph

        return format_graph(self)
