"""Data-movement ops against onnxruntime: Concat, Split, Reshape, Flatten, Transpose,
Squeeze, Unsqueeze, Pad and DepthToSpace over their attributes and opset variants."""

import numpy as np
import pytest

from cnncompile.errors import ShapeError
from cnncompile.ir.types import DType, TensorType
from cnncompile.ops.tensor import (Concat, DepthToSpace, Flatten, Pad, PadMode, Reshape, Split, Squeeze,
                                   Transpose, Unsqueeze)
from onnx_harness import check_node


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def ints(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def infer(op, *shapes, dtype=DType.FLOAT32, **attrs):
    return op.infer([TensorType(s, dtype) for s in shapes], op.make_attrs(**attrs))


# -- Concat -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shapes, axis", [
    ([(2, 3, 4), (2, 5, 4), (2, 1, 4)], 1),
    ([(2, 3), (4, 3)], 0),
    ([(2, 3, 4), (2, 3, 2)], -1),
    ([(5,)], 0),
])
def test_concat(shapes, axis):
    inputs = {f"x{i}": rand(*s, seed=i) for i, s in enumerate(shapes)}
    check_node("Concat", inputs, axis=axis)


def test_concat_of_input_and_constant():
    check_node("Concat", {"x": rand(2, 3)}, {"c": rand(1, 3, seed=1)}, axis=0)


# -- Split ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, axis, split, opset", [
    ((6, 4), 0, [1, 2, 3], 18),
    ((2, 7, 3), 1, [4, 0, 3], 13),
    ((3, 5), -1, [2, 3], 11),
])
def test_split_with_sizes(shape, axis, split, opset):
    if opset >= 13:
        check_node("Split", {"x": rand(*shape)}, {"split": ints(*split)}, n_outputs=len(split), opset=opset, axis=axis)
    else:
        check_node("Split", {"x": rand(*shape)}, n_outputs=len(split), opset=opset, axis=axis, split=split)


@pytest.mark.parametrize("shape, axis, n", [((7, 2), 0, 4), ((3, 5), 1, 3), ((8, 3), 0, 4)])
def test_split_num_outputs_opset18_last_chunk_smaller(shape, axis, n):
    check_node("Split", {"x": rand(*shape)}, n_outputs=n, opset=18, axis=axis, num_outputs=n)


def test_split_evenly_by_output_count_opset13():
    check_node("Split", {"x": rand(2, 6)}, n_outputs=3, opset=13, axis=1)


# -- Reshape, Flatten, Transpose ----------------------------------------------------------------


@pytest.mark.parametrize("shape, target", [
    ((2, 3, 4), (0, -1)),
    ((2, 3, 4), (4, 0, 2, -1)),
    ((2, 3, 4), (24,)),
    ((6,), (1, 2, 1, 3)),
    ((2, 3, 4), (-1, 2)),
])
def test_reshape(shape, target):
    check_node("Reshape", {"x": rand(*shape)}, {"shape": ints(*target)})


def test_reshape_allowzero_keeps_literal_zero():
    check_node("Reshape", {"x": rand(0, 3)}, {"shape": ints(3, 0)}, opset=14, allowzero=1)
    check_node("Reshape", {"x": rand(2, 3)}, {"shape": ints(3, 2)}, opset=14, allowzero=1)


@pytest.mark.parametrize("shape, target, allowzero, message", [
    ((3, 4), (5, -1), 0, r"12 elements.*\[5, -1\].*not divisible by 5"),
    ((3, 4), (-1, -1), 0, "at most one dim may be -1"),
    ((3, 4), (0, 0, 0), 0, "0 at position 2"),
    ((3, 4), (2, 5), 0, "holds 10 elements"),
    ((0, 4), (0, -1), 1, "allowzero=1"),
])
def test_reshape_errors(shape, target, allowzero, message):
    with pytest.raises(ShapeError, match=message):
        infer(Reshape, shape, shape=target, allowzero=allowzero)


@pytest.mark.parametrize("axis", [0, 1, 2, -1, 4, -4])
def test_flatten(axis):
    check_node("Flatten", {"x": rand(2, 3, 4, 5)}, axis=axis)


def test_flatten_axis_out_of_range():
    with pytest.raises(ShapeError, match="Flatten: axis 5"):
        infer(Flatten, (2, 3, 4, 5), axis=5)


@pytest.mark.parametrize("perm", [None, [0, 2, 3, 1], [1, 0], [2, 0, 1]])
def test_transpose(perm):
    rank = 2 if perm == [1, 0] else 3 if perm == [2, 0, 1] else 4
    x = rand(*(2, 3, 4, 5)[:rank])
    check_node("Transpose", {"x": x}, **({} if perm is None else {"perm": perm}))


def test_transpose_rejects_non_permutation():
    with pytest.raises(ShapeError, match="not a permutation"):
        infer(Transpose, (2, 3, 4), perm=(0, 0, 1))


# -- Squeeze, Unsqueeze -------------------------------------------------------------------------


@pytest.mark.parametrize("axes", [None, [1], [-1, 1], [0, 1, 3]])
def test_squeeze_axes_input_opset13(axes):
    constants = {} if axes is None else {"axes": ints(*axes)}
    check_node("Squeeze", {"x": rand(1, 1, 3, 1)}, constants)


def test_squeeze_axes_attribute_opset11():
    check_node("Squeeze", {"x": rand(1, 4, 1)}, opset=11, axes=[0, -1])


def test_squeeze_of_wide_axis_is_a_shape_error():
    with pytest.raises(ShapeError, match=r"axes \[2\] of \[1, 1, 3, 1\] are not 1"):
        infer(Squeeze, (1, 1, 3, 1), axes=(2,))


@pytest.mark.parametrize("axes", [[0], [-1], [1, 3], [0, -1, 2]])
def test_unsqueeze_axes_input_opset13(axes):
    check_node("Unsqueeze", {"x": rand(3, 4)}, {"axes": ints(*axes)})


def test_unsqueeze_axes_attribute_opset11():
    check_node("Unsqueeze", {"x": rand(3, 4)}, opset=11, axes=[-1, 0])


def test_unsqueeze_repeated_axis_is_a_shape_error():
    with pytest.raises(ShapeError, match="twice"):
        infer(Unsqueeze, (3, 4), axes=(0, -4))


# -- Pad ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
@pytest.mark.parametrize("pads", [
    [0, 0, 1, 2, 0, 0, 2, 1],
    [0, 1, -1, 2, 0, 0, 2, -2],
    [0, 0, 3, 0, 0, 0, 0, 3],
])
def test_pad_modes_with_cropping(mode, pads):
    check_node("Pad", {"x": rand(2, 3, 5, 6)}, {"pads": ints(*pads)}, mode=mode)


def test_pad_constant_value_input_opset11():
    check_node("Pad", {"x": rand(2, 3, 4)}, {"pads": ints(1, 0, 2, 0, 3, 1), "c": np.array(1.5, np.float32)},
               opset=11)


def test_pad_axes_input_opset18():
    constants = {"pads": ints(1, -1, 2, 3), "c": np.array(-2.0, np.float32), "axes": ints(-1, 1)}
    check_node("Pad", {"x": rand(2, 3, 4, 5)}, constants, opset=18)
    check_node("Pad", {"x": rand(2, 3, 4, 5)}, {"pads": ints(1, 2), "axes": ints(2)},
               input_order=["x", "pads", "", "axes"], opset=18, mode="reflect")


def test_pad_opset2_attributes():
    check_node("Pad", {"x": rand(1, 2, 3, 3)}, opset=2, pads=[0, 0, 1, 2, 0, 0, 2, 1], value=0.25)
    check_node("Pad", {"x": rand(1, 2, 3, 3)}, opset=2, pads=[0, 0, 1, 2, 0, 0, 2, 1], mode="edge")


def test_pad_integer_tensor():
    x = np.random.default_rng(0).integers(-5, 5, (3, 4)).astype(np.int64)
    check_node("Pad", {"x": x}, {"pads": ints(1, 1, 1, 1), "c": np.array(7, np.int64)})


@pytest.mark.parametrize("dims, pads, mode, message", [
    ((2, 4), (0, 5, 0, 0), "reflect", "exceeds its 4 elements"),
    ((2, 4), (0, -3, 0, -3), "constant", "crop more than axis 1"),
    ((2, 4), (1, 1), "constant", "needs 2 x 2 entries"),
    ((2, 0), (0, 1, 0, 0), "edge", "nothing to repeat"),
])
def test_pad_errors(dims, pads, mode, message):
    with pytest.raises(ShapeError, match=message):
        infer(Pad, dims, pads=pads, mode=PadMode(mode))


# -- DepthToSpace ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
@pytest.mark.parametrize("shape, blocksize", [((2, 8, 3, 4), 2), ((1, 18, 2, 3), 3)])
def test_depth_to_space(mode, shape, blocksize):
    check_node("DepthToSpace", {"x": rand(*shape)}, blocksize=blocksize, mode=mode)


def test_depth_to_space_channels_must_divide():
    with pytest.raises(ShapeError, match="divide by blocksize"):
        infer(DepthToSpace, (1, 6, 2, 2), blocksize=2)


# -- shape-rule odds and ends ----------------------------------------------------------------------


def test_concat_shape_errors_name_the_shapes():
    with pytest.raises(ShapeError, match=r"\[2, 3\], \[2, 4\] must agree"):
        infer(Concat, (2, 3), (2, 4), axis=0)


@pytest.mark.parametrize("attrs, message", [
    ({"split": (2, 2)}, "sum to 5"),
    ({"num_outputs": 4}, "nothing for the last output"),
    ({}, "num_outputs"),
])
def test_split_errors(attrs, message):
    with pytest.raises(ShapeError, match=message):
        infer(Split, (5, 2), **attrs)


def test_data_movement_costs_no_flops():
    x = TensorType((2, 3, 4))
    attrs = Transpose.make_attrs()
    assert Transpose.flops([x], Transpose.infer([x], attrs), attrs) == 0
