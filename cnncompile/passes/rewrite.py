"""The rewrite driver: apply rules to a fixed point, in falling benefit, with a loop guard.

Each round sweeps every rule over every node in graph order. Where a rule matches and its
constraints and check hold, its rewrite builds the replacement, which is spliced in where
the root node was; every reader of the root's outputs moves to the replacement, the
replacement takes over the names of the values it replaces (so graph outputs keep
theirs), and the matched nodes nothing else reads are removed. A round in which nothing
fires is the fixed point.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cnncompile.errors import PassError
from cnncompile.ir.graph import Graph, Node, Value
from cnncompile.passes.pattern import GraphIndex, Match, Rule, constraint_failure, doomed_nodes, match

MAX_ROUNDS = 32


@dataclass(frozen=True)
class Rejection:
    rule: str
    node: str
    reason: str

    def __str__(self) -> str:
        return f"{self.rule} declined at node '{self.node}': {self.reason}"


@dataclass
class RewriteLog:
    """What a pass did: how often each rule (or action) fired, and why candidates were declined.

    True when anything fired, so a pass can return it as its `changed`.
    """

    fired: Counter[str] = field(default_factory=Counter)
    rejections: list[Rejection] = field(default_factory=list)

    def __bool__(self) -> bool:
        return sum(self.fired.values()) > 0


def apply_rules(graph: Graph, rules: Sequence[Rule], max_rounds: int = MAX_ROUNDS) -> RewriteLog:
    """Rewrite `graph` in place until no rule matches, trying rules in falling benefit.

    Each round sweeps every rule over every node; a round in which nothing fires ends the
    loop, and its rejections are the ones reported. Rules that keep firing for
    `max_rounds` rounds (two rules undoing each other) raise PassError naming them.
    """
    ordered = sorted(rules, key=lambda r: -r.benefit)
    log = RewriteLog()
    for _ in range(max_rounds):
        fired: Counter[str] = Counter()
        rejections: list[Rejection] = []
        for current in ordered:
            index = GraphIndex(graph)
            for node in list(graph.nodes):
                if node not in index.alive or node.op not in current.pattern.ops:
                    continue
                outcome = _try(current, node, index)
                if outcome is True:
                    fired[current.name] += 1
                elif isinstance(outcome, Rejection):
                    rejections.append(outcome)
        log.fired.update(fired)
        if not fired:
            log.rejections = rejections
            graph.drop_unused_constants()
            return log
    busy = ", ".join(f"{name} ({count}x)" for name, count in fired.most_common())
    raise PassError(f"rewriting did not reach a fixed point after {max_rounds} rounds; still firing: {busy}")


def _try(current: Rule, node: Node, index: GraphIndex) -> bool | Rejection | None:
    """Fire `current` at `node` if it matches: True, a Rejection, or None (no structural match)."""
    first_reason = None
    for bindings in match(current.pattern, node.outputs[0], {}, index):
        m = Match(node, bindings, index, current.pattern)
        reason = constraint_failure(current.pattern, bindings, index) or current.check(m)
        if reason is None:
            replacements = list(current.rewrite(m))
            reason = _output_conflict(m, replacements, index)
            if reason is None:
                _splice(current, m, replacements, index)
                return True
        first_reason = first_reason or reason
    return Rejection(current.name, node.name, first_reason) if first_reason else None


def _output_conflict(m: Match, replacements: Sequence[Value], index: GraphIndex) -> str | None:
    """Why the replacement cannot take over a graph output's name, if it cannot."""
    built = {out for n in m.nodes for out in n.outputs}
    graph = index.graph
    for old, new in zip(m.root.outputs, replacements):
        if old in index.outputs and new not in built:
            if new in index.outputs or graph.is_constant(new) or new in graph.inputs:
                return (f"its output %{old.name} is a graph output, and %{new.name}, which would replace it, "
                        "is itself a graph input, constant or output")
    return None


def _splice(current: Rule, m: Match, replacements: Sequence[Value], index: GraphIndex) -> None:
    graph, root = index.graph, m.root
    for old, new in zip(root.outputs, replacements):
        if old.type.shape != new.type.shape or old.type.dtype != new.type.dtype:
            raise PassError(f"rule {current.name} replaced %{old.name} {old.type} by %{new.name} {new.type} "
                            f"at node '{root.name}'")
    unread = [out for out in root.outputs[len(replacements):] if out in index.consumers or out in index.outputs]
    if unread:
        raise PassError(f"rule {current.name} left output %{unread[0].name} of node '{root.name}' without a value")
    position = graph.nodes.index(root)
    graph.nodes[position:position] = m.nodes
    for node in m.nodes:
        index.add(node)
    built = {out for n in m.nodes for out in n.outputs}
    for old, new in zip(root.outputs, replacements):
        if new in built or old in index.outputs:
            new.name = old.name  # the old value leaves the graph; its name (a graph output's, say) lives on
        if new in built:
            new.origin = old.origin  # what the replacement computes is what the value it replaces stood for
        index.replace_uses(old, new)
    doomed = doomed_nodes(root, m.matched, index.consumers, index.outputs)
    clash = [n.name for n in m.doomed - doomed if n.name in m.reused]
    if clash:
        raise PassError(f"rule {current.name} reused the name of node '{clash[0]}', which its rewrite keeps alive")
    for node in doomed:
        index.remove(node)
    graph.nodes = [n for n in graph.nodes if n not in doomed]


def rule_pass(rules: Sequence[Rule]) -> Callable[[Graph], tuple[Graph, RewriteLog]]:
    """The pass that applies `rules` to a fixed point."""
    frozen = tuple(rules)

    def run(graph: Graph) -> tuple[Graph, RewriteLog]:
        return graph, apply_rules(graph, frozen)

    return run
