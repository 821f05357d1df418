"""Walk the registry: every op is declared once, completely, and the CNN op set is covered."""

import dataclasses
import inspect

import pytest

from cnncompile.ops import REGISTRY

# The op set the foundation issue names, by ONNX name.
REQUIRED = """
Conv ConvTranspose BatchNormalization LayerNormalization InstanceNormalization LRN
Relu LeakyRelu PRelu Elu Selu Sigmoid Tanh HardSigmoid HardSwish Gelu Softplus Clip
MaxPool AveragePool GlobalAveragePool GlobalMaxPool Gemm MatMul Add Sub Mul Div Sum
Concat Split Reshape Flatten Transpose Squeeze Unsqueeze Pad Resize Softmax LogSoftmax
Dropout Identity ReduceMean DepthToSpace Cast Shape Gather Slice Constant ConstantOfShape
""".split()


def test_every_required_op_is_registered():
    missing = sorted(set(REQUIRED) - set(REGISTRY))
    assert not missing, f"ops without a declaration: {missing}"


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_declaration_is_complete(name):
    op = REGISTRY[name]
    assert op.name == name
    assert callable(op.kernel) and callable(op.shape_rule) and callable(op.flops_rule)
    assert op.doc, f"{name}: the kernel's docstring is the op's description"
    assert dataclasses.is_dataclass(op.attrs) and op.attrs.__dataclass_params__.frozen
    for position, field in op.onnx_inputs_as_attrs.items():
        assert field in {f.name for f in dataclasses.fields(op.attrs)}, f"{name}: input {position} -> {field}"
    kernel_params = inspect.signature(op.kernel).parameters
    takes_all = any(p.kind is p.VAR_KEYWORD for p in kernel_params.values())
    for field in dataclasses.fields(op.attrs):
        assert takes_all or field.name in kernel_params, f"{name}: kernel ignores attribute {field.name}"


def test_operands_are_found_by_their_declared_names():
    fused, batchnorm, concat = REGISTRY["FusedConv"], REGISTRY["BatchNormalization"], REGISTRY["Concat"]
    assert [fused.operand_index(n) for n in ("X", "W", "B", "Z")] == [0, 1, 2, 3]
    assert [batchnorm.operand_index(n) for n in ("input_mean", "input_var")] == [3, 4]
    assert fused.operand(["x", "w", "b", "z"], "Z") == "z" and fused.operand(["x", "w", "b"], "Z") is None
    assert concat.operand_name(5) == concat.operand_name(0)
    with pytest.raises(KeyError, match="FusedConv has no operand R; its operands are X, W, B, Z"):
        fused.operand_index("R")
