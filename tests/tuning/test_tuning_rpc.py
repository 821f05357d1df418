"""Tuning over TVM RPC: a tracker and two servers on loopback, both measuring into one cache."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from cnncompile.backends.tvm.target import host_cpu
from cnncompile.errors import CnnCompileError
from cnncompile.frontends.dsl import Conv, Relu, Sequential
from cnncompile.selection.tuning_cache import TuningCache
from cnncompile.tuning.rpc import Tracker, server_count
from cnncompile.tuning.tuner import tune, workloads

KEY = "test"
# Three TVM processes start (each importing TVM twice, for itself and its forked worker): tens of seconds.
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(*args: str) -> subprocess.Popen:
    """A TVM RPC process in a session of its own: the tracker and servers fork workers, killed with it."""
    return subprocess.Popen([sys.executable, "-m", *args], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def tracker(request):
    port = free_port()
    processes = [start("tvm.exec.rpc_tracker", "--host", "127.0.0.1", "--port", str(port),
                       "--port-end", str(port + 1))]

    def stop():
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    request.addfinalizer(stop)
    address = Tracker("127.0.0.1", port, KEY)
    for _ in range(2):  # started with the tracker: their imports overlap, and they retry until it listens
        server_port = free_port()
        processes.append(start("tvm.exec.rpc_server", "--tracker", f"127.0.0.1:{port}", "--key", KEY,
                               "--host", "127.0.0.1", "--port", str(server_port), "--port-end", str(server_port + 1)))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if server_count(address) == 2:
                return address
        except CnnCompileError:
            pass  # the tracker is not listening yet
        time.sleep(0.5)
    pytest.fail("the RPC tracker and two servers did not come up within 120 s")


def test_two_servers_measure_one_graph_into_the_cache(tracker, tmp_path):
    graph = Sequential(Conv(8, 3, stride=2, pad=1), Relu(), Conv(16, 3, stride=2, pad=1)).build((1, 4, 9, 9))
    cache = TuningCache(tmp_path / "tuning.json")
    report = tune(graph, host_cpu(), cache, budget_seconds=300, rpc=tracker)
    assert len(report.tuned) == 2, report.summary()
    results = [result for results in report.measurements.values() for result in results.values()]
    # a candidate may fail to build (recorded, see test_tuner); none may fail to run remotely
    assert not [r.error for r in results if not r.ok and not r.error.startswith("build failed:")]
    devices = {result.device for result in results if result.ok}
    assert len(devices) == 2 and all(d.startswith(f"rpc:{KEY}#") for d in devices)
    for workload in workloads(graph):
        measured = cache.lookup(workload.spec, host_cpu())
        assert measured.complete and set(measured.devices.values()) <= devices
        assert all(0 < seconds < 0.1 for seconds in measured.results.values())


def test_a_wrong_tracker_or_key_is_one_clear_error(tracker, tmp_path):
    graph = Sequential(Conv(8, 1)).build((1, 8, 4, 4))
    cache = TuningCache(tmp_path / "tuning.json")
    with pytest.raises(CnnCompileError, match="no RPC server is registered .* under key 'nobody'"):
        tune(graph, host_cpu(), cache, rpc=Tracker(tracker.host, tracker.port, "nobody"))
    with pytest.raises(CnnCompileError, match="cannot reach the RPC tracker"):
        tune(graph, host_cpu(), cache, rpc=Tracker("127.0.0.1", free_port(), KEY))
