"""An artifact directory under faults: a compile killed mid-build or mid-save, two writers at once, a full disk.

Each ends with the old artifact byte for byte or a whole new one (its library's sha256 matching its
manifest, loadable, running), and nothing left beside it: no `.DIR.*.tmp` staging directory.
The kills and the races are real processes; the full disk is a real (tmpfs) filesystem where this
machine lets a test mount one, and a simulated ENOSPC everywhere.
"""

from __future__ import annotations

import errno
import hashlib
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import cnncompile
from cnncompile import save_onnx
from cnncompile.backends.tvm import artifact
from cnncompile.backends.tvm.artifact import GRAPH, LIBRARY, MANIFEST, read_manifest, write_artifact
from cnncompile.cli import main
from cnncompile.errors import CnnCompileError
from cnncompile.fileio import DiskFull, is_disk_full, write_atomically
from cnncompile.frontends.dsl import Conv, Relu, Sequential

SHAPE = (1, 4, 12, 12)


def _model(path: Path, layers: int, seed: int) -> Path:
    convs = [layer for _ in range(layers) for layer in (Conv(8, 3, pad=1), Relu())]
    save_onnx(Sequential(*convs).build(SHAPE, seed=seed), path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path]:
    """The previous artifact's model and a bigger one whose compile is interrupted (more kernels: a longer save)."""
    root = tmp_path_factory.mktemp("models")
    return _model(root / "small.onnx", 1, 0), _model(root / "big.onnx", 8, 1)


def _compile_command(model: Path, out: Path, pipeline: str = "O1") -> list[str]:
    return [sys.executable, "-m", "cnncompile.cli", "compile", str(model), "--target", "llvm", "-p", pipeline,
            "-o", str(out)]


def _snapshot(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def _runs(out: Path) -> None:
    """The artifact loads (its hash checked) and computes something finite."""
    (name,) = [spec["name"] for spec in read_manifest(out)["inputs"]]
    x = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    (y,) = cnncompile.load(out).run({name: x}).values()
    assert y.shape == (1, 8, 12, 12) and np.isfinite(y).all()


@pytest.fixture
def previous(models, tmp_path) -> Path:
    out = tmp_path / "art"
    assert main(["compile", str(models[0]), "--target", "llvm", "-p", "O1", "-o", str(out)]) == 0
    return out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signal_while_saving_keeps_the_previous_artifact(sig, models, previous, ctrl_c_raises):
    """Killed the moment its staging directory appears, beside the artifact it would replace."""
    before = _snapshot(previous)
    process = subprocess.Popen(_compile_command(models[1], previous), stderr=subprocess.PIPE, text=True)
    while not _leftovers(previous) and process.poll() is None:
        time.sleep(0.001)
    assert process.poll() is None, "the compile ended before its staging directory was seen"
    process.send_signal(sig)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + sig, err
    assert err.strip() in ("cnncompile: interrupted", f"cnncompile: terminated by {sig.name}")
    assert _snapshot(previous) == before and _leftovers(previous) == []
    _runs(previous)


def test_sigterm_at_any_moment_of_a_compile_keeps_a_whole_artifact(models, previous):
    """Killed at moments bisected over an uninterrupted compile's time until two kills have landed inside
    the command (imports, passes, lowering, build, save), whatever the machine's load: each time the
    artifact is the previous one, or the new one whole when the kill came too late."""
    before = _snapshot(previous)
    start = time.perf_counter()
    subprocess.run(_compile_command(models[1], previous.with_name("timed")), check=True, capture_output=True)
    early, late = 0.0, time.perf_counter() - start
    new = _snapshot(previous.with_name("timed"))  # compiles are byte-identical: what a whole new artifact holds
    delay, codes = 0.8 * late, []
    while codes.count(143) < 2 and len(codes) < 8:
        process = subprocess.Popen(_compile_command(models[1], previous), stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
        codes.append(process.returncode)
        assert process.returncode in (0, 143, -signal.SIGTERM), err
        assert _leftovers(previous) == []
        # Killed before the swap, the previous artifact stays; after it (exit 143 while the old one is
        # removed, or 0: too late), the new one is there whole and is the previous one from now on.
        assert _snapshot(previous) in (before, new)
        before = _snapshot(previous)
        _runs(previous)
        if process.returncode == -signal.SIGTERM:  # before cnncompile's handlers, in Python's start-up
            early = delay
        else:
            late = delay if process.returncode == 0 else late
        delay = (delay + late) / 2 if process.returncode == 143 else (early + late) / 2
    assert codes.count(143) >= 1, f"no kill landed inside the command (exit statuses {codes})"


def test_two_compiles_into_one_directory_both_succeed(models, previous):
    """Real processes racing for the same -o, three times: both exit 0, one whole artifact stays."""
    for _ in range(3):
        racing = [subprocess.Popen(_compile_command(model, previous, pipeline), stderr=subprocess.PIPE, text=True)
                  for model, pipeline in ((models[0], "O0"), (models[1], "O1"))]
        for process in racing:
            _, err = process.communicate(timeout=300)
            assert process.returncode == 0, err
        assert {p.name for p in previous.iterdir()} == {LIBRARY, MANIFEST, GRAPH}
        assert read_manifest(previous)["pipeline"] in ("O0", "O1") and _leftovers(previous) == []
        _runs(previous)


def _write_many(out: str, writer: int, times: int) -> None:
    """One racing writer: `times` artifacts whose three files all carry the writer and round."""
    def fill(staging: Path) -> dict:
        mark = f"{writer}/{round_}".encode()
        (staging / LIBRARY).write_bytes(mark * 1000)
        (staging / GRAPH).write_bytes(mark)
        return {"mark": mark.decode()}

    for round_ in range(times):
        write_artifact(out, fill)


def _race(out: Path, writers: int = 4, times: int = 40) -> None:
    context = multiprocessing.get_context("fork")  # the children keep the test's monkeypatches
    processes = [context.Process(target=_write_many, args=(str(out), w, times)) for w in range(writers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    manifest = read_manifest(out)  # the library's hash agrees with the manifest: one writer's whole artifact
    assert (out / GRAPH).read_bytes() == manifest["mark"].encode()
    assert (out / LIBRARY).read_bytes() == manifest["mark"].encode() * 1000
    assert [p for p in _leftovers(out) if not p.endswith(".lock")] == []


def test_many_writers_swapping_one_directory(tmp_path):
    """4 processes x 40 artifacts into one path: every swap succeeds (renameat2 RENAME_EXCHANGE)."""
    _race(tmp_path / "art")
    assert _leftovers(tmp_path / "art") == []


def test_many_writers_where_the_filesystem_cannot_exchange(tmp_path, monkeypatch):
    """The same race through the fallback, two renames under an flock: as on NFS, which answers EINVAL
    to renameat2's flags, and where the C library has no renameat2."""
    def refused(source, target, flags):
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), str(source))

    monkeypatch.setattr("cnncompile.fileio._renameat2", refused)
    _race(tmp_path / "art")
    monkeypatch.undo()
    monkeypatch.setattr("cnncompile.fileio._libc_renameat2", lambda: None)
    _race(tmp_path / "art")


def test_a_simulated_full_disk_is_one_line_and_keeps_the_previous_artifact(models, previous, monkeypatch, capsys):
    before = _snapshot(previous)

    def full(directory: Path) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(directory / LIBRARY))

    monkeypatch.setattr(artifact, "sync_directory", full)
    assert main(["compile", str(models[1]), "--target", "llvm", "-p", "O1", "-o", str(previous)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"cnncompile: error: no space left on device writing {previous}; free space or choose another "
                   "-o directory (nothing was written, what was there is unchanged)")
    assert _snapshot(previous) == before and _leftovers(previous) == []


def test_a_full_disk_in_an_atomic_file_write(tmp_path):
    target = tmp_path / "out.npz"
    target.write_bytes(b"old")

    def half(handle) -> None:
        handle.write(b"new, half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(DiskFull, match=f"no space left on device writing {target}"):
        write_atomically(target, half)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.npz"]


def test_the_linkers_words_for_a_full_disk_are_a_full_disk():
    assert is_disk_full(RuntimeError("Compilation error:\n/usr/bin/ld: final link failed: No space left on device"))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not is_disk_full(RuntimeError("Compilation error: undefined reference to `main'"))
    assert not is_disk_full(CnnCompileError("cannot write"))


@pytest.fixture
def small_filesystem(tmp_path):
    """A 1 MiB tmpfs, where this machine lets the test mount one (root with CAP_SYS_ADMIN)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                                                       capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN); the simulated ENOSPC test covers it")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def _free_bytes(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def test_a_real_full_disk_fails_cleanly_wherever_the_space_ends(models, small_filesystem, capsys):
    """The disk filled so that the save of the same build fails in the library, or in the graph after it."""
    out = small_filesystem / "art"
    assert main(["compile", str(models[0]), "--target", "llvm", "-p", "O0", "-o", str(out)]) == 0
    before = _snapshot(out)
    library = (out / LIBRARY).stat().st_size
    for room in (0, library // 2, library + 2048):
        (small_filesystem / "filler").unlink(missing_ok=True)
        (small_filesystem / "filler").write_bytes(b"\0" * max(0, _free_bytes(small_filesystem) - room))
        free = _free_bytes(small_filesystem)
        assert main(["compile", str(models[0]), "--target", "llvm", "-p", "O0", "-o", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"cnncompile: error: no space left on device writing {out}; free space or choose "
                              "another -o directory") and len(err.splitlines()) == 1
        assert _snapshot(out) == before and _leftovers(out) == [] and _free_bytes(small_filesystem) == free
    _runs(out)
