"""`cnncompile compile --explain` names every conv with its choice; a zoo model compiled with the
target passes validates against the float64 reference."""

from __future__ import annotations

import json

import pytest

import cnncompile
from cnncompile.api import compile as compile_model
from cnncompile.cli import main
from cnncompile.ops.conv import Conv
from cnncompile.ops.fused import FusedConv
from cnncompile.selection.candidates import Candidate
from cnncompile.selection.explain import choices_as_json
from cnncompile.tools.models import random_inputs
from cnncompile.tools.validate import judge

# The layouts assign-layouts picks follow the target's vector width; the explained build is only
# compiled, never run, so it names an AVX-512 CPU whatever the host has.
AVX512 = "llvm:skylake-avx512"


def conv_names(model: str) -> list[str]:
    graph = cnncompile.zoo.build(model.removeprefix("zoo:"))
    return [n.name for n in graph.nodes if n.op in (Conv, FusedConv)]


def test_explain_names_every_conv_with_its_choice_and_alternatives(tmp_path, capsys):
    assert main(["compile", "zoo:lenet5", "--target", AVX512, "-o", str(tmp_path / "a"), "--explain"]) == 0
    out = capsys.readouterr().out
    names = conv_names("zoo:lenet5")
    assert len(names) == 3
    blocks = out.split("\n")
    for name in names:
        (header,) = [i for i, line in enumerate(blocks) if line.startswith(f"{name}  ")]
        assert "->" in blocks[header], "the workload follows the node's name"
        chosen = blocks[header + 1]
        assert chosen.startswith("  chosen  ") and "(cost model)" in chosen and "est." in chosen
        Candidate.parse(chosen.split()[1])
    # c1 reads the image and stays NCHW, where three other algorithms compete; c3 and c5 are laid out
    # NCHW16c and NCHW8c by assign-layouts, and the candidates in other layouts are listed as ruled out
    assert out.count("  also    ") == 1
    assert "not     direct/NCHW: assign-layouts stores this conv's output as NCHW16c" in out
    assert "not     winograd_f4x3: Winograd F(m,3) is for 2-D 3x3 kernels, this one is 5x5" in out
    assert out.rstrip().splitlines()[-1].startswith("compiled zoo:lenet5")


def test_explain_json_lists_the_choices(tmp_path, capsys):
    assert main(["compile", "zoo:lenet5", "--target", "llvm", "-o", str(tmp_path / "a"), "--explain", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    choices = report["choices"]
    assert [c["node"] for c in choices] == conv_names("zoo:lenet5")
    for c in choices:
        assert c["source"] == "cost model"
        assert c["alternatives"][0]["candidate"] == c["chosen"]
        assert Candidate.parse(c["built"]).algorithm is Candidate.parse(c["chosen"]).algorithm
        assert all(alt["seconds"] > 0 for alt in c["alternatives"])


def test_without_explain_the_output_is_unchanged(tmp_path, capsys):
    assert main(["compile", "zoo:lenet5", "--target", "llvm", "-o", str(tmp_path / "a"), "--json"]) == 0
    assert "choices" not in json.loads(capsys.readouterr().out)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["zoo:mobilenet_v2", "zoo:resnet50"])
def test_what_explain_says_was_chosen_is_what_was_built(model):
    """Every conv's last choice is the kernel the backend built, and the kernel's plan is what its node asks:
    the layout the graph stores its output in, the chosen tile (MobileNetV2 has 1x1 convs that
    assign-layouts stores NCHW16c where selection first preferred NCHW8c)."""
    compiled = compile_model(model, "llvm", "O3")
    choices = choices_as_json(compiled.choices, compiled.kernels)
    assert sorted(c["node"] for c in choices) == sorted(conv_names(model))
    assert [c["built"] for c in choices] == [c["chosen"] for c in choices]
    nodes = {n.name: n for n in compiled.graph.nodes}
    for c in choices:
        chosen, node = Candidate.parse(c["chosen"]), nodes[c["node"]]
        assert (chosen.algorithm, chosen.layout, chosen.tile) == (node.attrs.algorithm, node.outputs[0].type.layout,
                                                                node.attrs.tile)
        assert c["plan"]["tile"] is None or len(c["plan"]["tile"]) == 3


@pytest.mark.slow
@pytest.mark.parametrize("model, size", [("mobilenet_v2", 32), ("resnet18", 56)])
def test_a_zoo_model_compiled_with_the_target_passes_validates(model, size):
    graph = cnncompile.zoo.build(model, (1, 3, size, size))
    compiled = compile_model(graph, "llvm", "O3")
    convs = [n for n in compiled.graph.nodes if n.op is FusedConv]
    assert len(compiled.choices) == len(convs) > 0
    assert {c.node for c in compiled.choices} == {n.name for n in convs}
    result = judge(compiled, graph, random_inputs(graph, seed=1))
    assert result.passed, result.report()


def test_the_selections_own_layout_transforms_run_on_tvm(tmp_path):
    """A TOML pipeline may list select-conv-algorithms alone: each conv then computes in its preferred
    layout between the transforms the pass put around it, and the build still matches the reference."""
    pipeline = tmp_path / "select.toml"
    pipeline.write_text('base = "O3"\n[[pass]]\nname = "select-conv-algorithms"\n')
    graph = cnncompile.zoo.build("resnet18", (1, 3, 32, 32))
    compiled = compile_model(graph, "llvm", str(pipeline))
    laid_out = [n for n in compiled.graph.nodes if n.op is FusedConv and n.attrs.layout is not None]
    transforms = [n for n in compiled.graph.nodes if n.op.name == "LayoutTransform"]
    assert laid_out and len(transforms) >= len(laid_out)
    assert {c.node for c in compiled.choices} == {n.name for n in compiled.graph.nodes if n.op is FusedConv}
    result = judge(compiled, graph, random_inputs(graph, seed=2))
    assert result.passed, result.report()
