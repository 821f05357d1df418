"""The rewrite language: patterns over the IR, rules that rewrite what they match, one driver.

A pattern reads like the diagram it matches, each op with its inputs nested inside it and
each constraint written next to what it constrains:

    conv = P.op(Conv, P.var("x"), P.const("w", single_use=True), P.opt(P.const("b")),
                name="conv", single_use=True)
    bn = P.op(BatchNormalization, conv, *P.consts("scale", "shift", "mean", "var"), name="bn")

    @P.rule(bn)
    def fold_bn_into_conv(m: P.Match) -> list[Value]: ...

Matching starts at a candidate root node and walks up its inputs. The same pattern object
(or the same name) met twice must meet the same value, which is how x * Sigmoid(x) is
written; two-operand Add, Mul and Sum also try their operands swapped. A candidate whose
ops and wiring fit but whose constraints (or the rule's own `check`) do not is *rejected*,
with the reason the first failing constraint gives, so a user can ask why a conv did not
fuse. A rule's benefit defaults to its pattern's size, and the driver (rewrite.py) tries
rules in falling benefit, so Conv+Add+Relu claims a conv before Conv+Relu can.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnncompile.ir.graph import Graph, Node, Value
from cnncompile.ops.elementwise import Add, Mul, Sum
from cnncompile.ops.registry import OpDef

COMMUTATIVE = frozenset({Add, Mul, Sum})


@dataclass(frozen=True)
class Check:
    """A predicate and the reason a candidate is rejected when it fails."""

    test: Callable[[Any], bool]
    reason: str


def where(test: Callable[[Any], bool], reason: str) -> Check:
    return Check(test, reason)


class Pattern:
    """What a value must be: anything (Var), a constant, or the output of an op (Op)."""

    name: str | None


@dataclass(frozen=True, eq=False)
class Var(Pattern):
    """Any value, optionally a constant that nothing else reads, with tests on its type."""

    name: str | None = None
    constant: bool = False
    single_use: bool = False
    shape: tuple[Check, ...] = ()


@dataclass(frozen=True, eq=False)
class Op(Pattern):
    """The first output of a node whose op is one of `ops`, its inputs matching `inputs`.

    `single_use`: no node outside the match reads the node's outputs and none is a graph
    output, so the rewrite may delete it. `attrs` tests the node's attributes, `shape`
    its output type.
    """

    ops: tuple[OpDef, ...]
    inputs: tuple[Pattern, ...]
    name: str | None = None
    single_use: bool = False
    attrs: tuple[Check, ...] = ()
    shape: tuple[Check, ...] = ()
    commutative: bool = False

    @property
    def size(self) -> int:
        """How many op patterns this one holds, itself included, each counted once."""
        return sum(1 for p in walk(self) if isinstance(p, Op))


@dataclass(frozen=True, eq=False)
class Opt(Pattern):
    """A trailing input that may be left off; its name is then bound to None."""

    inner: Pattern

    @property
    def name(self) -> str | None:
        return self.inner.name


def _checks(checks: Check | Sequence[Check]) -> tuple[Check, ...]:
    return (checks,) if isinstance(checks, Check) else tuple(checks)


def op(kind: OpDef | Iterable[OpDef], *inputs: Pattern, name: str | None = None, single_use: bool = False,
       attrs: Check | Sequence[Check] = (), shape: Check | Sequence[Check] = ()) -> Op:
    kinds = (kind,) if isinstance(kind, OpDef) else tuple(kind)
    commutative = len(inputs) == 2 and all(k in COMMUTATIVE for k in kinds)
    return Op(kinds, tuple(inputs), name, single_use, _checks(attrs), _checks(shape), commutative)


def var(name: str | None = None, *, shape: Check | Sequence[Check] = ()) -> Var:
    return Var(name, shape=_checks(shape))


def const(name: str | None = None, *, single_use: bool = False, shape: Check | Sequence[Check] = ()) -> Var:
    """A graph constant; `single_use` refuses one shared with other nodes (shared weights)."""
    return Var(name, constant=True, single_use=single_use, shape=_checks(shape))


def consts(*names: str) -> tuple[Var, ...]:
    return tuple(const(n) for n in names)


def opt(pattern: Pattern) -> Opt:
    return Opt(pattern)


def walk(pattern: Pattern) -> Iterator[Pattern]:
    """Every sub-pattern once, root first, inputs in order (an Opt yields its inner pattern)."""
    seen: set[int] = set()
    stack = [pattern]
    while stack:
        p = stack.pop()
        p = p.inner if isinstance(p, Opt) else p
        if id(p) in seen:
            continue
        seen.add(id(p))
        yield p
        if isinstance(p, Op):
            stack.extend(reversed(p.inputs))


# -- matching ---------------------------------------------------------------------------------

Bindings = dict[Any, Value | None]  # keyed by Pattern objects and by names


class GraphIndex:
    """Who produces and who reads each value; kept current as rewrites splice the graph."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.producers = {out: (node, i) for node in graph.nodes for i, out in enumerate(node.outputs)}
        self.consumers = graph.consumers()
        self.outputs = set(graph.outputs)
        self.alive = set(graph.nodes)

    def add(self, node: Node) -> None:
        self.alive.add(node)
        self.producers.update((out, (node, i)) for i, out in enumerate(node.outputs))
        for value in node.inputs:
            self.consumers.setdefault(value, []).append(node)

    def remove(self, node: Node) -> None:
        self.alive.discard(node)
        for out in node.outputs:
            self.producers.pop(out, None)
        for value in set(node.inputs):
            readers = [r for r in self.consumers.get(value, []) if r is not node]
            if readers:
                self.consumers[value] = readers
            else:
                self.consumers.pop(value, None)

    def replace_uses(self, old: Value, new: Value) -> None:
        """Point every reader of `old`, graph outputs included, at `new`."""
        readers = self.consumers.pop(old, [])
        for node in set(readers):
            node.inputs = [new if v is old else v for v in node.inputs]
        self.consumers.setdefault(new, []).extend(readers)
        if old in self.outputs:
            self.graph.outputs = [new if v is old else v for v in self.graph.outputs]
            self.outputs.discard(old)
            self.outputs.add(new)


def _bind(p: Pattern, value: Value | None, b: Bindings) -> Bindings | None:
    if p.name is not None and p.name in b and b[p.name] is not value:
        return None
    return {**b, p: value, **({p.name: value} if p.name is not None else {})}


def match(p: Pattern, value: Value, b: Bindings, index: GraphIndex) -> Iterator[Bindings]:
    """Every way `p` matches `value`, extending the bindings `b` (ops and wiring only)."""
    p = p.inner if isinstance(p, Opt) else p
    if p in b:
        if b[p] is value:
            yield b
        return
    bound = _bind(p, value, b)
    if bound is None:
        return
    if isinstance(p, Var):
        yield bound
        return
    assert isinstance(p, Op)
    node, position = index.producers.get(value, (None, -1))
    if node is None or position != 0 or node.op not in p.ops:
        return
    given = len(node.inputs)
    required = sum(1 for q in p.inputs if not isinstance(q, Opt))
    if not required <= given <= len(p.inputs):
        return
    for missing in p.inputs[given:]:
        bound = _bind(missing, None, bound)
        if bound is None:
            return
    present = p.inputs[:given]
    orders = [present, present[::-1]] if p.commutative and given == 2 else [present]
    for order in orders:
        yield from _match_all(order, node.inputs, bound, index)


def _match_all(patterns: Sequence[Pattern], values: Sequence[Value], b: Bindings,
               index: GraphIndex) -> Iterator[Bindings]:
    if not patterns:
        yield b
        return
    for first in match(patterns[0], values[0], b, index):
        yield from _match_all(patterns[1:], values[1:], first, index)


def _failed(checks: tuple[Check, ...], subject: Any) -> str | None:
    return next((c.reason for c in checks if not c.test(subject)), None)


def constraint_failure(root: Op, b: Bindings, index: GraphIndex) -> str | None:
    """The reason the first unmet constraint gives, in pattern order; None when all hold."""
    matched = {index.producers[b[p]][0] for p in walk(root) if isinstance(p, Op) and b.get(p) is not None}
    for p in walk(root):
        value = b.get(p)
        if value is None:
            continue
        if isinstance(p, Var):
            label = f"'{p.name}' (%{value.name})" if p.name else f"%{value.name}"
            if p.constant and not index.graph.is_constant(value):
                return f"{label} is not a constant"
            readers = index.consumers.get(value, [])
            if p.single_use and (len(readers) > 1 or value in index.outputs):
                other = next((n.name for n in readers if n not in matched), readers[0].name if readers else "")
                return f"{label} is shared (also read by node '{other}')"
            reason = _failed(p.shape, value.type)
            if reason:
                return f"{label}: {reason}"
            continue
        assert isinstance(p, Op)
        node = index.producers[value][0]
        label = f"node '{node.name}' ({node.op.name})"
        reason = _failed(p.attrs, node.attrs) or _failed(p.shape, value.type)
        if reason:
            return f"{label}: {reason}"
        if p.single_use and p is not root:
            for out in node.outputs:
                if out in index.outputs:
                    return f"{label}: its output %{out.name} is a graph output"
                outside = [n for n in index.consumers.get(out, []) if n not in matched]
                if outside:
                    return f"{label}: its output %{out.name} is also read by node '{outside[0].name}'"
    return None


class Match:
    """A successful match: the bound values and nodes, and a builder for the replacement.

    `m["x"]` is the value bound to x (None for an absent optional input), `m.node("conv")`
    the node an op pattern matched, `m.const("w")` a constant's array. `add_node` and
    `add_constant` build the replacement; its nodes go where the root node was.
    """

    def __init__(self, root: Node, bindings: Bindings, index: GraphIndex, pattern: Op):
        self.graph = index.graph
        self.root = root
        self._bindings = bindings
        self._index = index
        self.nodes: list[Node] = []
        self.matched = [index.producers[bindings[p]][0] for p in walk(pattern)
                        if isinstance(p, Op) and bindings.get(p) is not None]
        self.doomed = doomed_nodes(root, self.matched, index.consumers, index.outputs)
        self._reusable = {n.name for n in self.doomed}
        self.reused: set[str] = set()

    def __getitem__(self, name: str) -> Value | None:
        if name not in self._bindings:
            raise KeyError(f"the pattern binds no '{name}'")
        return self._bindings[name]

    def node(self, name: str) -> Node:
        return self._index.producers[self[name]][0]

    def const(self, name: str) -> np.ndarray | None:
        value = self[name]
        return None if value is None else self.graph.constants[value]

    def used(self, value: Value) -> bool:
        """Whether a node reads `value` or the graph returns it."""
        return value in self._index.consumers or value in self._index.outputs

    def add_constant(self, array: np.ndarray, name: str) -> Value:
        return self.graph.add_constant(np.ascontiguousarray(array), name)

    def add_node(self, op: OpDef, inputs: Sequence[Value], attrs: Any = None, name: str | None = None,
                 **attr_values: Any) -> list[Value]:
        """Build a replacement node; it may take the name of a matched node that the rewrite removes."""
        outputs = self.graph.add_node(op, inputs, attrs, name=name, **attr_values)
        node = self.graph.nodes.pop()
        if name in self._reusable:
            self._reusable.discard(name)
            self.reused.add(name)
            node.name = name
        self.nodes.append(node)
        return outputs


def doomed_nodes(root: Node, matched: Sequence[Node], consumers: dict[Value, list[Node]],
                 outputs: set[Value]) -> set[Node]:
    """The root and every matched node that only doomed nodes read (none a graph output)."""
    doomed = {root}
    grew = True
    while grew:
        grew = False
        for node in matched:
            readers = {r for out in node.outputs for r in consumers.get(out, [])}
            if node not in doomed and readers <= doomed and not any(out in outputs for out in node.outputs):
                doomed.add(node)
                grew = True
    return doomed


# -- rules ------------------------------------------------------------------------------------

Rewrite = Callable[[Match], Sequence[Value]]
RuleCheck = Callable[[Match], str | None]


def _no_check(m: Match) -> str | None:
    return None


@dataclass(frozen=True, eq=False)
class Rule:
    """A pattern, a check that may decline with a reason, and the rewrite.

    The rewrite returns one value per output of the root node (trailing ones that nothing
    reads may be left off); every reader of the root's outputs is pointed at them.
    """

    name: str
    pattern: Op
    rewrite: Rewrite
    check: RuleCheck = _no_check
    benefit: int = 0
    doc: str = ""

    def __repr__(self) -> str:
        return f"<rule {self.name} (benefit {self.benefit})>"


def rule(pattern: Op, *, check: RuleCheck | None = None, benefit: int | None = None) -> Callable[[Rewrite], Rule]:
    """Decorate a rewrite to make it a Rule named after the function."""

    def wrap(rewrite: Rewrite) -> Rule:
        doc = (rewrite.__doc__ or "").strip().split("\n")[0]
        return Rule(rewrite.__name__.replace("_", "-"), pattern, rewrite, check or _no_check,
                    pattern.size if benefit is None else benefit, doc)

    return wrap
