"""`profile`: every kernel of a build timed alone, counted per call, against the roofline; JSON and HTML.

One LeNet-5 build (fast to compile) serves the module: in process, and saved and loaded again.
"""

import json
import math
import re

import pytest

import cnncompile
from cnncompile.backends.tvm.kernel_specs import Buffer, KernelSpec
from cnncompile.errors import CnnCompileError
from cnncompile.tools.profile import KernelTime, profile
from cnncompile.tools.profile_report import render_html
from cli_harness import run


@pytest.fixture(scope="module")
def model():
    return cnncompile.compile("zoo:lenet5", target="llvm", pipeline="O3")


@pytest.fixture(scope="module")
def profiled(model):
    return profile(model, "zoo:lenet5", repeat=5, min_repeat_ms=5)


@pytest.fixture(scope="module")
def artifact(model, tmp_path_factory):
    return model.save(tmp_path_factory.mktemp("profile") / "lenet5")


def test_every_kernel_is_timed_and_their_sum_is_near_end_to_end(model, profiled):
    assert sorted(k.spec.symbol for k in profiled.kernels) == sorted({k.symbol for k in model.kernels})
    assert all(k.seconds_per_call > 0 for k in profiled.kernels)
    # The VM adds dispatch and allocation between kernels; each kernel alone runs on hot caches. On
    # LeNet-5 (10 kernels of a few microseconds) both effects are tens of percent: a factor of 3 either
    # way would mean time counted twice, calls missed, or the wrong function timed. A parallel kernel of
    # microseconds waits for its second thread, which a busy machine (the suite's other worker) may not
    # schedule for a millisecond (measured: a sum 44x end to end once), so the least disturbed of three
    # profiles is judged: an accounting error would put all three out of range.
    ratios = [profiled.total_seconds * 1e3 / profiled.end_to_end.median_ms]
    while len(ratios) < 3 and not 0.3 <= ratios[-1] <= 3.0:
        again = profile(model, "zoo:lenet5", repeat=5, min_repeat_ms=5)
        ratios.append(again.total_seconds * 1e3 / again.end_to_end.median_ms)
    assert any(0.3 <= ratio <= 3.0 for ratio in ratios), ratios


def test_shares_sum_to_one_and_rows_are_slowest_first(profiled):
    assert math.isclose(sum(profiled.share(k) for k in profiled.kernels), 1.0, rel_tol=1e-12)
    seconds = [k.seconds for k in profiled.kernels]
    assert seconds == sorted(seconds, reverse=True)


def test_conv_throughput_is_its_hand_counted_flops_over_its_time(profiled):
    # LeNet-5's c3: 6x14x14 in, 16 filters of 6x5x5 -> 16x10x10, fused with tanh.
    n, k, c, r, s, p, q = 1, 16, 6, 5, 5, 10, 10
    flops = 2 * n * k * c * r * s * p * q + n * k * p * q  # multiply-adds, plus one per output for the tanh
    nbytes = 4 * (n * c * 14 * 14 + k * c * r * s + k + n * k * p * q)  # input, weights, bias read; output written
    (c3,) = [t for t in profiled.kernels if t.spec.nodes == ("c3",)]
    assert (c3.spec.flops, c3.spec.bytes) == (flops, nbytes)
    assert math.isclose(c3.gflops, flops / c3.seconds_per_call / 1e9, rel_tol=1e-12)
    assert math.isclose(c3.gbps, nbytes / c3.seconds_per_call / 1e9, rel_tol=1e-12)


def test_a_kernel_several_nodes_call_counts_every_call():
    spec = KernelSpec("fusedconv_0", ("a", "b", "c"), "FusedConv", (Buffer((1, 8), "float32"),), 1000, 64)
    timed = KernelTime(spec, 2e-6)
    assert spec.calls == 3 and math.isclose(timed.seconds, 6e-6)
    assert math.isclose(timed.gflops, 1000 / 2e-6 / 1e9)  # throughput is per call


def test_json_lists_every_kernel_with_the_roofline(artifact, capsys):
    assert run(["profile", str(artifact), "--json", "--repeat", "3", "--min-repeat-ms", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == str(artifact) and report["target"].startswith("llvm")
    assert report["total_ms"] > 0 and report["end_to_end_ms"] > 0
    kinds = {"name": str, "nodes": list, "calls": int, "ms": float, "share": float, "gflops": float,
             "gbps": float, "peak_gflops": float, "peak_gbps": float}
    assert len(report["kernels"]) == 10
    for kernel in report["kernels"]:
        assert all(isinstance(kernel[key], kind) for key, kind in kinds.items()), kernel
        assert kernel["calls"] == len(kernel["nodes"]) == 1 and kernel["peak_gflops"] > 0
    assert math.isclose(sum(k["ms"] for k in report["kernels"]), report["total_ms"], rel_tol=1e-9)


def test_html_report_holds_the_table_the_chart_and_the_graph(model, profiled, tmp_path, capsys):
    page = render_html(profiled, model.graph)
    assert page.count("<svg") == 2 and "<script" not in page and not re.search(r"(src|href)=", page)
    assert page.count('class="fused"') == 3  # lenet5's three fused convs, outlined
    for kernel in profiled.kernels:
        assert f"<td class=name>{kernel.spec.symbol}</td>" in page
    assert "end to end (VM)" in page


def test_a_directory_that_is_no_artifact_is_refused_in_one_line(tmp_path):
    with pytest.raises(CnnCompileError, match="no cnncompile artifact") as caught:
        run(["profile", str(tmp_path)])
    assert "\n" not in str(caught.value)


def test_a_missing_model_is_refused_in_one_line(tmp_path):
    with pytest.raises(CnnCompileError, match="does not exist") as caught:
        run(["profile", str(tmp_path / "missing.onnx"), "--target", "llvm"])
    assert "\n" not in str(caught.value)


def test_an_artifact_with_a_garbled_kernel_table_is_refused(artifact, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in artifact.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    manifest = json.loads((broken / "manifest.json").read_text())
    del manifest["kernels"][0]["buffers"]
    (broken / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CnnCompileError, match="recompile") as caught:
        run(["profile", str(broken)])
    assert "\n" not in str(caught.value)
