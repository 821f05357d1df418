"""BatchNorm folding: an inference BatchNorm disappears into the Conv, ConvTranspose or Gemm before it.

In inference mode BatchNormalization is a per-channel affine map of its input y:

    BN(y) = (y - mean) / sqrt(var + eps) * scale + B = a * y + c,
    a = scale / sqrt(var + eps),   c = B - mean * a.

Conv is linear in its weights, and output channel m reads only W[m]:

    conv(x, W, b)[n, m] = sum_{i,k} W[m, i, k] * x[n, i, . + k] + b[m],

so a[m] * conv(x, W, b)[n, m] + c[m] = conv(x, W', b')[n, m] with

    W'[m] = a[m] * W[m],   b' = a * b + c   (b = 0 when the conv has none).

ConvTranspose keeps its weights as (C_in, M/G, k...) for G groups; output channel
g * M/G + j of group g reads W[i, j] for the inputs i of that group, so W'[i, j] =
a[g(i) * M/G + j] * W[i, j] with g(i) = i // (C_in/G), and b' as for Conv.

Gemm computes Y = alpha * A @ op(B) + beta * C, and column n of Y reads column n of op(B):

    a * Y + c = alpha * A @ (op(B) * a) + (a * beta * C + c),

so op(B)'s columns scale by a (B's rows when transB = 1) and C' = a * beta * C + c with
beta' = 1 (C' = c when there is no C).

Each fold is refused when a weight is shared with another node (folding would need a
second copy), when the host's output has other readers, or when the statistics are not
constants. A BatchNorm no host absorbs becomes a ChannelAffine, the same map with a and c
precomputed, into which later passes fold per-channel Mul/Add and activations.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from cnncompile.ir.graph import Value
from cnncompile.ops.conv import Conv, ConvTranspose
from cnncompile.ops.fused import ChannelAffine, EpilogueAttrs
from cnncompile.ops.linalg import Gemm
from cnncompile.ops.norm import BatchNormalization
from cnncompile.ops.registry import OpDef
from cnncompile.passes import pattern as P
from cnncompile.passes.pattern import Match


def bn_affine(scale: np.ndarray, shift: np.ndarray, mean: np.ndarray, var: np.ndarray,
              epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """(a, c) with BN(y) = a * y + c, computed in float64."""
    a = np.asarray(scale, np.float64) / np.sqrt(np.asarray(var, np.float64) + epsilon)
    return a, np.asarray(shift, np.float64) - np.asarray(mean, np.float64) * a


def along(vector: np.ndarray, axis: int, rank: int) -> np.ndarray:
    """`vector` shaped to broadcast along `axis` of a rank-`rank` array."""
    shape = [1] * rank
    shape[axis] = -1
    return vector.reshape(shape)


def fold_into_conv(w: np.ndarray, b: np.ndarray | None, a: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Conv weights and bias that compute a * conv(x, w, b) + c; in w's dtype."""
    bias = c if b is None else a * b + c
    return (w * along(a, 0, w.ndim)).astype(w.dtype), bias.astype(w.dtype)


def fold_into_conv_transpose(w: np.ndarray, b: np.ndarray | None, a: np.ndarray, c: np.ndarray,
                             group: int) -> tuple[np.ndarray, np.ndarray]:
    """ConvTranspose weights (C_in, M/G, k...) and bias that compute a * conv_transpose(x, w, b) + c."""
    c_in, per_group = w.shape[:2]
    blocks = w.reshape(group, c_in // group, per_group, *w.shape[2:])
    scaled = blocks * a.reshape(group, 1, per_group, *(1,) * (w.ndim - 2))
    bias = c if b is None else a * b + c
    return scaled.reshape(w.shape).astype(w.dtype), bias.astype(w.dtype)


def fold_into_gemm(b: np.ndarray, c: np.ndarray | None, beta: float, trans_b: int, a: np.ndarray,
                   shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gemm's B and C (with beta = 1) that compute a * gemm(A, B, C) + shift, column-wise."""
    scaled = b * along(a, 0 if trans_b else 1, 2)
    new_c = shift if c is None else a * beta * c + shift
    return scaled.astype(b.dtype), np.asarray(new_c).astype(b.dtype)


PER_CHANNEL = P.where(lambda attrs: attrs.spatial == 1, "spatial=0 keeps statistics per position, not per channel")


def bn_after(host: P.Op) -> P.Op:
    """A per-channel BatchNorm with constant statistics reading `host`."""
    return P.op(BatchNormalization, host, *P.consts("scale", "shift", "mean", "var"), name="bn",
                attrs=PER_CHANNEL)


def _affine(m: Match) -> tuple[np.ndarray, np.ndarray]:
    return bn_affine(m.const("scale"), m.const("shift"), m.const("mean"), m.const("var"), m.node("bn").attrs.epsilon)


def weighted(host: OpDef, name: str) -> P.Op:
    """`host`(x, W, B?) with W and B constants nothing else reads, its output read only by the match."""
    return P.op(host, P.var("x"), P.const("w", single_use=True), P.opt(P.const("b", single_use=True)),
                name=name, single_use=True)


@P.rule(bn_after(weighted(Conv, "conv")))
def fold_bn_into_conv(m: Match) -> list[Value]:
    """Conv -> BatchNorm becomes one Conv with scaled weights and a new bias."""
    conv = m.node("conv")
    w, b = fold_into_conv(m.const("w"), m.const("b"), *_affine(m))
    weight, bias = m.add_constant(w, f"{conv.name}_weight"), m.add_constant(b, f"{conv.name}_bias")
    return m.add_node(Conv, [m["x"], weight, bias], conv.attrs, name=conv.name)


@P.rule(bn_after(weighted(ConvTranspose, "deconv")))
def fold_bn_into_conv_transpose(m: Match) -> list[Value]:
    """ConvTranspose -> BatchNorm becomes one ConvTranspose with scaled weights and a new bias."""
    deconv = m.node("deconv")
    w, b = fold_into_conv_transpose(m.const("w"), m.const("b"), *_affine(m), deconv.attrs.group)
    weight, bias = m.add_constant(w, f"{deconv.name}_weight"), m.add_constant(b, f"{deconv.name}_bias")
    return m.add_node(ConvTranspose, [m["x"], weight, bias], deconv.attrs, name=deconv.name)


@P.rule(bn_after(weighted(Gemm, "gemm")))
def fold_bn_into_gemm(m: Match) -> list[Value]:
    """Gemm -> BatchNorm becomes one Gemm with scaled B and a new C."""
    gemm = m.node("gemm")
    a, shift = _affine(m)
    w, c = fold_into_gemm(m.const("w"), m.const("b"), gemm.attrs.beta, gemm.attrs.transB, a, shift)
    weight, bias = m.add_constant(w, f"{gemm.name}_weight"), m.add_constant(c, f"{gemm.name}_bias")
    return m.add_node(Gemm, [m["x"], weight, bias], replace(gemm.attrs, beta=1.0), name=gemm.name)


FOLD_BATCHNORM_RULES = [fold_bn_into_conv, fold_bn_into_conv_transpose, fold_bn_into_gemm]


@P.rule(bn_after(P.var("x")))
def batchnorm_to_affine(m: Match) -> list[Value]:
    """BatchNorm becomes ChannelAffine: a and c computed once, at compile time."""
    x, bn = m["x"], m.node("bn")
    dtype = x.type.dtype.numpy
    a, c = (along(v, 0, x.type.rank - 1).astype(dtype) for v in _affine(m))
    scale, shift = m.add_constant(a, f"{bn.name}_scale"), m.add_constant(c, f"{bn.name}_shift")
    return m.add_node(ChannelAffine, [x, scale, shift], EpilogueAttrs(), name=bn.name)


AFFINE_RULES = [batchnorm_to_affine]
