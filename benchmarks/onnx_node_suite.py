"""ONNX's whole node conformance suite through `cnncompile.onnx_backend`, beside onnxruntime: the count
issue 19 measures coverage by.

tests/conformance runs the cases whose ops the registry declares; this counts every case of
onnx's `node` suite but those no inference compiler runs: training ops and modes, and models
with sequence, optional or string inputs or outputs. Each case is judged as onnx's runner
judges (its stored outputs, its rtol/atol, the declared element types), on the float64
reference, on TVM for LLVM (`--tvm`, each case compiled with -p O3; slow: minutes), and on
onnxruntime (its CPU provider) as the peer. Every case runs in a child process with a time
limit, so a crash or a hang is counted, not fatal. Prints the counts and the ops that fail
most often; `--list` prints every failing case with the first line of its error.

    .venv/bin/python benchmarks/onnx_node_suite.py            # reference and onnxruntime, ~3 min
    .venv/bin/python benchmarks/onnx_node_suite.py --tvm      # and TVM
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import os
import sys
import time
from pathlib import Path

import onnx
import onnxruntime as ort
from onnx.backend.test.loader import load_model_tests
from onnx.backend.test.runner import Runner

from cnncompile.onnx_backend import CnnCompileBackend  # imported once here, inherited by every forked case

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "conformance"))
from onnx_cases import Case  # noqa: E402

LEFT_OUT_OPS = frozenset({"Gradient", "Adagrad", "Adam", "Momentum", "SoftmaxCrossEntropyLoss",
                          "NegativeLogLikelihoodLoss"})
CONTENDERS = ("reference", "onnxruntime")
TIME_LIMIT_S = 120


def left_out(case: Case, model: onnx.ModelProto) -> str | None:
    """Why a case is no inference compiler's job, or None."""
    if "training" in case.name or any(n.op_type in LEFT_OUT_OPS or n.domain.endswith("training")
                                      for n in model.graph.node):
        return "training"
    for value in (*model.graph.input, *model.graph.output):
        kind = value.type.WhichOneof("value")
        if kind in ("sequence_type", "optional_type"):
            return kind.removesuffix("_type")
        if kind == "tensor_type" and value.type.tensor_type.elem_type == onnx.TensorProto.STRING:
            return "string"
    return None


def blamed_op(model: onnx.ModelProto) -> str:
    """The op a failing case is counted under: expanded cases begin with Constant nodes, so not the first."""
    from cnncompile.ops import REGISTRY

    ops = [node.op_type for node in model.graph.node]
    return next((op for op in ops if op not in REGISTRY), ops[-1] if ops else "(no node)")


def run_case(case: Case, contender: str) -> str:
    """'pass', or the failure's class and first line."""
    try:
        model = case.model()
        if contender == "onnxruntime":
            options = ort.SessionOptions()
            options.log_severity_level = 4
            session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
            names = [i.name for i in session.get_inputs()]
            run = lambda inputs: session.run(None, dict(zip(names, inputs)))  # noqa: E731
        else:
            options = {"engine": "tvm"} if contender == "tvm" else {"dtype": "float64"}
            rep = CnnCompileBackend.prepare(model, "CPU", **options)
            run = lambda inputs: list(rep.run(inputs))  # noqa: E731
        for inputs, expected in case.data_sets(model):
            Runner.assert_similar_outputs(expected, run(inputs), rtol=case.rtol, atol=case.atol, model_dir=case.id)
        return "pass"
    except BaseException as err:  # every failure is a count here
        return f"{type(err).__name__}: {str(err).strip().splitlines()[0][:160] if str(err).strip() else ''}"


def _child(case: Case, contender: str, pipe) -> None:
    pipe.send(run_case(case, contender))


def judged(case: Case, contender: str) -> str:
    """run_case in a child process: a crash or a hang is that case's failure."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(case, contender, send))
    child.start()
    outcome = receive.recv() if receive.poll(TIME_LIMIT_S) else f"timeout after {TIME_LIMIT_S} s"
    child.join(5)
    if child.is_alive():
        child.kill()
    elif child.exitcode and outcome.startswith("timeout"):
        outcome = f"crash (exit {child.exitcode})"
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tvm", action="store_true", help="also compile every case with TVM for LLVM")
    parser.add_argument("--only", help="a substring of the case names to run")
    parser.add_argument("--list", action="store_true", help="print each failing case and its error")
    args = parser.parse_args()
    contenders = CONTENDERS + (("tvm",) if args.tvm else ())
    cases, omitted = [], collections.Counter()
    for test in load_model_tests(kind="node"):
        case = Case("node", test.name, Path(os.fspath(test.model_dir)), test.rtol, test.atol)
        if args.only and args.only not in case.name:
            continue
        reason = left_out(case, case.model())
        if reason:
            omitted[reason] += 1
        else:
            cases.append(case)
    print(f"onnx {onnx.__version__} node suite: {len(cases)} cases judged; left out "
          + ", ".join(f"{reason} {n}" for reason, n in sorted(omitted.items())), flush=True)
    start = time.perf_counter()
    outcomes = {c: {} for c in contenders}
    for index, case in enumerate(cases, 1):
        for contender in contenders:
            outcomes[contender][case] = judged(case, contender)
        if index % 200 == 0:
            print(f"  {index}/{len(cases)} cases, {time.perf_counter() - start:.0f} s", flush=True)
    for contender in contenders:
        passed = sum(o == "pass" for o in outcomes[contender].values())
        print(f"{contender:<12} passes {passed} of {len(cases)} ({passed / len(cases):.1%})")
    for contender in contenders:
        if contender == "onnxruntime":
            continue
        failing = collections.Counter(blamed_op(c.model()) for c, o in outcomes[contender].items() if o != "pass")
        print(f"{contender}: failing cases by op (the first one the registry lacks, else the last node's), "
              "most first: "
              + ", ".join(f"{op} {n}" for op, n in failing.most_common(40)))
        if args.list:
            for case, outcome in outcomes[contender].items():
                if outcome != "pass":
                    print(f"  {contender} {case.name}: {outcome}")
    print(f"in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
