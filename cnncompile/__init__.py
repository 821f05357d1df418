"""cnncompile: a declarative graph compiler for convolutional neural networks."""

from cnncompile import zoo
from cnncompile.backends.reference import run_reference
from cnncompile.errors import CnnCompileError
from cnncompile.frontends.onnx import load_onnx
from cnncompile.frontends.onnx_export import save_onnx, to_onnx
from cnncompile.ir import DType, Graph, Node, TensorType, Value, verify
from cnncompile.version import __version__

__all__ = [
    "CnnCompileError", "CompiledModel", "DType", "Graph", "Node", "TensorType", "Value", "compile", "load",
    "load_onnx", "run_reference", "save_onnx", "to_onnx", "verify", "zoo", "__version__",
]

# The TVM backend takes seconds to import; only code that compiles or loads a model pays for it.
_TVM_API = frozenset({"compile", "load", "CompiledModel"})


def __getattr__(name: str):
    if name in _TVM_API:
        from cnncompile import api

        return getattr(api, name)
    raise AttributeError(f"module 'cnncompile' has no attribute '{name}'")
