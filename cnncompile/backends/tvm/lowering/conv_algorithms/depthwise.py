"""depthwise: conv[n, o, p] = sum_rk padded[n, o / multiplier, p*s + rk*d] w[o, 0, rk], one channel's
window sum with no reduction over channels (kind CONV, the plain direct template)."""

from __future__ import annotations

from tvm import te

from cnncompile.backends.tvm.kernel import CONV_STAGE, Kernel, KernelKind
from cnncompile.backends.tvm.lowering.conv_algorithms.problem import ConvProblem


def depthwise(p: ConvProblem) -> Kernel:
    padded = p.padded()
    multiplier = p.group_out
    rk = [te.reduce_axis((0, k), name=f"rk{i}") for i, k in enumerate(p.taps)]

    def compute(n, o, *q):
        channel = o // multiplier if multiplier > 1 else o
        position = [qi * s + ki * d for qi, ki, s, d in zip(q, rk, p.window.strides, p.window.dilations)]
        return te.sum(padded[(n, channel, *position)] * p.w[(o, 0, *rk)], axis=rk)

    conv = te.compute(p.out_shape, compute, name=CONV_STAGE)
    return Kernel([p.epilogue.apply(conv)], KernelKind.CONV)
