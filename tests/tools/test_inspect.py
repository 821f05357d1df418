"""`cnncompile inspect`: the seeds' VGG table, receptive fields, totals, JSON and paging."""

import io
import json
import os
import shutil
import sys

import pytest

from cnncompile import zoo
from cnncompile.cli import main
from cnncompile.frontends.dsl import BatchNorm, Conv, Dropout, Flatten, Residual, Sequential, Weights
from cnncompile.tools.inspect import format_table, summarize
from cnncompile.tools.pager import page

# 003_05d30b389bd75c97.txt, VGG-16: (layer, [H x W x C], memory, params "not counting biases").
SEED_VGG16 = [
    ("conv1_1", (224, 224, 64), 224 * 224 * 64, (3 * 3 * 3) * 64),
    ("conv1_2", (224, 224, 64), 224 * 224 * 64, (3 * 3 * 64) * 64),
    ("pool1", (112, 112, 64), 112 * 112 * 64, 0),
    ("conv2_1", (112, 112, 128), 112 * 112 * 128, (3 * 3 * 64) * 128),
    ("conv2_2", (112, 112, 128), 112 * 112 * 128, (3 * 3 * 128) * 128),
    ("pool2", (56, 56, 128), 56 * 56 * 128, 0),
    ("conv3_1", (56, 56, 256), 56 * 56 * 256, (3 * 3 * 128) * 256),
    ("conv3_2", (56, 56, 256), 56 * 56 * 256, (3 * 3 * 256) * 256),
    ("conv3_3", (56, 56, 256), 56 * 56 * 256, (3 * 3 * 256) * 256),
    ("pool3", (28, 28, 256), 28 * 28 * 256, 0),
    ("conv4_1", (28, 28, 512), 28 * 28 * 512, (3 * 3 * 256) * 512),
    ("conv4_2", (28, 28, 512), 28 * 28 * 512, (3 * 3 * 512) * 512),
    ("conv4_3", (28, 28, 512), 28 * 28 * 512, (3 * 3 * 512) * 512),
    ("pool4", (14, 14, 512), 14 * 14 * 512, 0),
    ("conv5_1", (14, 14, 512), 14 * 14 * 512, (3 * 3 * 512) * 512),
    ("conv5_2", (14, 14, 512), 14 * 14 * 512, (3 * 3 * 512) * 512),
    ("conv5_3", (14, 14, 512), 14 * 14 * 512, (3 * 3 * 512) * 512),
    ("pool5", (7, 7, 512), 7 * 7 * 512, 0),
    ("fc6", (4096,), 4096, 7 * 7 * 512 * 4096),
    ("fc7", (4096,), 4096, 4096 * 4096),
    ("fc8", (1000,), 1000, 4096 * 1000),
]


@pytest.fixture(scope="module")
def vgg16():
    return summarize(zoo.build("vgg16", weights=Weights.PLACEHOLDER))


def hwc(shape):
    return (*shape[2:], shape[1]) if len(shape) == 4 else shape[1:]


def test_vgg16_rows_are_the_seeds_table(vgg16):
    rows = {r.name: r for r in vgg16.layers}
    assert vgg16.inputs[0].activations == 224 * 224 * 3          # INPUT: memory 150K, params 0
    for name, shape, memory, weights in SEED_VGG16:
        row = rows[name]
        biases = shape[-1] if weights else 0                     # one per filter, which the seed leaves out
        assert (hwc(row.output_shape), row.activations, row.parameters) == (shape, memory, weights + biases), name
        assert row.activation_bytes == 4 * memory                  # float32


def test_vgg16_totals(vgg16):
    assert vgg16.totals.parameters == 138_357_544
    assert vgg16.totals.statistics == 0
    assert vgg16.totals.macs == sum(r.macs for r in vgg16.layers)


def test_conv_multiply_adds_are_the_seeds_count():
    """002: ten 5x5 filters, stride 1, pad 2 over 32x32x3: 760 parameters, 768K multiply-adds."""
    row = summarize(Conv(10, 5, pad=2).build((1, 3, 32, 32))).layers[0]
    assert (row.parameters, row.macs) == (760, 32 * 32 * 10 * 5 * 5 * 3)


@pytest.mark.parametrize("layers", [1, 2, 3, 5])
@pytest.mark.parametrize("kernel", [3, 5, 7])
def test_stacked_stride_1_convs_see_1_plus_L_times_K_minus_1(layers, kernel):
    net = Sequential(*(Conv(4, kernel, pad=kernel // 2) for _ in range(layers)))
    rows = summarize(net.build((1, 2, 48, 48), weights=Weights.PLACEHOLDER)).layers
    assert [r.receptive_field for r in rows] == [(1 + n * (kernel - 1),) * 2 for n in range(1, layers + 1)]


def test_dilated_1d_stack_sees_wavenets_16_samples():
    """van den Oord et al. 2016, Fig. 3: kernel 2 with dilations 1, 2, 4, 8 gives a receptive field of 16."""
    net = Sequential(*(Conv(4, 2, dilation=d) for d in (1, 2, 4, 8)))
    assert summarize(net.build((1, 1, 64))).totals.receptive_field == (16,)


@pytest.mark.parametrize("name, layer, published", [("alexnet", "pool5", 195), ("vgg16", "pool5", 212)])
def test_receptive_fields_match_araujo_et_al(name, layer, published):
    """Araujo, Norris & Sim, "Computing Receptive Fields of CNNs", Distill 2019, table of networks."""
    rows = {r.name: r for r in summarize(zoo.build(name, weights=Weights.PLACEHOLDER)).layers}
    assert rows[layer].receptive_field == (published, published)


def test_a_residual_block_takes_the_wider_of_its_paths():
    block = Residual(Sequential(Conv(4, 3, pad=1), Conv(4, 3, pad=1)), name="block")
    rows = {r.name: r for r in summarize(block.build((1, 4, 16, 16))).layers}
    assert rows["block.add"].receptive_field == (5, 5)


def test_batchnorm_statistics_are_not_parameters():
    summary = summarize(Sequential(Conv(8, 3, bias=False), BatchNorm(name="bn")).build((1, 3, 8, 8)))
    assert summary.layers[1].parameters == 2 * 8
    assert (summary.totals.parameters, summary.totals.statistics) == (8 * 3 * 9 + 16, 16)


def test_outputs_nothing_reads_take_no_activation_memory():
    summary = summarize(Sequential(Flatten(), Dropout(name="drop")).build((1, 3, 4, 4)))
    assert summary.layers[1].activations == 48   # the data, not the Boolean mask


def test_format_table_has_every_column_and_the_totals(vgg16):
    text = format_table(vgg16)
    lines = text.splitlines()
    assert lines[0].split() == ["layer", "op", "output", "shape", "activations", "memory", "params", "MACs",
                                "receptive", "field"]
    assert lines[2].split()[:2] == ["input", "input"]
    total = next(line for line in lines if line.startswith("total"))
    assert "138,357,544" in total and "15.47G" in total
    assert lines[-1].startswith("vgg16: 39 nodes, 138,357,544 parameters")


# -- the command line --------------------------------------------------------------------------


def test_inspect_zoo_json_is_one_object(capsys):
    assert main(["inspect", "zoo:vgg16", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "zoo:vgg16"
    assert report["totals"]["parameters"] == 138_357_544
    assert [r["name"] for r in report["layers"]][:3] == ["conv1_1", "relu1_1", "conv1_2"]
    assert report["layers"][0]["receptive_field"] == [3, 3]


def test_inspect_zoo_at_another_size(capsys):
    assert main(["inspect", "zoo:resnet18", "--input-shape", "input=1x3x64x64", "--no-pager"]) == 0
    out = capsys.readouterr().out
    assert "layer1.0.conv1" in out and "1x64x16x16" in out and "11,689,512 parameters" in out


def test_inspect_unknown_zoo_model_is_one_line_exit_2(capsys):
    assert main(["inspect", "zoo:resnet5"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown zoo model 'resnet5'" in err


def test_inspect_zoo_with_a_wrong_input_name_says_the_right_one(capsys):
    assert main(["inspect", "zoo:lenet5", "--input-shape", "data=1x1x32x32"]) == 2
    assert "--input-shape input=1x1x32x32" in capsys.readouterr().err


def test_inspect_zoo_strict_error_is_one_line(capsys):
    assert main(["inspect", "zoo:alexnet", "--input-shape", "input=1x3x224x224"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "(224 - 11 + 2*0) / 4 + 1 = 54.25" in err


def test_run_builds_zoo_models_with_random_weights(capsys):
    assert main(["run", "zoo:welcome_detector", "--random-inputs", "--json"]) == 0
    outputs = json.loads(capsys.readouterr().out)["outputs"]
    assert list(outputs.values()) == [{"shape": [1, 1], "dtype": "float32"}]


# -- paging ------------------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def small_terminal(monkeypatch):
    monkeypatch.setattr(shutil, "get_terminal_size", lambda *_: os.terminal_size((80, 10)))


def capture_pager(monkeypatch, tmp_path):
    target = tmp_path / "paged.txt"
    script = f"import sys; open({str(target)!r}, 'w').write(sys.stdin.read())"
    monkeypatch.setenv("CNNCOMPILE_PAGER", f"{sys.executable} -c \"{script}\"")
    return target


def test_a_long_table_on_a_terminal_goes_through_the_pager(monkeypatch, tmp_path, small_terminal):
    target = capture_pager(monkeypatch, tmp_path)
    screen = Terminal()
    text = "\n".join(f"row {i}" for i in range(40))
    page(text, screen)
    assert target.read_text() == text + "\n" and screen.getvalue() == ""


def test_no_pager_for_pipes_short_text_or_cat(monkeypatch, tmp_path, small_terminal):
    target = capture_pager(monkeypatch, tmp_path)
    long_text = "\n".join(f"row {i}" for i in range(40))
    pipe = io.StringIO()
    page(long_text, pipe)
    screen = Terminal()
    page("one line", screen)
    monkeypatch.setenv("CNNCOMPILE_PAGER", "cat")
    page(long_text, screen)
    assert pipe.getvalue() == long_text + "\n"
    assert screen.getvalue() == "one line\n" + long_text + "\n"
    assert not target.exists()


def test_a_pager_that_cannot_start_falls_back_to_printing(monkeypatch, small_terminal):
    monkeypatch.setenv("CNNCOMPILE_PAGER", "/nonexistent/pager")
    screen = Terminal()
    page("\n".join(map(str, range(40))), screen)
    assert screen.getvalue().splitlines()[-1] == "39"
