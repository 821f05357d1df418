"""Throughput of one loaded model served from 1, 2 and 4 client threads (issue 21), beside onnxruntime.

A threaded web server calls one model from many threads at once. Here a zoo model (random
He-initialised weights, BN statistics calibrated) is compiled once with -p O3 for LLVM and
saved; its ONNX goes to onnxruntime (2 intra-op threads, all graph optimizations, one
InferenceSession shared by the threads, which onnxruntime documents as safe). Each
measurement is its own process (`--child`): it loads the contender, checks every thread's
first output against a single-threaded run (cnncompile: bit for bit), then each client
thread calls `run` in a loop for --seconds, and it reports the inferences completed and
each call's latency. Rounds alternate the contenders; the table gives, per contender and
client-thread count, the median over rounds of inferences per second, the median latency,
and the scaling against one client thread.

Both runtimes size their own thread pools for the whole machine, so on a machine with few
cores more clients mostly queue: throughput should hold, not multiply, and latency grow
with the clients. A drop in throughput as clients are added is the thing to look for.

Session 25 (AMD EPYC Zen 5, 2 vCPUs, ResNet-18 1x3x224x224, 3 rounds of 5 s):

    contender      clients  inferences/s  median ms  vs 1 client  mismatches
    cnncompile O3        1          94.0      10.18        1.00x           0
    cnncompile O3        2         120.9      16.23        1.29x           0
    cnncompile O3        4         108.1      36.25        1.15x           0
    onnxruntime          1          74.9      11.49        1.00x           0
    onnxruntime          2          96.2      17.72        1.29x           0
    onnxruntime          4          94.7      42.03        1.26x           0
    cnncompile / onnxruntime throughput: 1.26x (1 client), 1.26x (2), 1.14x (4)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

CONTENDERS = ("cnncompile O3", "onnxruntime")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def load_contender(contender: str, workdir: Path):
    """A callable from inputs to the list of outputs, safe to call from many threads."""
    if contender == "cnncompile O3":
        import cnncompile

        model = cnncompile.load(workdir / "artifact")
        return lambda inputs: list(model.run(inputs).values())
    import onnx

    from cnncompile.tools.peers import onnxruntime_session

    session = onnxruntime_session(onnx.load(str(workdir / "model.onnx")))
    return lambda inputs: session.run(None, inputs)


def child(contender: str, clients: int, seconds: float, workdir: Path) -> dict:
    """One measurement: `clients` threads calling one loaded contender for `seconds`."""
    inputs = dict(np.load(workdir / "inputs.npz"))
    run = load_contender(contender, workdir)
    alone = run(inputs)
    exact = contender == "cnncompile O3"
    start, deadline = threading.Barrier(clients + 1), [0.0]
    latencies: list[list[float]] = [[] for _ in range(clients)]
    mismatches = [0] * clients

    def serve(index: int) -> None:
        first = run(inputs)
        same = all(np.array_equal(a, b) if exact else np.allclose(a, b, rtol=1e-5, atol=1e-6)
                   for a, b in zip(first, alone))
        mismatches[index] += not same
        start.wait()
        while (now := time.perf_counter()) < deadline[0]:
            run(inputs)
            latencies[index].append((time.perf_counter() - now) * 1e3)

    threads = [threading.Thread(target=serve, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    deadline[0] = time.perf_counter() + seconds + 0.05
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    every = [t for per_thread in latencies for t in per_thread]
    return {"inferences": len(every), "seconds": elapsed, "median_ms": statistics.median(every),
            "mismatches": sum(mismatches)}


def prepare(model: str, size: int, workdir: Path) -> str:
    """Compile and save the model, write its ONNX and the inputs; returns a line describing it."""
    import cnncompile
    from cnncompile.tools.models import random_inputs

    graph = cnncompile.zoo.model(model).build((1, 3, size, size))
    inputs = random_inputs(graph)
    np.savez(workdir / "inputs.npz", **inputs)
    cnncompile.save_onnx(graph, workdir / "model.onnx")
    begin = time.perf_counter()
    cnncompile.compile(graph, target="llvm", pipeline="O3").save(workdir / "artifact")
    return f"{model} 1x3x{size}x{size}: O3 compile {time.perf_counter() - begin:.1f} s"


def measure(contender: str, clients: int, seconds: float, workdir: Path) -> dict:
    command = [sys.executable, __file__, "--child", contender, str(clients), str(seconds), str(workdir)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{contender} with {clients} clients failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18", help="a zoo model (default resnet18)")
    parser.add_argument("--size", type=int, default=224, help="input height and width (default 224)")
    parser.add_argument("--clients", default="1,2,4", help="client thread counts (default 1,2,4)")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long each measurement serves")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per contender and client count")
    parser.add_argument("--child", nargs=4, metavar=("CONTENDER", "CLIENTS", "SECONDS", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        contender, clients, seconds, workdir = args.child
        print(json.dumps(child(contender, int(clients), float(seconds), Path(workdir))))
        return
    clients = [int(c) for c in args.clients.split(",")]
    print(f"CPU: {cpu_model()}, {os.cpu_count()} CPUs; TVM_NUM_THREADS={os.environ.get('TVM_NUM_THREADS', 'default')}")
    with tempfile.TemporaryDirectory(prefix="serve_threads_") as workdir:
        print(prepare(args.model, args.size, Path(workdir)), flush=True)
        results: dict[tuple[str, int], list[dict]] = {(c, n): [] for c in CONTENDERS for n in clients}
        for round_ in range(args.rounds):
            order = CONTENDERS if round_ % 2 == 0 else CONTENDERS[::-1]
            for n in clients:
                for contender in order:
                    results[contender, n].append(measure(contender, n, args.seconds, Path(workdir)))
            print(f"round {round_ + 1}/{args.rounds} done", flush=True)
    print(f"\n{'contender':<14} {'clients':>7} {'inferences/s':>13} {'median ms':>10} {'vs 1 client':>12} "
          f"{'mismatches':>10}")
    for contender in CONTENDERS:
        base = None
        for n in clients:
            rounds = results[contender, n]
            throughput = statistics.median(r["inferences"] / r["seconds"] for r in rounds)
            latency = statistics.median(r["median_ms"] for r in rounds)
            base = base or throughput
            print(f"{contender:<14} {n:>7} {throughput:>13.1f} {latency:>10.2f} {throughput / base:>11.2f}x "
                  f"{sum(r['mismatches'] for r in rounds):>10}")
    for n in clients:
        ours = statistics.median(r["inferences"] / r["seconds"] for r in results["cnncompile O3", n])
        theirs = statistics.median(r["inferences"] / r["seconds"] for r in results["onnxruntime", n])
        print(f"{n} client(s): cnncompile / onnxruntime throughput = {ours / theirs:.2f}x")


if __name__ == "__main__":
    main()
