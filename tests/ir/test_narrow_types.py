"""The narrow element types (float8, float4, int4, int2): each DType is ml_dtypes' type, imports from
ONNX (graph inputs and packed initializers) and exports back unchanged, is held in its own type by the
reference, and is refused by the TVM backend with the node and the type named."""

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import cnncompile
from cnncompile.backends.tvm.lowering import check_lowerable
from cnncompile.errors import ModelError, UnsupportedError
from cnncompile.ir.types import NARROW_FLOATS, NARROW_INTEGERS, DType, is_floating

ML_DTYPES = {DType.FLOAT8E4M3FN: ml_dtypes.float8_e4m3fn, DType.FLOAT8E4M3FNUZ: ml_dtypes.float8_e4m3fnuz,
             DType.FLOAT8E5M2: ml_dtypes.float8_e5m2, DType.FLOAT8E5M2FNUZ: ml_dtypes.float8_e5m2fnuz,
             DType.FLOAT8E8M0: ml_dtypes.float8_e8m0fnu, DType.FLOAT4E2M1: ml_dtypes.float4_e2m1fn,
             DType.INT4: ml_dtypes.int4, DType.UINT4: ml_dtypes.uint4, DType.INT2: ml_dtypes.int2,
             DType.UINT2: ml_dtypes.uint2}
NARROW = sorted(ML_DTYPES, key=lambda d: d.name)
ids = [d.name for d in NARROW]


@pytest.mark.parametrize("dtype", NARROW, ids=ids)
def test_each_narrow_dtype_is_ml_dtypes_type_and_no_compute_type(dtype):
    ml = ML_DTYPES[dtype]
    assert dtype.numpy == np.dtype(ml) and DType.of(ml) is dtype and DType.of(np.dtype(ml).name) is dtype
    info = ml_dtypes.finfo(ml) if dtype in NARROW_FLOATS else ml_dtypes.iinfo(ml)
    assert dtype.bits == info.bits and dtype.itemsize == 1
    assert dtype.is_narrow
    assert not dtype.is_float and not dtype.is_reduced and dtype.accumulator is dtype
    assert is_floating(dtype.numpy) == (dtype in NARROW_FLOATS)
    assert NARROW_FLOATS | NARROW_INTEGERS == set(ML_DTYPES) and not NARROW_FLOATS & NARROW_INTEGERS


def test_the_other_types_are_not_narrow_and_take_whole_bytes():
    assert {d for d in DType if d.is_narrow} == set(ML_DTYPES)
    assert all(d.bits == 8 * d.numpy.itemsize for d in DType if not d.is_narrow)
    assert is_floating(ml_dtypes.bfloat16) and not is_floating(np.int8)


def _values(dtype: DType, count: int) -> np.ndarray:
    """`count` encodings of `dtype` spread over its range, NaNs left out (a NaN never equals itself)."""
    if dtype in NARROW_INTEGERS:
        info = ml_dtypes.iinfo(dtype.numpy)
        values = np.arange(info.min, info.max + 1).astype(dtype.numpy)
    else:
        values = np.arange(1 << dtype.bits, dtype=np.uint8).view(dtype.numpy)  # every encoding
        values = values[~np.isnan(values.astype(np.float32))]
    return np.resize(values[::max(1, len(values) // count)], count)


def _model(dtype: DType, weights: onnx.TensorProto) -> onnx.ModelProto:
    """y = Cast(x, float32), x a graph input of `dtype`, and w = Cast(weights, float32), which the importer
    folds, running Cast on the unpacked initializer."""
    nodes = [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT, name="widened"),
             helper.make_node("Cast", ["w0"], ["w"], to=TensorProto.FLOAT, name="weights")]
    code = helper.np_dtype_to_tensor_dtype(dtype.numpy)
    graph = helper.make_graph(nodes, "narrow", [helper.make_tensor_value_info("x", code, (5,))],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, (5,)) for n in ("y", "w")],
                              [weights])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 25)])


@pytest.mark.parametrize("packing", ["raw_data", "typed list"])
@pytest.mark.parametrize("dtype", NARROW, ids=ids)
def test_graph_inputs_and_packed_initializers_import(dtype, packing):
    values = _values(dtype, 5)  # an odd count: the last byte of a packed 4-bit tensor is half empty
    weights = numpy_helper.from_array(values, "w0")
    if packing == "typed list":  # the same packed bytes, one per int32_data entry
        weights.int32_data.extend(weights.raw_data)
        weights.ClearField("raw_data")
    graph = cnncompile.load_onnx(_model(dtype, weights))
    assert graph.inputs[0].type.dtype is dtype
    got = cnncompile.run_reference(graph, {"x": values[::-1]})
    np.testing.assert_array_equal(got["y"], values[::-1].astype(np.float64))
    np.testing.assert_array_equal(got["w"], values.astype(np.float64))


@pytest.mark.parametrize("dtype", [DType.FLOAT8E4M3FN, DType.FLOAT8E5M2FNUZ, DType.INT4, DType.UINT4],
                         ids=lambda d: d.name)
def test_a_narrow_graph_exports_and_imports_unchanged(dtype):
    # (float4, float8e8m0 and int2 enter ONNX's Cast at opsets 23 to 25, above the exporter's 21)
    values = _values(dtype, 5)
    scale = numpy_helper.from_array(np.array(0.5, np.float32), "s")
    nodes = [helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"], name="dq"),
             helper.make_node("Cast", ["y"], ["q"], to=helper.np_dtype_to_tensor_dtype(dtype.numpy), name="back")]
    code = helper.np_dtype_to_tensor_dtype(dtype.numpy)
    model = helper.make_model(helper.make_graph(
        nodes, "narrow", [helper.make_tensor_value_info("x", code, (5,))],
        [helper.make_tensor_value_info("q", code, (5,))],
        [scale, numpy_helper.from_array(np.zeros((), dtype.numpy), "z")]),
        opset_imports=[helper.make_opsetid("", 21)])
    graph = cnncompile.load_onnx(model)
    again = cnncompile.load_onnx(cnncompile.to_onnx(graph))
    assert [v.type for v in again.values()] == [v.type for v in graph.values()]
    for g in (graph, again):
        got = cnncompile.run_reference(g, {"x": values})["q"]
        np.testing.assert_array_equal(got.view(np.uint8), (values.astype(np.float32) * 0.5).astype(dtype.numpy).view(
            np.uint8))


@pytest.mark.parametrize("dtype", [DType.INT4, DType.FLOAT4E2M1, DType.UINT2], ids=lambda d: d.name)
def test_a_packed_initializer_one_byte_short_names_the_bytes_it_needs(dtype):
    weights = numpy_helper.from_array(_values(dtype, 5), "w0")
    needed = len(weights.raw_data)  # 3 bytes for five 4-bit values, 2 for five 2-bit ones
    assert needed == -(-5 * dtype.bits // 8)
    weights.raw_data = weights.raw_data[:-1]
    with pytest.raises(ModelError, match=f"holds {needed - 1} bytes of raw_data.*{dtype.value} need {needed}"):
        cnncompile.load_onnx(_model(dtype, weights))


def test_the_reference_holds_a_narrow_value_in_its_type_and_converts_a_wide_feed():
    weights = numpy_helper.from_array(np.zeros(5, ml_dtypes.float8_e4m3fn), "w0")
    graph = cnncompile.load_onnx(_model(DType.FLOAT8E4M3FN, weights))
    x = np.array([1.0, 1.0625, 500.0, -0.3, 3.0], np.float32)  # fed as float32: rounded to float8 (no saturate)
    y = cnncompile.run_reference(graph, {"x": x}, dtype=DType.FLOAT32)["y"]
    np.testing.assert_array_equal(y, x.astype(ml_dtypes.float8_e4m3fn).astype(np.float32))


@pytest.mark.parametrize("dtype", [DType.FLOAT8E4M3FN, DType.FLOAT4E2M1, DType.INT4], ids=lambda d: d.name)
def test_tvm_refuses_a_narrow_type_naming_the_node_and_the_type(dtype):
    weights = numpy_helper.from_array(_values(dtype, 5), "w0")
    graph = cnncompile.load_onnx(_model(dtype, weights))
    with pytest.raises(UnsupportedError, match=f"graph input 'x' is {dtype.value}, an element type the TVM"):
        check_lowerable(graph)
    nodes = [helper.make_node("Cast", ["x"], ["q"], to=helper.np_dtype_to_tensor_dtype(dtype.numpy), name="narrowed"),
             helper.make_node("Cast", ["q"], ["y"], to=TensorProto.FLOAT, name="widened")]
    model = helper.make_model(helper.make_graph(nodes, "narrowing", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, (5,))], [helper.make_tensor_value_info("y", TensorProto.FLOAT, (5,))]),
        opset_imports=[helper.make_opsetid("", 25)])
    with pytest.raises(UnsupportedError, match=f"node 'narrowed' \\(Cast\\): 'q' is {dtype.value}, an element type"):
        check_lowerable(cnncompile.load_onnx(model))
