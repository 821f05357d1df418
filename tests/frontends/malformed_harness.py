"""Building malformed models, and what every one of them must get on the command line."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from cnncompile.cli import main

X = (1, 3, 8, 8)


def make(nodes, inputs=(("x", X),), outputs=("y",), initializers=(), opset=17, **graph_fields) -> onnx.ModelProto:
    """A float model of `nodes`; an initializer is (name, array) or (name, shape) for random float32 values."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(a if isinstance(a, np.ndarray) else rng.standard_normal(a).astype(np.float32), n)
             for n, a in initializers]
    graph = helper.make_graph(
        nodes, "malformed", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs], inits, **graph_fields)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def conv(pads=(1, 1, 1, 1), weights=(4, 3, 3, 3), name="conv1", inputs=("x", "w"), **attrs) -> onnx.ModelProto:
    return make([helper.make_node("Conv", list(inputs), ["y"], pads=list(pads), name=name, **attrs)],
                initializers=[("w", weights)])


def written(tmp_path, model: onnx.ModelProto) -> str:
    path = str(tmp_path / "model.onnx")
    onnx.save(model, path)
    return path


def assert_one_line_cli_error(path: str, capsys, argv=("inspect", "--no-pager")) -> str:
    """`cnncompile COMMAND path` exits 2 with one line on stderr and no traceback; that line."""
    command, *options = argv
    assert main([command, path, *options]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("cnncompile: error: ") and "Traceback" not in err
    return err
