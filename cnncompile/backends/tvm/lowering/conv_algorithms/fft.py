"""fft: the correlation in the frequency domain.

DFTs along each axis (`dft0`, `dft1`, ...), a complex multiply-accumulate with the
kernel's spectrum (computed at build time) over the group's input channels (`spectrum`),
inverse DFTs (`idft0`, ...) that produce only the cropped outputs, then the epilogue. The
cos/sin tables depend on the image size, so they are `Kernel.table`s computed in float64
and rounded once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
from tvm import te, tirx

from cnncompile.backends.tvm.kernel import DFT_STAGE, IDFT_STAGE, SPECTRUM_STAGE, Kernel, shape_of
from cnncompile.backends.tvm.lowering.conv_algorithms.problem import ConvProblem
from cnncompile.backends.tvm.intermediates import spectrum_dims


@dataclass(frozen=True)
class _Field:
    """A real (parts 1) or complex (parts 2) field over (N, C, *dims), stored (N, C, *dims[:-1], parts, dims[-1]):
    the last axis stays contiguous for vectors, and the part axis sits in the schedule's register tile."""

    read: Callable[[tirx.Expr, tirx.Expr, tirx.Expr, Sequence[tirx.Expr]], tirx.Expr]
    parts: int
    dims: tuple[int, ...]


def _stored(tensor: te.Tensor, parts: int, dims: tuple[int, ...]) -> _Field:
    return _Field(lambda n, c, q, d: tensor[(n, c, *d[:-1], q, d[-1])], parts, dims)


def _angles(rows: int, cols: int, length: int) -> np.ndarray:
    """2 pi (i j mod L) / L for i < rows, j < cols: exact integer phases, so large indices lose nothing."""
    return 2 * np.pi * (np.outer(np.arange(rows), np.arange(cols)) % length) / length


def forward_table(length: int, stored: int, real_input: bool) -> np.ndarray:
    """The DFT along one axis as a real table M[q_out, q_in, x, f] (out_q = sum M * in_q over x, q_in).

    A real input (the first axis transformed) keeps frequencies 0..L/2, the rest being
    their conjugates; its frequency axis is zero-extended to `stored` entries.
    """
    frequencies = length // 2 + 1 if real_input else length
    theta = _angles(length, frequencies, length)
    cos, sin = np.cos(theta), np.sin(theta)
    if real_input:
        table = np.stack([cos, -sin])[:, None]
    else:
        table = np.stack([np.stack([cos, sin]), np.stack([-sin, cos])])
    return np.pad(table, [(0, 0)] * 3 + [(0, stored - frequencies)])


def inverse_table(length: int, stored: int, out: int, real_output: bool) -> np.ndarray:
    """The inverse DFT along one axis, only at the `out` positions the conv keeps: M[q_out, q_in, f, p].

    The real output (the last axis, held as frequencies 0..L/2 of `stored`) counts each
    frequency that stands for a conjugate pair twice.
    """
    frequencies = length // 2 + 1 if real_output else length
    theta = _angles(frequencies, out, length)
    cos, sin = np.cos(theta) / length, np.sin(theta) / length
    if real_output:
        pairs = np.full(frequencies, 2.0)
        pairs[0] = 1.0
        if length % 2 == 0:
            pairs[-1] = 1.0
        table = np.stack([cos * pairs[:, None], -sin * pairs[:, None]])[None]
    else:
        table = np.stack([np.stack([cos, -sin]), np.stack([sin, cos])])
    return np.pad(table, [(0, 0), (0, 0), (0, stored - frequencies), (0, 0)])


def kernel_spectrum(w: np.ndarray, lengths: tuple[int, ...], stored: int) -> np.ndarray:
    """conj(DFT(w zero-padded to `lengths`)), frequencies 0..L/2 on the last axis extended to `stored`, as
    (O, C/G, *F[:-1], 2, stored): correlating with w multiplies the input's spectrum by it."""
    axes = tuple(range(2, w.ndim))
    spectrum = np.conj(np.fft.rfftn(w.astype(np.float64), s=lengths, axes=axes))
    parts = np.stack([spectrum.real, spectrum.imag], axis=-2)
    pad = [(0, 0)] * (parts.ndim - 1) + [(0, stored - spectrum.shape[-1])]
    return np.ascontiguousarray(np.pad(parts, pad)).astype(w.dtype)


def _transform_axis(kernel: Kernel, field: _Field, axis: int, table: np.ndarray, channels: int, batch: int,
                    dtype: str, name: str) -> _Field:
    """out[..., f on `axis`, ...] = sum_{x, q_in} field[..., x, ..., q_in] * table[q_out, q_in, x, f]."""
    parts, _, length, new_length = table.shape
    matrix = kernel.table(table.astype(dtype), f"{name}_table")
    x = te.reduce_axis((0, length), name="x")
    q_in = te.reduce_axis((0, field.parts), name="q")
    dims = list(field.dims)
    dims[axis] = new_length

    def compute(n, c, *index):
        *lead, q, last = index
        position = [*lead, last]
        source = list(position)
        source[axis] = x
        return te.sum(field.read(n, c, q_in, source) * matrix[q, q_in, x, position[axis]], axis=[x, q_in])

    tensor = te.compute((batch, channels, *dims[:-1], parts, dims[-1]), compute, name=name)
    return _stored(tensor, parts, tuple(dims))


def fft(p: ConvProblem) -> Kernel:
    """Correlation as y = IDFT(DFT(padded x) * conj(DFT(w))) over the padded input's lengths L: no output
    position p < L - k + 1 wraps around, so the circular result is the conv once cropped.

    The DFTs are dense matrix products, O(L^2) per axis rather than a fast FFT's
    O(L log L): TE has no FFT primitive, and a butterfly network written in TE would be
    log L dependent stages of strided shuffles the schedules cannot vectorize. The
    product form keeps every stage a small GEMM-shaped reduction over one axis.
    """
    kernel = p.kernel()
    padded = p.padded()
    lengths = shape_of(padded)[2:]
    batch, channels = shape_of(p.x)[:2]
    last = len(lengths) - 1
    stored = spectrum_dims(p.plan.spec, p.call.lanes)[-1]
    field = _Field(lambda n, c, q, d: padded[(n, c, *d)], 1, tuple(lengths))
    forward = [(last, forward_table(lengths[-1], stored, True))]
    forward += [(axis, forward_table(lengths[axis], lengths[axis], False)) for axis in reversed(range(last))]
    for step, (axis, table) in enumerate(forward):
        field = _transform_axis(kernel, field, axis, table, channels, batch, p.dtype, f"{DFT_STAGE}{step}")

    spectrum = kernel.repack(1, (p.out_shape[1], p.group_in, *field.dims[:-1], 2, stored), p.dtype,
                             partial(kernel_spectrum, lengths=lengths, stored=stored), "w_spectrum")
    c = te.reduce_axis((0, p.group_in), name="c")
    source = field

    def multiply(n, o, *index):
        *lead, q, f = index
        channel = p.input_channel(o // p.group_out, c)
        xr, xi = source.read(n, channel, 0, [*lead, f]), source.read(n, channel, 1, [*lead, f])
        wr, wi = spectrum[(o, c, *lead, 0, f)], spectrum[(o, c, *lead, 1, f)]
        return te.sum(tirx.Select(q == 0, xr * wr - xi * wi, xr * wi + xi * wr), axis=c)

    product = te.compute((batch, p.out_shape[1], *field.dims[:-1], 2, field.dims[-1]), multiply, name=SPECTRUM_STAGE)
    field = _stored(product, 2, field.dims)
    out = p.out_shape[2:]
    inverse = [(axis, inverse_table(lengths[axis], lengths[axis], out[axis], False)) for axis in range(last)]
    inverse += [(last, inverse_table(lengths[-1], stored, out[-1], True))]
    for step, (axis, table) in enumerate(inverse):
        field = _transform_axis(kernel, field, axis, table, p.out_shape[1], batch, p.dtype, f"{IDFT_STAGE}{step}")
    result = field
    kernel.outputs.append(p.epilogue.finish(lambda n, o, *q: result.read(n, o, 0, q), p.out_shape))
    return kernel
