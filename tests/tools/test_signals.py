"""SIGTERM, SIGHUP and Ctrl-C inside `termination_as_interrupt` are raised as themselves, also when they land
inside TVM's compiler, whose FFI turns an exception raised in a Python callback into a bare RuntimeError."""

import os
import signal
import time

import pytest
import tvm

from cnncompile.tools.signals import Terminated, exit_status, termination_as_interrupt


def a_signal_inside_a_tvm_pass(sig: int) -> None:
    """A module pass written in Python, as TVM's TIR pipeline is, that receives `sig` while it runs."""
    @tvm.ir.transform.module_pass(opt_level=0)
    def receiving(mod, _ctx):
        os.kill(os.getpid(), sig)
        time.sleep(2)  # the handler raises here
        return mod

    receiving(tvm.IRModule())


@pytest.mark.parametrize("sig, raised", [(signal.SIGTERM, Terminated), (signal.SIGHUP, Terminated),
                                         (signal.SIGINT, KeyboardInterrupt)])
def test_a_signal_inside_tvm_is_raised_as_the_interrupt(sig, raised, ctrl_c_raises):
    with pytest.raises(raised) as info:
        with termination_as_interrupt():
            a_signal_inside_a_tvm_pass(sig)
    assert exit_status(info.value) == 128 + sig


def test_without_it_tvm_leaves_a_runtime_error(ctrl_c_raises):
    """The negative control: Python's own Ctrl-C handler, raised in the pass, reaches us as RuntimeError."""
    with pytest.raises(RuntimeError):
        a_signal_inside_a_tvm_pass(signal.SIGINT)


def test_an_ordinary_error_stays_itself():
    with pytest.raises(ValueError, match="not an interrupt"):
        with termination_as_interrupt():
            raise ValueError("not an interrupt")


def test_the_handlers_are_restored(ctrl_c_raises):
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    with termination_as_interrupt():
        pass
    assert {sig: signal.getsignal(sig) for sig in before} == before
