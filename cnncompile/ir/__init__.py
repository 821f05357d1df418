"""Typed graph IR: values, nodes, graphs, their verifier and printer."""

from cnncompile.ir.graph import Graph, Node, OpSpec, Value
from cnncompile.ir.printer import format_graph
from cnncompile.ir.types import NCHW, NHWC, DType, Layout, LayoutKind, TensorType
from cnncompile.ir.verifier import verify

__all__ = [
    "DType", "Graph", "Layout", "LayoutKind", "NCHW", "NHWC", "Node", "OpSpec",
    "TensorType", "Value", "format_graph", "verify",
]
