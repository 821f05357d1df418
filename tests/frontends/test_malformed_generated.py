"""Malformed models generated here, never stored: each case is one clear CnnCompileError.

The table covers what a damaged or hand-edited model holds: tensors whose data disagrees
with their dims, external data whose offset or length is negative, not an integer, or
past the file's end, wrong attribute types, huge, zero or negative pads, strides, kernels
and dims, unknown opsets and domains. Each case is checked through `load_model` (class
and message: the node or tensor, and what is wrong) and through the CLI (exit 2, one
line).

The fuzz tests mutate a valid Conv/MaxPool/Gemm model (proto_mutations.py) with hypothesis,
derandomized, so every run tries the same inputs: through `load_model`, and, fewer because
compiling takes seconds, through `cnncompile compile -p O0 --target llvm`; a slow test runs
the atheris fuzzer (benchmarks/fuzz_loader.py) for ATHERIS_SECONDS. Each records the number
of inputs tried as the junit property `fuzz_inputs` and prints it on the terminal.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from cnncompile.cli import main
from cnncompile.errors import AttrError, CnnCompileError, ModelError, ShapeError, UnsupportedError
from cnncompile.frontends.load import load_model
from cnncompile.frontends.onnx_export import to_onnx
from malformed_harness import assert_one_line_cli_error, conv, make
from proto_mutations import EXTERNAL_FILE, MILD_MUTATIONS, MUTATIONS, externalize, mutate, valid_model

WEIGHT_BYTES = 4 * 3 * 3 * 3 * 4  # conv()'s float32 weight


def external(**entries: str) -> Callable[[Path], onnx.ModelProto]:
    """conv() with its weight in 'w.bin' beside the model, the external_data entries overridden."""
    def build(folder: Path) -> onnx.ModelProto:
        model = conv()
        tensor = model.graph.initializer[0]
        (folder / "w.bin").write_bytes(tensor.raw_data)
        fields = {"location": "w.bin", "offset": "0", "length": str(WEIGHT_BYTES), **entries}
        for key, value in fields.items():
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        tensor.ClearField("raw_data")
        tensor.data_location = TensorProto.EXTERNAL
        return model
    return build


def weight(edit: Callable[[TensorProto], None], weights=(4, 3, 3, 3)) -> Callable[[Path], onnx.ModelProto]:
    """conv() with its weight tensor edited (weights above 256 elements take the split-out path)."""
    def build(_folder: Path) -> onnx.ModelProto:
        model = conv(weights=weights)
        edit(model.graph.initializer[0])
        return model
    return build


def setter(**fields) -> Callable[[TensorProto], None]:
    def edit(tensor: TensorProto) -> None:
        for name, value in fields.items():
            if name == "dims":
                del tensor.dims[:]
                tensor.dims.extend(value)
            elif name == "float_data":
                tensor.ClearField("raw_data")
                tensor.float_data.extend(value)
            else:
                setattr(tensor, name, value)
    return edit


def node_model(op: str, **attrs) -> Callable[[Path], onnx.ModelProto]:
    """One `op` node named 'n1' on the (1, 3, 8, 8) input, its attributes as given."""
    def build(_folder: Path) -> onnx.ModelProto:
        if op == "Conv":
            return conv(name="n1", **{"pads": (0, 0, 0, 0), **attrs})
        return make([helper.make_node(op, ["x"], ["y"], name="n1", **attrs)])
    return build


def typed_attribute(op: str, name: str, value, **attrs) -> Callable[[Path], onnx.ModelProto]:
    """A node whose attribute `name` has the type `value` gives it rather than the declared one."""
    def build(folder: Path) -> onnx.ModelProto:
        model = node_model(op, **attrs)(folder)
        node = model.graph.node[0]
        kept = [a for a in node.attribute if a.name != name]
        del node.attribute[:]
        node.attribute.extend([*kept, helper.make_attribute(name, value)])
        return model
    return build


def input_dims(*dims: int) -> Callable[[Path], onnx.ModelProto]:
    return lambda _folder: make([helper.make_node("Relu", ["x"], ["y"], name="relu1")], inputs=[("x", dims)])


def opsets(*imports: tuple[str, int], domain: str = "") -> Callable[[Path], onnx.ModelProto]:
    def build(_folder: Path) -> onnx.ModelProto:
        model = make([helper.make_node("Relu", ["x"], ["y"], name="relu1", domain=domain)])
        del model.opset_import[:]
        model.opset_import.extend(helper.make_opsetid(d, v) for d, v in imports)
        return model
    return build


W = "initializer 'w'"
BIG = 1 << 62
CASES: dict[str, tuple[Callable[[Path], onnx.ModelProto], type[CnnCompileError], str]] = {
    # external data: every declared number is checked against the file before it is read
    "external length far past the file's end": (
        external(length=str(1 << 40)), ModelError,
        f"{W}: external file 'w.bin' holds 432 bytes at offset 0 \\(it is 432 bytes long\\), not the "
        f"{1 << 40} the model declares"),
    "external length past any index": (external(length="9" * 25), ModelError, f"{W}: external file 'w.bin' holds 432"),
    "external offset past the file's end": (
        external(offset="4096"), ModelError, f"{W}: external data offset 4096 is past the end of 'w.bin', which "
                                             "holds 432 bytes"),
    "external offset + length past the end": (
        external(offset="400"), ModelError, f"{W}: external file 'w.bin' holds 32 bytes at offset 400 .*not the 432"),
    "external negative offset": (external(offset="-8"), ModelError,
                                 f"{W}: external data offset '-8' is not a non-negative decimal integer"),
    "external negative length": (external(length="-1"), ModelError, f"{W}: external data length '-1' is not a"),
    "external non-integer length": (external(length="1e3"), ModelError, f"{W}: external data length '1e3' is not"),
    "external fractional offset": (external(offset="0.5"), ModelError, f"{W}: external data offset '0.5' is not"),
    "external length disagrees with dims": (
        external(length="428"), ModelError,
        f"{W}: external data in 'w.bin' is 428 bytes long, but its dims 4x3x3x3 of float32 need 432"),
    "external location with a NUL byte": (external(location="w\x00.bin"), ModelError,
                                          f"{W}: external data location 'w\\\\x00.bin' is not a usable path"),
    "external location that is a folder": (external(location="."), ModelError,
                                           f"{W}: external data file '.' is not a file in"),
    # tensors whose data disagrees with their dims and element type
    "raw_data shorter than dims": (
        weight(lambda t: setattr(t, "raw_data", t.raw_data[:-4])), ModelError,
        f"{W} holds 428 bytes of raw_data, but its dims 4x3x3x3 of float32 need 432"),
    "raw_data longer than dims (split-out weight)": (
        weight(lambda t: setattr(t, "raw_data", t.raw_data + bytes(2)), weights=(8, 3, 3, 3)), ModelError,
        f"{W} holds 866 bytes of raw_data, but its dims 8x3x3x3 of float32 need 864"),
    "float_data of the wrong count": (weight(setter(float_data=[1.0] * 7)), ModelError,
                                      f"{W} holds 7 values in float_data, but its dims 4x3x3x3 of float32 need 108"),
    "negative initializer dim": (weight(setter(dims=[4, 3, -3, 3])), ModelError,
                                 f"{W} has dims 4x3x-3x3: dim 2 is -3; a dim is a size"),
    "huge initializer dims": (weight(setter(dims=[BIG, BIG])), ModelError,
                              f"{W} holds 432 bytes of raw_data, but its dims {BIG}x{BIG} of float32 need"),
    "initializer of undefined element type": (weight(setter(data_type=0)), UnsupportedError,
                                              f"{W} has element type UNDEFINED, which cnncompile does not support"),
    "initializer of an unknown element type": (weight(setter(data_type=99)), UnsupportedError,
                                               f"{W} has element type 99"),
    "string initializer": (weight(setter(data_type=TensorProto.STRING)), UnsupportedError,
                           f"{W} has element type STRING"),
    # wrong attribute types
    "pads as floats": (typed_attribute("Conv", "pads", [1.0, 1.0, 1.0, 1.0]), AttrError,
                       "node 'n1' \\(Conv\\): attribute 'pads' is FLOATS, but Conv-11 declares it INTS"),
    "strides as a string": (typed_attribute("Conv", "strides", "2"), AttrError,
                            "node 'n1' \\(Conv\\): attribute 'strides' is STRING, but Conv-11 declares it INTS"),
    "group as a tensor": (typed_attribute("Conv", "group", numpy_helper.from_array(np.ones(2, np.int64))),
                          AttrError, "node 'n1' \\(Conv\\): attribute 'group' is TENSOR, but Conv-11 declares it INT"),
    "auto_pad as an int": (typed_attribute("Conv", "auto_pad", 3), AttrError,
                           "node 'n1' \\(Conv\\): attribute 'auto_pad' is INT, but Conv-11 declares it STRING"),
    "pool kernel_shape as a float": (typed_attribute("MaxPool", "kernel_shape", 2.0), AttrError,
                                     "node 'n1' \\(MaxPool\\): attribute 'kernel_shape' is FLOAT, but MaxPool-12"),
    # huge, zero and negative pads, strides and kernels
    "huge pads": (node_model("Conv", pads=(BIG, BIG, BIG, BIG)), ModelError,
                  "node 'n1' \\(Conv\\) output 'y' would be float32\\[1x4x9223372036854775814x9223372036854775814\\]"
                  ".* more than a 64-bit index can address"),
    "negative strides": (node_model("Conv", strides=[-1, 1]), ShapeError, "node 'n1' \\(Conv\\)"),
    "zero strides": (node_model("Conv", strides=[0, 0]), ShapeError, "node 'n1' \\(Conv\\)"),
    "negative dilations": (node_model("Conv", dilations=[-2, 1]), ShapeError, "node 'n1' \\(Conv\\)"),
    "kernel_shape disagreeing with the weight": (node_model("Conv", kernel_shape=[5, 5]), ShapeError,
                                                 "node 'n1' \\(Conv\\)"),
    "zero group": (node_model("Conv", group=0), ShapeError, "node 'n1' \\(Conv\\)"),
    "huge pool kernel": (node_model("MaxPool", kernel_shape=[BIG, BIG]), ShapeError, "node 'n1' \\(MaxPool\\)"),
    "negative pool kernel": (node_model("MaxPool", kernel_shape=[-2, 2]), ShapeError, "node 'n1' \\(MaxPool\\)"),
    "zero pool kernel": (node_model("AveragePool", kernel_shape=[0, 2]), ShapeError, "node 'n1' \\(AveragePool\\)"),
    "zero pool strides": (node_model("MaxPool", kernel_shape=[2, 2], strides=[0, 1]), ShapeError,
                          "node 'n1' \\(MaxPool\\)"),
    "huge pool pads": (node_model("MaxPool", kernel_shape=[2, 2], pads=[BIG] * 4), ModelError,
                       "node 'n1' \\(MaxPool\\) output 'y' would be .* more than a 64-bit index"),
    "pads of the wrong length": (node_model("Conv", pads=(1, 1, 1)), ShapeError,
                                 "node 'n1' \\(Conv\\): Conv: pads has 3 entries, expected 4 for 2-D input"),
    "strides of the wrong length": (node_model("Conv", strides=[1, 1, 1]), ShapeError,
                                    "node 'n1' \\(Conv\\): Conv: strides has 3 entries, expected 2"),
    "kernel_shape of the wrong rank": (node_model("Conv", kernel_shape=[3]), ShapeError,
                                       "node 'n1' \\(Conv\\): Conv kernel_shape \\[3\\] disagrees with W"),
    "pool without kernel_shape": (node_model("MaxPool"), AttrError,
                                  "node 'n1' \\(MaxPool\\): the required attribute 'kernel_shape' is missing"),
    # zero and negative dims
    "negative input dim": (input_dims(1, -3, 8, 8), ModelError, "graph input 'x' \\[1, -3, 8, 8\\]: dim 1 is -3"),
    "huge input dims": (input_dims(BIG, BIG, BIG), ModelError,
                        "graph input 'x' would be float32\\[4611686018427387904x.* more than a 64-bit index"),
    # unknown opsets and domains
    "ai.onnx opset 0": (opsets(("", 0)), UnsupportedError, "imports ai.onnx opset 0, but opsets start at 1"),
    "ai.onnx opset negative": (opsets(("", -5)), UnsupportedError, "opset -5, but opsets start at 1"),
    "no ai.onnx opset": (opsets(), ModelError, "node 'relu1' \\(Relu\\) is an ai.onnx op, but the model imports no "
                                               "ai.onnx opset"),
    "an unknown domain imported, the node in it": (opsets(("", 17), ("com.example", 1), domain="com.example"),
                                                   UnsupportedError, "Relu \\(com.example, opset 1\\) x1: 'relu1'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_malformed_model_is_one_clear_error(case, tmp_path, capsys):
    build, error, message = CASES[case]
    path = tmp_path / "model.onnx"
    path.write_bytes(build(tmp_path).SerializeToString())
    with pytest.raises(error, match=message) as info:
        load_model(str(path))
    assert str(info.value).isprintable()
    assert assert_one_line_cli_error(str(path), capsys) == f"cnncompile: error: {info.value}"


ACCEPTED = {
    "strides larger than the input (one window)": (node_model("Conv", strides=[BIG, BIG]), (1, 4, 1, 1)),
    "an unused domain imported at a huge version": (opsets(("", 17), ("com.example", BIG)), (1, 3, 8, 8)),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_odd_but_legal_models_import(case, tmp_path):
    build, shape = ACCEPTED[case]
    path = tmp_path / "model.onnx"
    path.write_bytes(build(tmp_path).SerializeToString())
    assert load_model(str(path)).outputs[0].type.shape == shape


# -- fuzzing: a valid model mutated at random, deterministically ---------------------------------

LOAD_EXAMPLES = 1000
COMPILE_EXAMPLES = 8
ATHERIS_SECONDS = 20
FUZZ = dict(derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def mutated_model(folder: Path, rng: random.Random, count: int, external_weight: bool, mutations) -> Path:
    """valid_model() with `count` mutations, written to folder/model.onnx (and its weight file)."""
    model = valid_model()
    if external_weight:
        externalize(model, "wg", folder)
    note("; ".join(mutate(model, rng, count, mutations)))
    path = folder / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def report(request, record_property, what: str, outcomes: Counter) -> None:
    """Record how many inputs were tried (a junit property) and say it on the terminal."""
    record_property("fuzz_inputs", sum(outcomes.values()))
    record_property("fuzz_outcomes", dict(outcomes))
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is not None and capture is not None:  # None in an xdist worker: the property remains
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\n{what}: {sum(outcomes.values())} inputs, " + ", ".join(
                f"{name} {n}" for name, n in outcomes.most_common()))


def test_fuzz_load_model(request, record_property):
    """Every mutated model imports or is a CnnCompileError: never another exception, never a crash."""
    outcomes: Counter = Counter()

    @settings(max_examples=LOAD_EXAMPLES, **FUZZ)
    @given(rng=st.randoms(use_true_random=False), count=st.integers(1, 3), external_weight=st.booleans())
    def one(rng, count, external_weight):
        with tempfile.TemporaryDirectory() as folder:
            path = mutated_model(Path(folder), rng, count, external_weight, MUTATIONS)
            try:
                load_model(str(path))
                outcomes["imported"] += 1
            except CnnCompileError as err:
                assert str(err).isprintable()
                outcomes[type(err).__name__] += 1

    one()
    report(request, record_property, "fuzz load_model", outcomes)
    assert len(outcomes) >= 4  # the mutations reach more than one kind of check


@pytest.mark.slow
def test_fuzz_cli_compile(request, record_property, capsys):
    """`cnncompile compile -p O0 --target llvm` on mildly mutated models: exit 0, or 2 with one line."""
    outcomes: Counter = Counter()

    @settings(max_examples=COMPILE_EXAMPLES, **FUZZ)
    @given(rng=st.randoms(use_true_random=False), external_weight=st.booleans())
    def one(rng, external_weight):
        with tempfile.TemporaryDirectory() as folder:
            path = mutated_model(Path(folder), rng, 1, external_weight, MILD_MUTATIONS)
            code = main(["compile", str(path), "-p", "O0", "--target", "llvm", "-o", os.path.join(folder, "out")])
            err = capsys.readouterr().err.strip()
            assert code in (0, 2), err
            if code == 2:
                assert len(err.splitlines()) == 1 and err.startswith("cnncompile: error: "), err
            outcomes["compiled" if code == 0 else "refused"] += 1

    one()
    report(request, record_property, "fuzz cnncompile compile", outcomes)


# -- regressions: what the fuzzers found ----------------------------------------------------------


def empty_dilations(declared_output_shape: bool) -> onnx.ModelProto:
    model = valid_model() if declared_output_shape else conv(pads=(0, 0, 0, 0), name="conv1")
    conv_node = model.graph.node[0]
    kept = [a for a in conv_node.attribute if a.name != "dilations"]
    del conv_node.attribute[:]
    conv_node.attribute.extend([*kept, helper.make_attribute("dilations", [], attr_type=onnx.AttributeProto.INTS)])
    return model


@pytest.mark.parametrize("declared_output_shape", [True, False])
def test_an_empty_list_attribute_reads_as_absent(declared_output_shape, tmp_path):
    """test_fuzz_cli_compile found Conv dilations=[]: it imported, then the artifact's ONNX export
    raised onnx's ValueError (an empty list's attribute type cannot be inferred); without a declared
    output shape, onnx's inference gave up on it silently and the checker's complaint named nothing.
    onnxruntime reads an empty list as the attribute's default, and so does the importer now."""
    path = tmp_path / "model.onnx"
    path.write_bytes(empty_dilations(declared_output_shape).SerializeToString())
    graph = load_model(str(path))
    conv_node = next(n for n in graph.nodes if n.op.name == "Conv")
    assert conv_node.attrs.dilations in (None, (1, 1))
    onnx.checker.check_model(to_onnx(graph), full_check=True)


def test_an_output_shape_onnx_cannot_infer_lets_the_shape_rules_speak(tmp_path, capsys):
    """Conv pads of length 3 and no declared output shape: onnx's inference gives up silently and
    its checker says only "Field 'shape' of 'type' is required but missing"."""
    path = tmp_path / "model.onnx"
    path.write_bytes(conv(pads=(0, 0, 0)).SerializeToString())
    with pytest.raises(ShapeError, match="node 'conv1' \\(Conv\\): Conv: pads has 3 entries, expected 4"):
        load_model(str(path))
    assert "pads has 3 entries" in assert_one_line_cli_error(str(path), capsys)


@pytest.mark.slow
def test_atheris_fuzz_loader_finds_no_crash(request, record_property, tmp_path):
    """benchmarks/fuzz_loader.py, coverage-guided, for a bounded time: no input may crash the importer."""
    pytest.importorskip("atheris")
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "fuzz_loader.py"
    crashes = tmp_path / "crashes"
    run = subprocess.run([sys.executable, str(script), f"--seconds={ATHERIS_SECONDS}", "--runs=1000000",
                          f"--crashes={crashes}"], capture_output=True, text=True, timeout=ATHERIS_SECONDS + 120,
                         cwd=tmp_path)
    assert run.returncode == 0 and "fuzz_loader: 0 crashes" in run.stdout, run.stdout[-3000:] + run.stderr[-3000:]
    summary = next(line for line in run.stdout.splitlines() if line.startswith("fuzz_loader: ") and " inputs " in line)
    tried = int(summary.split()[1])  # "fuzz_loader: N inputs in S s (R/s): ModelError n, imported n, ..."
    outcomes = Counter({name: int(n) for name, n in (part.rsplit(" ", 1)
                                                     for part in summary.split(": ", 2)[2].split(", "))})
    assert sum(outcomes.values()) == tried and "CRASH" not in outcomes
    assert not crashes.exists(), sorted(crashes.iterdir())
    report(request, record_property, "fuzz atheris (benchmarks/fuzz_loader.py)", outcomes)


def test_text_that_is_not_utf8_is_refused(tmp_path, capsys):
    """benchmarks/fuzz_loader.py found an external data location of invalid UTF-8: protobuf hands
    such a string back as bytes, and `base / location` raised TypeError."""
    model = valid_model()
    externalize(model, "wg", tmp_path)
    data = model.SerializeToString().replace(EXTERNAL_FILE.encode(), b"weights\xd3\x9d\x96\x91"[: len(EXTERNAL_FILE)])
    path = tmp_path / "model.onnx"
    path.write_bytes(data)
    message = "graph.initializer\\[2\\].external_data\\[0\\].value is not UTF-8 text"
    with pytest.raises(ModelError, match=message):
        load_model(str(path))
    assert "is not UTF-8 text" in assert_one_line_cli_error(str(path), capsys)
