"""Window arithmetic shared by convolution and pooling.

Output size follows the seeds' formula, generalised to dilation and asymmetric padding:
    out = floor((in + pad_begin + pad_end - ((k - 1) * d + 1)) / s) + 1
with `ceil` in place of `floor` for pooling's ceil_mode, where the last window may overhang
the end of the padded input (even one shorter than the window) but must start inside it.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

from cnncompile.errors import ShapeError


class AutoPad(enum.Enum):
    NOTSET = "NOTSET"
    SAME_UPPER = "SAME_UPPER"
    SAME_LOWER = "SAME_LOWER"
    VALID = "VALID"


@dataclass(frozen=True)
class Window:
    """A resolved sliding window over the spatial dimensions of one tensor."""

    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads_begin: tuple[int, ...]
    pads_end: tuple[int, ...]
    out: tuple[int, ...]

    @property
    def extent(self) -> tuple[int, ...]:
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel, self.dilations))


def resolve_window(
    op: str,
    spatial: tuple[int, ...],
    kernel: tuple[int, ...],
    strides: tuple[int, ...] | None,
    dilations: tuple[int, ...] | None,
    pads: tuple[int, ...] | None,
    auto_pad: AutoPad,
    ceil_mode: bool = False,
) -> Window:
    """Fill defaults, apply auto_pad and compute the output size, checking every number."""
    rank = len(spatial)
    strides = strides or (1,) * rank
    dilations = dilations or (1,) * rank
    pads = pads or (0,) * (2 * rank)
    for label, values, want in (("kernel_shape", kernel, rank), ("strides", strides, rank),
                                ("dilations", dilations, rank), ("pads", pads, 2 * rank)):
        if len(values) != want:
            raise ShapeError(f"{op}: {label} has {len(values)} entries, expected {want} for {rank}-D input")
    if any(v < 1 for v in (*kernel, *strides, *dilations)):
        raise ShapeError(f"{op}: kernel_shape, strides and dilations must be positive, got "
                         f"{list(kernel)}, {list(strides)}, {list(dilations)}")
    if any(p < 0 for p in pads):
        raise ShapeError(f"{op}: pads must be non-negative, got {list(pads)}")
    extent = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilations))
    begin, end = list(pads[:rank]), list(pads[rank:])
    if auto_pad is AutoPad.VALID:
        begin, end = [0] * rank, [0] * rank
    elif auto_pad in (AutoPad.SAME_UPPER, AutoPad.SAME_LOWER):
        for i in range(rank):
            total = max((math.ceil(spatial[i] / strides[i]) - 1) * strides[i] + extent[i] - spatial[i], 0)
            small, large = total // 2, total - total // 2
            begin[i], end[i] = (small, large) if auto_pad is AutoPad.SAME_UPPER else (large, small)
    out = []
    for i in range(rank):
        span = spatial[i] + begin[i] + end[i] - extent[i]
        size = (math.ceil(span / strides[i]) if ceil_mode else span // strides[i]) + 1
        if ceil_mode and (size - 1) * strides[i] >= spatial[i] + begin[i]:
            size -= 1  # the last window would start inside the end padding: drop it
        if size < 1 or (span < 0 and not ceil_mode):
            raise ShapeError(
                f"{op}: window of extent {extent[i]} does not fit spatial dim {i} of size {spatial[i]} "
                f"with pads ({begin[i]}, {end[i]})"
            )
        out.append(size)
    return Window(tuple(kernel), tuple(strides), tuple(dilations), tuple(begin), tuple(end), tuple(out))


def windows(x: np.ndarray, window: Window, fill: float = 0.0) -> np.ndarray:
    """View of `x` (N, C, *spatial) as (N, C, *out, *kernel) patches, padding with `fill`.

    Pads the input (including any extra end padding a ceil-mode window needs), takes
    numpy's sliding_window_view over the dilated extent, then strides and dilates by
    slicing: no copies beyond the padded input.
    """
    rank = len(window.kernel)
    need_end = [
        max((o - 1) * s + e - (x.shape[2 + i] + b), 0)
        for i, (o, s, e, b) in enumerate(zip(window.out, window.strides, window.extent, window.pads_begin))
    ]
    pad_width = [(0, 0), (0, 0)] + [(b, max(e, n)) for b, e, n in zip(window.pads_begin, window.pads_end, need_end)]
    if any(p != (0, 0) for p in pad_width):
        x = np.pad(x, pad_width, constant_values=fill)
    view = np.lib.stride_tricks.sliding_window_view(x, window.extent, axis=tuple(range(2, 2 + rank)))
    index = (slice(None), slice(None))
    index += tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(window.out, window.strides))
    index += tuple(slice(None, None, d) for d in window.dilations)
    return view[index]


def exact_output_size(size: int, kernel: int, pad: int, stride: int) -> int:
    """The seeds' (W - K + 2P) / S + 1, refusing sizes where the last window would not fit.

    Frameworks floor the quotient and silently drop the input's last rows; strict model
    builders call this instead so that the mistake is reported at the layer that made it.
    """
    span = size - kernel + 2 * pad
    if span < 0 or span % stride:
        exact = span / stride + 1
        raise ShapeError(
            f"({size} - {kernel} + 2*{pad}) / {stride} + 1 = {exact:.2f} is not a whole number: "
            f"a {kernel}-wide window at stride {stride} does not fit {size} inputs with padding {pad}; "
            "change the padding or stride, or allow floor semantics (strict=False)"
        )
    return span // stride + 1


def reduce_windows(x: np.ndarray, window: Window, ufunc: np.ufunc, fill: float = 0.0) -> np.ndarray:
    """Combine each window of `x` with `ufunc` (np.maximum, np.add): (N, C, *out).

    Loops over the kernel's offsets, not the pixels: each step is one vectorised ufunc
    over a strided (N, C, *out) slice, far faster than reducing the patches' small
    trailing axes.
    """
    patches = windows(x, window, fill)
    rank = len(window.kernel)
    result = None
    for offset in np.ndindex(*window.kernel):
        tap = patches[(Ellipsis, *offset)] if rank else patches
        result = tap.copy() if result is None else ufunc(result, tap, out=result)
    return result
