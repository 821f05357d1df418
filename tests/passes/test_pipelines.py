"""Pipelines as data: the catalog, the presets, and user TOML files with options."""

import pytest

from cnncompile.errors import CnnCompileError
from cnncompile.ops.elementwise import Clip, Relu
from cnncompile.passes import CATALOG, PRESETS, load_pipeline, preset, run_pipeline
from cnncompile.passes.pipelines import PassSpec
from cnncompile.selection.pipelines import CATALOG as TARGET_CATALOG, PRECISION_PASS, TARGET_PASSES
from pass_harness import Net, ops


def test_every_pass_has_a_description_and_builds():
    for name, info in CATALOG.items():
        assert info.name == name and info.description and "\n" not in info.description
        assert callable(info.build(info.options() if info.options else None))


def test_presets_grow_from_o0_to_o3():
    assert PRESETS["O0"] == ()
    for lower, higher in (("O1", "O2"), ("O2", "O3")):
        assert set(PRESETS[lower]) <= set(PRESETS[higher])
    assert {p for passes in PRESETS.values() for p in passes} <= set(CATALOG)
    assert {p for passes in PRESETS.values() for p in passes} | {p.name for specs in TARGET_PASSES.values() for p in specs} \
        | {PRECISION_PASS} == set(TARGET_CATALOG)
    assert [s.name for s in preset("O3").steps()] == list(PRESETS["O3"])


def test_unknown_preset():
    with pytest.raises(CnnCompileError, match="unknown pipeline preset 'O4'; choose one of O0, O1, O2, O3"):
        load_pipeline("O4")


def write(tmp_path, text, name="mine.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_toml_pipeline_with_a_base_and_options(tmp_path):
    path = write(tmp_path, """
base = "O2"
[[pass]]
name = "fuse-conv-epilogue"
activations = ["Relu"]
residual = false
""")
    pipeline = load_pipeline(path)
    assert pipeline.name == "mine"
    assert [p.name for p in pipeline.passes] == [*PRESETS["O2"], "fuse-conv-epilogue"]
    assert pipeline.passes[-1] == PassSpec("fuse-conv-epilogue", {"activations": ["Relu"], "residual": False})
    net = Net((1, 3, 6, 6))
    graph = net.done(net.node(Relu, net.conv(net.x, 4)), net.node(Clip, net.conv(net.x, 4), min=0.0, max=6.0))
    run = run_pipeline(graph, pipeline.steps())
    assert ops(run.graph) == {"FusedConv": 1, "Conv": 1, "Clip": 1}


def test_a_toml_pipeline_names_itself(tmp_path):
    path = write(tmp_path, 'name = "just-fold"\n[[pass]]\nname = "fold-batchnorm"\n')
    assert load_pipeline(path).name == "just-fold"


@pytest.mark.parametrize("text, message", [
    ('[[pass]]\nname = "fuse-everything"\n', "pass 'fuse-everything': no such pass; `cnncompile passes` lists them"),
    ('[[pass]]\nname = "fold-pad"\nfast = true\n', "pass 'fold-pad': takes no options, got fast"),
    ('[[pass]]\nname = "fuse-conv-epilogue"\nresidue = true\n', "unknown option(s) residue; it takes activations, "
                                                                "residual"),
    ('[[pass]]\nname = "fuse-conv-epilogue"\nactivations = ["Swish"]\n', "'Swish' is not one of none, Relu"),
    ('[[pass]]\nname = "fuse-conv-epilogue"\nresidual = "yes"\n', "attribute 'residual' = 'yes' is not of type bool"),
    ('[[pass]]\nname = "fold-constants"\nmax_elements = 1.5\n', "'max_elements' = 1.5 is not of type int"),
    ('[[pass]]\nactivations = []\n', "pass 1 has no name"),
    ('passes = ["fold-pad"]\n', "unknown key(s) passes"),
    ('[[pass]\nname=\n', "is not valid TOML"),
])
def test_bad_pipeline_files_say_what_is_wrong(tmp_path, text, message):
    with pytest.raises(CnnCompileError) as error:
        load_pipeline(write(tmp_path, text))
    assert message in str(error.value)


def test_a_missing_pipeline_file(tmp_path):
    with pytest.raises(CnnCompileError, match="cannot read pipeline file"):
        load_pipeline(str(tmp_path / "none.toml"))
