"""cnncompile: a declarative graph compiler for convolutional neural networks."""

from cnncompile.backends.reference import run_reference
from cnncompile.errors import CnnCompileError
from cnncompile.frontends.onnx import load_onnx
from cnncompile.frontends.onnx_export import save_onnx, to_onnx
from cnncompile.ir import DType, Graph, Node, TensorType, Value, verify

__version__ = "0.1.0"

__all__ = [
    "CnnCompileError", "DType", "Graph", "Node", "TensorType", "Value",
    "load_onnx", "run_reference", "save_onnx", "to_onnx", "verify", "__version__",
]
