"""Remote devices from a TVM RPC tracker: `--rpc HOST:PORT --key NAME`.

Servers register with a tracker under a key naming the kind of device
(`python -m tvm.exec.rpc_server --tracker HOST:PORT --key NAME`); the tracker hands each
request a free server. We ask the tracker how many servers hold the key and open one
session per server, held for the whole run, so that each worker thread measures on its own
device in parallel with the others.

A session does not say which server it reached, but each server serves a session from a
temporary directory of its own, so that directory names the device in the records.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass

from tvm import rpc

from cnncompile.backends.tvm.target import TargetSpec
from cnncompile.errors import CnnCompileError
from cnncompile.tuning.measure import RemoteDevice

CONNECT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Tracker:
    host: str
    port: int
    key: str

    def __str__(self) -> str:
        return f"{self.host}:{self.port} (key {self.key})"

    @classmethod
    def parse(cls, address: str, key: str | None) -> Tracker:
        """`HOST:PORT` (an IPv6 host in brackets) and the device key."""
        match = re.fullmatch(r"\[?([^\[\]]+?)\]?:(\d{1,5})", address.strip())
        if match is None or not 0 < int(match.group(2)) < 65536:
            raise CnnCompileError(f"--rpc '{address}' is not HOST:PORT (the RPC tracker's address, e.g. "
                                  "127.0.0.1:9190)")
        if not key:
            raise CnnCompileError("--rpc needs --key NAME: the key the RPC servers registered with the tracker")
        return cls(match.group(1), int(match.group(2)), key)


def _check_reachable(tracker: Tracker) -> None:
    """Fail at once on a wrong address: TVM's client retries a refused connection for a minute."""
    try:
        socket.create_connection((tracker.host, tracker.port), timeout=CONNECT_TIMEOUT_SECONDS).close()
    except OSError as err:
        raise CnnCompileError(f"cannot reach the RPC tracker at {tracker.host}:{tracker.port} ({err.strerror or err}); "
                              f"start one with `python -m tvm.exec.rpc_tracker --host 0.0.0.0 --port "
                              f"{tracker.port}`") from None


def server_count(tracker: Tracker) -> int:
    """How many servers are registered with the tracker under the key (busy ones included)."""
    _check_reachable(tracker)
    summary = rpc.connect_tracker(tracker.host, tracker.port).summary()
    keys = [server["key"].partition(":")[2] for server in summary.get("server_info", [])]
    return keys.count(tracker.key)


def open_devices(tracker: Tracker, target: TargetSpec) -> list[RemoteDevice]:
    """One session per server registered under the key (a busy server is waited for)."""
    count = server_count(tracker)
    if count == 0:
        raise CnnCompileError(f"no RPC server is registered with the tracker at {tracker.host}:{tracker.port} under "
                              f"key '{tracker.key}'; start one with `python -m tvm.exec.rpc_server --tracker "
                              f"{tracker.host}:{tracker.port} --key {tracker.key}`")
    session = rpc.connect_tracker(tracker.host, tracker.port)
    devices = []
    for index in range(count):
        remote = session.request(tracker.key, priority=1, session_timeout=0)
        workdir = remote.get_function("tvm.rpc.server.workpath")("").rstrip("/")
        devices.append(RemoteDevice(remote, target, f"rpc:{tracker.key}#{index} {workdir}"))
    return devices
