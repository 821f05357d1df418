"""The algorithms and the workloads they apply to.

    direct         the definition: every output a dot product over (channels, window)
    im2col_gemm    windows unrolled into a matrix, then one GEMM per group
    gemm_1x1       a 1x1, stride-1, unpadded conv is already a GEMM: no unrolling
    winograd_f2x3  2-D 3x3 stride-1: 2x2 output tiles from 4x4 input tiles, 16 multiplies
                   per tile instead of 36 (weights transformed at compile time)
    winograd_f4x3  the same with 4x4 output tiles from 6x6 input tiles (36 instead of 144)
    depthwise      one input channel per group: a per-channel window sum, no reduction
                   over channels
    fft            stride-1, undilated: pointwise products in the frequency domain, whose
                   cost does not grow with the kernel's size
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from cnncompile.algorithms.windows import AutoPad, Window, resolve_window
from cnncompile.ir.types import DType, Layout, LayoutKind, TensorType


class ConvAlgorithm(enum.Enum):
    DIRECT = "direct"
    IM2COL_GEMM = "im2col_gemm"
    GEMM_1X1 = "gemm_1x1"
    WINOGRAD_F2X3 = "winograd_f2x3"
    WINOGRAD_F4X3 = "winograd_f4x3"
    DEPTHWISE = "depthwise"
    FFT = "fft"

    @property
    def winograd_tile(self) -> int | None:
        """m of a Winograd F(m, 3) algorithm (the output tile's side), None for the others."""
        return {"winograd_f2x3": 2, "winograd_f4x3": 4}.get(self.value)


@dataclass(frozen=True)
class ConvSpec:
    """One convolution workload: what decides which algorithms apply and what each costs."""

    batch: int
    in_channels: int
    out_channels: int
    group: int
    spatial: tuple[int, ...]
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads_begin: tuple[int, ...]
    pads_end: tuple[int, ...]
    out: tuple[int, ...]
    dtype: DType

    @classmethod
    def of(cls, x: TensorType, w: TensorType, *, strides: tuple[int, ...] | None = None,
           dilations: tuple[int, ...] | None = None, pads: tuple[int, ...] | None = None,
           auto_pad: AutoPad = AutoPad.NOTSET, group: int = 1, **_: object) -> ConvSpec:
        """The workload of a conv with input X, weights W and Conv's attributes (given as keywords)."""
        window = resolve_window("Conv", x.shape[2:], w.shape[2:], strides, dilations, pads, auto_pad)
        return cls(x.shape[0], x.shape[1], w.shape[0], group, x.shape[2:], window.kernel, window.strides,
                   window.dilations, window.pads_begin, window.pads_end, window.out, x.dtype)

    @property
    def window(self) -> Window:
        return Window(self.kernel, self.strides, self.dilations, self.pads_begin, self.pads_end, self.out)

    @property
    def macs(self) -> int:
        """Multiply-adds of the direct algorithm."""
        return self.batch * self.out_channels * math.prod(self.out) * (self.in_channels // self.group) \
            * math.prod(self.kernel)

    def __str__(self) -> str:
        dims = "x".join(map(str, self.spatial))
        kernel = "x".join(map(str, self.kernel))
        extras = [f"s{'x'.join(map(str, self.strides))}"] if any(s != 1 for s in self.strides) else []
        extras += [f"d{'x'.join(map(str, self.dilations))}"] if any(d != 1 for d in self.dilations) else []
        extras += [f"g{self.group}"] if self.group != 1 else []
        return f"{self.batch}x{self.in_channels}x{dims} -> {self.out_channels} k{kernel} {' '.join(extras)}".rstrip()


def _transforms_in_reduced(spec: ConvSpec) -> str | None:
    """Winograd's and the FFT's transforms multiply the operands' rounding error by their matrices' norms (F(4,3)
    by ~100x), which float32 absorbs and a 16-bit float does not: a reduced-precision conv computes its dot
    products directly."""
    if spec.dtype.is_reduced:
        return f"its transforms amplify {spec.dtype.value}'s rounding error; in reduced precision convs run direct"
    return None


def _winograd(spec: ConvSpec) -> str | None:
    reduced = _transforms_in_reduced(spec)
    if reduced:
        return reduced
    if len(spec.kernel) != 2 or spec.kernel != (3, 3):
        return f"Winograd F(m,3) is for 2-D 3x3 kernels, this one is {'x'.join(map(str, spec.kernel))}"
    if any(s != 1 for s in spec.strides) or any(d != 1 for d in spec.dilations):
        return "Winograd needs stride 1 and dilation 1"
    if spec.group != 1:
        return "Winograd here transforms ungrouped convs only"
    return None


def _gemm_1x1(spec: ConvSpec) -> str | None:
    if any(k != 1 for k in spec.kernel) or any(s != 1 for s in spec.strides) \
            or any(spec.pads_begin) or any(spec.pads_end):
        return "gemm_1x1 needs a 1x1 kernel, stride 1 and no padding"
    return None


def _depthwise(spec: ConvSpec) -> str | None:
    if spec.group != spec.in_channels:
        return f"depthwise needs one input channel per group (group {spec.group}, {spec.in_channels} channels)"
    return None


def _fft(spec: ConvSpec) -> str | None:
    reduced = _transforms_in_reduced(spec)
    if reduced:
        return reduced
    if any(s != 1 for s in spec.strides) or any(d != 1 for d in spec.dilations):
        return "fft needs stride 1 and dilation 1"
    return None


_RULES = {
    ConvAlgorithm.DIRECT: lambda spec: None,
    ConvAlgorithm.IM2COL_GEMM: lambda spec: None,
    ConvAlgorithm.GEMM_1X1: _gemm_1x1,
    ConvAlgorithm.WINOGRAD_F2X3: _winograd,
    ConvAlgorithm.WINOGRAD_F4X3: _winograd,
    ConvAlgorithm.DEPTHWISE: _depthwise,
    ConvAlgorithm.FFT: _fft,
}


def why_not(algorithm: ConvAlgorithm, spec: ConvSpec) -> str | None:
    """None when `algorithm` computes `spec`; otherwise the reason it does not."""
    return _RULES[algorithm](spec)


def applicable(spec: ConvSpec) -> list[ConvAlgorithm]:
    return [a for a in ConvAlgorithm if why_not(a, spec) is None]


# The layouts each algorithm's kernels read and write feature maps in, besides NCHW: direct,
# depthwise and 1x1 convs keep the output channels innermost in any of them; Winograd's
# transforms vectorize over channel blocks; the others transform their operands into
# matrices or tiles of their own and work from NCHW.
_LAYOUTS: dict[ConvAlgorithm, frozenset[LayoutKind]] = {
    ConvAlgorithm.DIRECT: frozenset({LayoutKind.NCHWC, LayoutKind.NHWC}),
    ConvAlgorithm.DEPTHWISE: frozenset({LayoutKind.NCHWC, LayoutKind.NHWC}),
    ConvAlgorithm.GEMM_1X1: frozenset({LayoutKind.NCHWC, LayoutKind.NHWC}),
    ConvAlgorithm.WINOGRAD_F2X3: frozenset({LayoutKind.NCHWC}),
    ConvAlgorithm.WINOGRAD_F4X3: frozenset({LayoutKind.NCHWC}),
}


def layout_kinds(algorithm: ConvAlgorithm) -> frozenset[LayoutKind]:
    """The layouts besides NCHW that `algorithm`'s kernels store feature maps in."""
    return _LAYOUTS.get(algorithm, frozenset())


def why_not_layout(algorithm: ConvAlgorithm, layout: Layout | None, x: TensorType, y_shape: tuple[int, ...]) -> str | None:
    """None when `algorithm` can read X (in its layout) and write Y (of shape `y_shape`) in `layout`.

    X comes either in the logical order or in the same kind of layout as Y (an NCHWc block
    of its own: a conv may read NCHW8c and write NCHW16c).
    """
    if layout is None or layout.kind is LayoutKind.NCHW:
        if x.layout is not None and x.layout.kind is not LayoutKind.NCHW:
            return f"it writes NCHW but reads X in {x.layout}"
        return None
    if layout.kind not in layout_kinds(algorithm):
        kinds = sorted(kind.value for kind in layout_kinds(algorithm))
        return f"{algorithm.value} works in {' or '.join(['NCHW', *kinds])} only, not {layout}"
    if not layout.holds(y_shape):
        return f"its output {list(y_shape)} cannot be stored as {layout}"
    if x.layout is not None and x.layout.kind not in (LayoutKind.NCHW, layout.kind):
        return f"it writes {layout} but reads X in {x.layout}"
    return None
