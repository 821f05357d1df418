"""The IR's invariants, checked after every pass in tests and with `--verify`.

Like JAX's typechecker, it recomputes each node's output types from its op's rule and
compares them with what the graph claims, so a pass that builds a node by hand cannot
smuggle in a wrong shape.
"""

from __future__ import annotations

import enum
import types
import typing
from dataclasses import fields, is_dataclass
from typing import Any

import numpy as np

from cnncompile.errors import CnnCompileError, VerifyError
from cnncompile.ir.graph import Graph, Node


def check_attr_types(attrs: Any) -> None:
    """Raise ValueError when a field's value does not match its hint."""
    hints = typing.get_type_hints(type(attrs))
    for f in fields(attrs):
        value = getattr(attrs, f.name)
        if not _matches(value, hints[f.name]):
            raise ValueError(f"attribute '{f.name}' = {value!r} is not of type {_hint_name(hints[f.name])}")


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arm) for arm in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(args) == len(value) and all(_matches(v, a) for v, a in zip(value, args))
    if hint is float:
        return isinstance(value, (float, int)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is np.ndarray:
        return isinstance(value, np.ndarray)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return isinstance(value, hint)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def verify(graph: Graph) -> None:
    """Raise VerifyError naming the first node that breaks an invariant."""
    defined: set = set()
    names: set[str] = set()

    def define(value, where: str) -> None:
        if value in defined:
            raise VerifyError(f"{where}: value '%{value.name}' is defined twice (SSA violated)")
        if value.name in names:
            raise VerifyError(f"{where}: two values are named '%{value.name}'")
        defined.add(value)
        names.add(value.name)

    for value in graph.inputs:
        define(value, f"graph input '{value.name}'")
        _check_logical(value, "graph input")
    for value, array in graph.constants.items():
        define(value, f"constant '{value.name}'")
        if tuple(array.shape) != value.type.shape or array.dtype != value.type.dtype.numpy:
            raise VerifyError(
                f"constant '{value.name}': array is {array.dtype}{list(array.shape)} but its type says {value.type}"
            )
        layout = value.type.layout
        if layout is not None and not layout.holds(value.type.shape):
            raise VerifyError(f"constant '{value.name}': {value.type} cannot be stored as {layout}")

    producers = graph.producers()
    node_names: set[str] = set()
    for node in graph.nodes:
        where = f"node '{node.name}' ({node.op.name})"
        if node.name in node_names:
            raise VerifyError(f"{where}: node name used twice")
        node_names.add(node.name)
        for value in node.inputs:
            if value not in defined:
                if value in producers:
                    raise VerifyError(
                        f"{where}: input '%{value.name}' is produced later by node "
                        f"'{producers[value].name}' (cycle or nodes out of topological order)"
                    )
                raise VerifyError(f"{where}: input '%{value.name}' is dangling: no node, input or constant defines it")
        _check_node(node, where)
        for value in node.outputs:
            define(value, where)

    for value in graph.outputs:
        if value not in defined:
            raise VerifyError(f"graph output '%{value.name}' is dangling: nothing defines it")
        _check_logical(value, "graph output")


def _check_logical(value, what: str) -> None:
    """A graph's inputs and outputs are exchanged with the caller in the logical order."""
    if value.type.layout is not None:
        raise VerifyError(f"{what} '%{value.name}' is stored as {value.type.layout}; a graph takes and returns "
                          "logical (NCHW) tensors, so transform it back to NCHW")


def _check_node(node: Node, where: str) -> None:
    # Exactly the op's class: a FusedConv's attrs extend Conv's, and must not pass for them.
    if not is_dataclass(node.attrs) or type(node.attrs) is not node.op.attrs:
        raise VerifyError(f"{where}: attrs are {type(node.attrs).__name__}, expected {node.op.attrs.__name__}")
    try:
        check_attr_types(node.attrs)
    except ValueError as err:
        raise VerifyError(f"{where}: illegal {err}") from None
    try:
        expected = node.op.infer([v.type for v in node.inputs], node.attrs)
    except CnnCompileError as err:
        raise VerifyError(f"{where}: {err}") from None
    if len(expected) != len(node.outputs):
        raise VerifyError(f"{where}: has {len(node.outputs)} outputs, its op's rule gives {len(expected)}")
    for value, want in zip(node.outputs, expected):
        if value.type != want:
            raise VerifyError(f"{where}: output '%{value.name}' is typed {value.type} but the shape rule gives {want}")
