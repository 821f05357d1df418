"""Old and new opsets import with opset-21 meaning.

onnxruntime runs each old-opset model as it was written (it implements every opset from
7 on), so it is the oracle for the converter's traps; it refuses opset 6, where the
oracle is NumPy written from the old spec, or the outputs onnx stored with its
pytorch-converted models.
"""

import enum
import os

import numpy as np
import onnx
import onnx.defs
import pytest
from onnx import TensorProto, helper, numpy_helper

import cnncompile
import cnncompile.frontends.onnx
from cnncompile.errors import UnsupportedError
from cnncompile.frontends import onnx_versions
from cnncompile.frontends.onnx_attrs import field_hints
from cnncompile.frontends.onnx_versions import IGNORED_ATTRIBUTES, SAME_SEMANTICS_SINCE, TARGET_OPSET
from cnncompile.numerics import relative_error
from cnncompile.ops import REGISTRY
from onnx_harness import run_ort

NEWEST = onnx.defs.onnx_opset_version()
ONNX_OPS = sorted(name for name, op in REGISTRY.items() if not op.domain)
DATA = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
UNREADABLE = {("Constant", "value_string"), ("Constant", "value_strings"), ("Constant", "sparse_value")}


def legacy_model(nodes, inputs, initializers=(), opset=9, out_rank=4, outputs=("y",)) -> onnx.ModelProto:
    """An IR-3 model as old exporters wrote it: initializers listed among the inputs."""
    inits = [numpy_helper.from_array(np.asarray(a), n) for n, a in initializers]
    graph = helper.make_graph(
        nodes, "legacy",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs]
        + [helper.make_tensor_value_info(t.name, t.data_type, t.dims) for t in inits],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, [f"d{i}" for i in range(out_rank)]) for o in outputs],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 3
    onnx.checker.check_model(model)
    return model


def assert_matches_ort(model: onnx.ModelProto, feeds: dict, tol: float = 1e-5) -> None:
    expected = run_ort(model, feeds)
    graph = cnncompile.load_onnx(model)
    got = cnncompile.run_reference(graph, feeds)
    for value, want in zip(graph.outputs, expected):
        assert got[value.name].shape == want.shape
        assert relative_error(got[value.name], want) <= tol


# -- the claim that opsets 13.. mean what 21 means, checked against onnx.defs ---------------


def _versions(op: str) -> list[onnx.defs.OpSchema]:
    schemas = {}
    for opset in range(1, NEWEST + 1):
        try:
            schema = onnx.defs.get_schema(op, opset)
        except onnx.defs.SchemaError:
            continue
        schemas[schema.since_version] = schema
    return [schemas[v] for v in sorted(schemas)]


def _default(attr) -> bytes:
    return attr.default_value.SerializeToString() if attr.default_value.name else b""


def _same_meaning(op, name: str, old, new) -> bool:
    """Whether two versions' defaults mean the same to the op: the same bytes, or two spellings of one member
    of the attribute's enum (GridSample-20 renamed its modes bilinear and bicubic to linear and cubic)."""
    if _default(old) == _default(new):
        return True
    hint = field_hints(op.attrs).get(op.onnx_aliases.get(name, name))
    if not (isinstance(hint, type) and issubclass(hint, enum.Enum) and old.default_value.name and new.default_value.name):
        return False
    old_value, new_value = (helper.get_attribute_value(a.default_value) for a in (old, new))
    return hint(old_value.decode()) is hint(new_value.decode())


@pytest.mark.parametrize("op_name", ONNX_OPS)
def test_each_version_from_13_only_extends_the_op(op_name):
    """Every change after the opset-13 version keeps old models' meaning when read by name.

    Allowed: wider type constraints; new optional attributes and inputs; an attribute
    turned input at the position the op reads it from either way. A changed default, a
    removed type or a new required operand would change what an old node means.
    """
    op = REGISTRY[op_name]
    versions = _versions(op_name)
    in_effect_at_13 = [s for s in versions if s.since_version <= SAME_SEMANTICS_SINCE][-1:]
    schemas = in_effect_at_13 + [s for s in versions if s.since_version > SAME_SEMANTICS_SINCE]
    for old, new in zip(schemas, schemas[1:]):
        where = f"{op_name}-{new.since_version}"
        for name, attr in new.attributes.items():
            if name in old.attributes:
                assert _same_meaning(op, name, old.attributes[name], attr), f"{where}: default of {name} changed"
            else:
                assert not attr.required, f"{where}: new required attribute {name}"
        for name in set(old.attributes) - set(new.attributes):
            assert name in op.onnx_inputs_as_attrs.values(), f"{where}: attribute {name} dropped"
        assert len(new.inputs) >= len(old.inputs), f"{where}: inputs dropped"
        for position, formal in enumerate(new.inputs[len(old.inputs):], start=len(old.inputs)):
            moved = op.onnx_inputs_as_attrs.get(position) in old.attributes
            assert moved or formal.option != onnx.defs.OpSchema.FormalParameterOption.Single, \
                f"{where}: new required input {formal.name}"
        assert new.outputs[0].name == old.outputs[0].name or op_name == "BatchNormalization"
        new_types = _operand_types(new)
        for operand, types in _operand_types(old).items():
            assert operand not in new_types or types <= new_types[operand], f"{where}: types removed from {operand}"


def _operand_types(schema: onnx.defs.OpSchema) -> dict[str, set[str]]:
    """Each input's and output's allowed types, by position: type parameters are renamed between versions
    (QuantizeLinear-23's T2 is the scale's, -21's the output's), positions keep their meaning."""
    constraints = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}
    operands = [(f"input {i}", f) for i, f in enumerate(schema.inputs)]
    operands += [(f"output {i}", f) for i, f in enumerate(schema.outputs)]
    return {name: constraints.get(formal.type_str, {formal.type_str}) for name, formal in operands}


@pytest.mark.parametrize("op_name", ONNX_OPS)
def test_every_attribute_from_13_to_newest_is_read(op_name):
    op = REGISTRY[op_name]
    hints = field_hints(op.attrs)
    for schema in _versions(op_name):
        if schema.since_version < SAME_SEMANTICS_SINCE:
            continue
        for name in schema.attributes:
            known = op.onnx_aliases.get(name, name) in hints
            assert known or (op_name, name) in IGNORED_ATTRIBUTES or (op_name, name) in UNREADABLE, \
                f"{op_name}-{schema.since_version}: attribute {name} has no field"


# -- conversion happens below 13 only, and never sees the weights ----------------------------


@pytest.fixture
def conversions(monkeypatch):
    """The size of each model handed to onnx's converter (run in-process, so it can be seen)."""
    monkeypatch.setattr(cnncompile.frontends.onnx, "run_forked", lambda function, *args, what: function(*args))
    sizes = []
    convert = onnx_versions.version_converter.convert_version

    def recording(model, target):
        sizes.append(model.ByteSize())
        return convert(model, target)

    monkeypatch.setattr(onnx_versions.version_converter, "convert_version", recording)
    return sizes


def relu_model(opset: int) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    return legacy_model([helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Relu", ["c"], ["y"])],
                        [("x", (1, 3, 8, 8))], [("w", rng.standard_normal((64, 3, 3, 3)).astype(np.float32))],
                        opset=opset)


@pytest.mark.parametrize("opset", [SAME_SEMANTICS_SINCE, TARGET_OPSET, NEWEST])
def test_models_from_opset_13_import_unconverted(opset, conversions):
    cnncompile.load_onnx(relu_model(opset))
    assert conversions == []


def test_older_models_are_converted_without_their_weights(conversions):
    model = relu_model(SAME_SEMANTICS_SINCE - 1)
    graph = cnncompile.load_onnx(model)
    assert len(conversions) == 1 and conversions[0] < 2048 < model.ByteSize()
    weights = [a for a in graph.constants.values() if a.shape == (64, 3, 3, 3)]
    np.testing.assert_array_equal(weights[0], numpy_helper.to_array(model.graph.initializer[0]))


# -- the traps, against onnxruntime running the old model as written -------------------------


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("opset", [9, 11, 12])
@pytest.mark.parametrize("axis", [None, 0, 1, 2, -1])
def test_softmax_before_13_flattens_from_axis(op, opset, axis):
    x = np.random.default_rng(opset).standard_normal((2, 3, 4, 5)).astype(np.float32)
    attrs = {} if axis is None else {"axis": axis}
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node(op, ["r"], ["y"], **attrs)]
    assert_matches_ort(legacy_model(nodes, [("x", x.shape)], opset=opset), {"x": x})


RESIZE_SCALES = [(1, 1, 2, 2), (1, 1, 2.5, 1.5), (1, 1, 0.6, 0.5), (1, 1, 0.4, 2.2), (1, 1, 3, 1)]


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("scales", RESIZE_SCALES)
def test_resize_10_uses_asymmetric_coordinates(mode, scales):
    x = np.random.default_rng(1).standard_normal((1, 2, 5, 7)).astype(np.float32)
    node = helper.make_node("Resize", ["x", "scales"], ["y"], mode=mode)
    model = legacy_model([node], [("x", x.shape)], [("scales", np.array(scales, np.float32))], opset=10)
    assert_matches_ort(model, {"x": x})


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("scales", [(1, 1, 2, 2), (1, 1, 2.5, 1.5), (1, 1, 3, 1)])
@pytest.mark.parametrize("opset", [7, 9])
def test_upsample_becomes_an_asymmetric_resize(mode, scales, opset):
    x = np.random.default_rng(2).standard_normal((1, 2, 3, 4)).astype(np.float32)
    if opset == 7:
        model = legacy_model([helper.make_node("Upsample", ["x"], ["y"], mode=mode, scales=[float(s) for s in scales])],
                             [("x", x.shape)], opset=7)
    else:
        model = legacy_model([helper.make_node("Upsample", ["x", "scales"], ["y"], mode=mode)],
                             [("x", x.shape)], [("scales", np.array(scales, np.float32))], opset=9)
    assert_matches_ort(model, {"x": x})
    assert [n.op.name for n in cnncompile.load_onnx(model).nodes] == ["Resize"]


def test_resize_10_that_enlarges_and_shrinks_becomes_two_resizes():
    model = legacy_model([helper.make_node("Resize", ["x", "scales"], ["y"])], [("x", (1, 2, 5, 7))],
                         [("scales", np.array([1, 1, 0.4, 2.2], np.float32))], opset=10)
    graph = cnncompile.load_onnx(model)
    assert [(n.attrs.axes, n.attrs.nearest_mode.value) for n in graph.nodes] == [((3,), "floor"), ((2,), "ceil")]


@pytest.mark.parametrize("opset", [7, 8])
@pytest.mark.parametrize("spatial", [0, 1])
def test_batchnorm_spatial_survives_conversion(opset, spatial):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    shape = (3,) if spatial else (3, 4, 5)
    stats = [(n, rng.uniform(0.5, 1.5, shape).astype(np.float32)) for n in ("scale", "b", "mean", "var")]
    node = helper.make_node("BatchNormalization", ["x", "scale", "b", "mean", "var"], ["y"], spatial=spatial)
    assert_matches_ort(legacy_model([node], [("x", x.shape)], stats, opset=opset), {"x": x})


@pytest.mark.parametrize("opset", [7, 10, 11])
def test_old_dropout_is_the_identity(opset):
    x = np.random.default_rng(4).standard_normal((2, 3)).astype(np.float32)
    node = helper.make_node("Dropout", ["x"], ["y"], ratio=0.3)
    assert_matches_ort(legacy_model([node], [("x", x.shape)], opset=opset, out_rank=2), {"x": x})


# -- opset 6, which onnxruntime no longer runs ---------------------------------------------


@pytest.mark.parametrize("op, numpy_op", [("Add", np.add), ("Sub", np.subtract), ("Mul", np.multiply),
                                          ("Div", np.divide)])
@pytest.mark.parametrize("axis, b_shape", [(1, (3,)), (1, (3, 4)), (2, (4,)), (None, (5,)), (None, (4, 5)),
                                           (0, (2, 3, 4, 5))])
def test_legacy_broadcast_lines_b_up_at_axis(op, numpy_op, axis, b_shape):
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((2, 3, 4, 5)), rng.uniform(0.5, 1.5, b_shape)
    attrs = {"broadcast": 1} if axis is None else {"broadcast": 1, "axis": axis}
    model = legacy_model([helper.make_node(op, ["a", "b"], ["y"], **attrs)], [("a", a.shape)],
                         [("b", b.astype(np.float32))], opset=6)
    start = a.ndim - b.ndim if axis is None else axis
    expected = numpy_op(a, b.reshape(b.shape + (1,) * (a.ndim - start - b.ndim)))
    graph = cnncompile.load_onnx(model)
    got = cnncompile.run_reference(graph, {"a": a})
    assert relative_error(got["y"], expected) <= 1e-6


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4), (2, 3, 4, 5)])
def test_prelu_6_slope_is_per_channel(shape):
    rng = np.random.default_rng(6)
    x, slope = rng.standard_normal(shape), rng.uniform(0.1, 0.5, 3)
    model = legacy_model([helper.make_node("PRelu", ["x", "slope"], ["y"])], [("x", shape)],
                         [("slope", slope.astype(np.float32))], opset=6, out_rank=len(shape))
    per_channel = slope.reshape((3,) + (1,) * (len(shape) - 2))
    got = cnncompile.run_reference(cnncompile.load_onnx(model), {"x": x})
    assert relative_error(got["y"], np.where(x >= 0, x, per_channel * x)) <= 1e-6


@pytest.mark.parametrize("case", ["pytorch-converted/test_PReLU_2d_multiparam",
                                  "pytorch-operator/test_operator_add_broadcast",
                                  "pytorch-converted/test_BatchNorm2d_eval", "pytorch-converted/test_Softmax"])
def test_opset_6_exports_match_their_recorded_outputs(case):
    folder = os.path.join(DATA, case)
    graph = cnncompile.load_onnx(os.path.join(folder, "model.onnx"))

    def recorded(kind: str, index: int) -> np.ndarray:
        return numpy_helper.to_array(onnx.load_tensor(os.path.join(folder, "test_data_set_0", f"{kind}_{index}.pb")))

    got = cnncompile.run_reference(graph, {v.name: recorded("input", i) for i, v in enumerate(graph.inputs)})
    for i, value in enumerate(graph.outputs):
        assert relative_error(got[value.name], recorded("output", i)) <= 1e-5


@pytest.mark.parametrize("op", ["BatchNormalization", "Dropout"])
def test_is_test_0_asks_for_training_and_is_refused(op):
    inputs = ["x", "scale", "b", "mean", "var"] if op == "BatchNormalization" else ["x"]
    stats = [(n, np.ones(3, np.float32)) for n in inputs[1:]]
    model = legacy_model([helper.make_node(op, inputs, ["y"], is_test=0, name="train_me")],
                         [("x", (2, 3, 4, 5))], stats, opset=6)
    with pytest.raises(UnsupportedError, match=f"node 'train_me' \\({op}, opset 6\\) has is_test=0.*eval mode"):
        cnncompile.load_onnx(model)


def test_a_conversion_the_converter_refuses_names_the_node_and_opset():
    model = legacy_model([helper.make_node("Cast", ["x"], ["y"], to="DOUBLE", name="old_cast")],
                         [("x", (2, 3))], opset=5, out_rank=2)
    with pytest.raises(UnsupportedError, match="opset-5 model.*node 'old_cast' \\(Cast, opset 5\\).*re-export"):
        cnncompile.load_onnx(model)


# -- newer than 21 ----------------------------------------------------------------------------


def test_newest_opset_cast_with_round_mode_imports():
    x = np.random.default_rng(7).standard_normal((2, 3)).astype(np.float32)
    nodes = [helper.make_node("Cast", ["x"], ["d"], to=TensorProto.DOUBLE, round_mode="nearest"),
             helper.make_node("Relu", ["d"], ["y"])]
    graph_proto = helper.make_graph(nodes, "new", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                                    [helper.make_tensor_value_info("y", TensorProto.DOUBLE, x.shape)])
    model = helper.make_model(graph_proto, opset_imports=[helper.make_opsetid("", NEWEST)])
    got = cnncompile.run_reference(cnncompile.load_onnx(model), {"x": x})
    np.testing.assert_array_equal(got["y"], np.maximum(x.astype(np.float64), 0))
