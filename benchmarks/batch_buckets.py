"""Batch buckets (issue 19): one artifact compiled for batches 1, 4 and 16 runs batches 1, 3, 4, 9
and 16; a batch between buckets pays for the bucket it is padded to.

A small CNN (three 3x3 convs with ReLU, max pooling, global average pooling, a classifier Gemm)
on [N, 3, 64, 64] is exported with a dynamic batch, compiled once for LLVM with
`--input-shape x=1,4,16x3x64x64` and loaded from disk. Each batch's outputs are checked against
onnxruntime, and `run` (padding and slicing included) is timed in alternating rounds. Batch 3
runs the batch-4 function, so its time should be about batch 4's, and batch 9 about batch 16's.

Session 26 (AMD EPYC Zen 5, 2 vCPUs shared with other work: load average 7, so +-20%):

    batch  bucket  median ms  ms per row  rel. error vs onnxruntime
        1       1      0.179       0.179  2.94e-07
        3       4      0.470       0.157  1.48e-07
        4       4      0.393       0.098  2.42e-07
        9      16      3.890       0.432  4.39e-07
       16      16      3.547       0.222  3.35e-07
    batch 17: input 'x' has batch 17, more than the largest bucket this model was compiled for (batch
    buckets 1, 4, 16); split the batch into runs of at most 16 or recompile with a larger bucket in
    --input-shape
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import cnncompile
from cnncompile.numerics import relative_error

BUCKETS = (1, 4, 16)
BATCHES = (1, 3, 4, 9, 16)


def small_cnn(seed: int = 0) -> onnx.ModelProto:
    """Three conv+relu stages (16, 32, 32 channels) with pooling, then a 10-way classifier."""
    rng = np.random.default_rng(seed)
    weights, nodes, x, channels = {}, [], "x", 3
    for i, out in enumerate((16, 32, 32)):
        weights[f"w{i}"] = (rng.standard_normal((out, channels, 3, 3)) * np.sqrt(2 / (9 * channels))).astype(np.float32)
        weights[f"b{i}"] = rng.standard_normal(out).astype(np.float32) * 0.1
        nodes += [helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"c{i}"], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"]),
                  helper.make_node("MaxPool", [f"r{i}"], [f"p{i}"], kernel_shape=[2, 2], strides=[2, 2])]
        x, channels = f"p{i}", out
    weights["fc"] = (rng.standard_normal((10, channels)) / np.sqrt(channels)).astype(np.float32)
    nodes += [helper.make_node("GlobalAveragePool", [x], ["g"]), helper.make_node("Flatten", ["g"], ["f"]),
              helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1)]
    image = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 64, 64])
    graph = helper.make_graph(nodes, "small_cnn", [image],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
                              [numpy_helper.from_array(a, n) for n, a in weights.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def timed_rounds(model: cnncompile.CompiledModel, inputs: dict[int, np.ndarray], rounds: int,
                 calls: int) -> dict[int, float]:
    """Each batch's median `run` time in ms over `rounds` rounds of `calls` calls each, the batches
    alternating within a round, so that a machine busy with other work slows every batch alike."""
    for x in inputs.values():
        model.run({"x": x})
    times: dict[int, list[float]] = {batch: [] for batch in inputs}
    for _ in range(rounds):
        for batch, x in inputs.items():
            for _ in range(calls):
                start = time.perf_counter()
                model.run({"x": x})
                times[batch].append((time.perf_counter() - start) * 1e3)
    return {batch: statistics.median(t) for batch, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=5, help="timed calls per batch per round")
    args = parser.parse_args()
    proto = small_cnn()
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    with tempfile.TemporaryDirectory() as tmp:
        onnx.save(proto, Path(tmp) / "small_cnn.onnx")
        buckets = ",".join(map(str, BUCKETS))
        compiled = cnncompile.compile(Path(tmp) / "small_cnn.onnx", target="llvm",
                                      input_shapes={"x": (list(BUCKETS), 3, 64, 64)})
        model = cnncompile.load(compiled.save(Path(tmp) / "artifact"))
        print(f"compiled for batch buckets {buckets} (--input-shape x={buckets}x3x64x64)")
        print(f"{'batch':>5}  {'bucket':>6}  {'median ms':>9}  {'ms per row':>10}  rel. error vs onnxruntime")
        rng = np.random.default_rng(1)
        inputs = {batch: rng.standard_normal((batch, 3, 64, 64)).astype(np.float32) for batch in BATCHES}
        ms = timed_rounds(model, inputs, args.rounds, args.calls)
        for batch, x in inputs.items():
            error = relative_error(model.run({"x": x})["y"], session.run(None, {"x": x})[0])
            bucket = model.buckets.bucket_for("x", batch)
            print(f"{batch:>5}  {bucket:>6}  {ms[batch]:>9.3f}  {ms[batch] / batch:>10.3f}  {error:.2e}")
        try:
            model.run({"x": np.zeros((17, 3, 64, 64), np.float32)})
        except cnncompile.CnnCompileError as err:
            print(f"batch 17: {err}")


if __name__ == "__main__":
    main()
