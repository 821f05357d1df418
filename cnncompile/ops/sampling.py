"""Sampling and data movement by coordinates: GridSample, AffineGrid, Col2Im, MaxUnpool, CenterCropPad.

GridSample reads X at the points a normalized grid names, one axis at a time: each grid
coordinate is denormalized to a pixel coordinate (`denormalize`), moved into the input by
the padding mode (`fix_coordinate`), and becomes taps along its axis (one for nearest, two
for linear, four for cubic) with their weights and tap indices (`axis_taps`); an output
element is the sum, over every combination of one tap per axis, of the product of the
weights times the pixel those taps name (0 outside the input under zeros padding). That is
onnx.reference's definition (PyTorch's GridSampler) transcribed, vectorised over all points,
but for cubic border sampling, which clamps taps alone as onnxruntime and PyTorch do.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cnncompile.algorithms.windows import AutoPad, Window, resolve_window
from cnncompile.errors import ShapeError, UnsupportedError
from cnncompile.ir.types import TensorType
from cnncompile.ops.registry import declare, per_output

CUBIC_A = -0.75  # Keys' cubic convolution parameter, as PyTorch and onnx.reference use


class GridSampleMode(enum.Enum):
    """How a point between pixels is read; opset 16 spelled the first and last bilinear and bicubic."""

    LINEAR = "linear"
    NEAREST = "nearest"
    CUBIC = "cubic"

    @classmethod
    def _missing_(cls, value: object) -> GridSampleMode | None:
        return {"bilinear": cls.LINEAR, "bicubic": cls.CUBIC}.get(value)  # type: ignore[arg-type]

    @property
    def taps(self) -> int:
        return {GridSampleMode.NEAREST: 1, GridSampleMode.LINEAR: 2, GridSampleMode.CUBIC: 4}[self]


class GridPadding(enum.Enum):
    """What a point outside the input reads: zeros, the nearest border pixel, or its mirror image."""

    ZEROS = "zeros"
    BORDER = "border"
    REFLECTION = "reflection"


@dataclass(frozen=True)
class GridSampleAttrs:
    align_corners: int = 0
    mode: GridSampleMode = GridSampleMode.LINEAR
    padding_mode: GridPadding = GridPadding.ZEROS


def _check_float(op: str, name: str, t: TensorType) -> None:
    if not t.dtype.is_float:
        raise ShapeError(f"{op} takes a float {name}, got {t.dtype.value}; cast it to float32")


def _grid_sample_shape(x: TensorType, grid: TensorType, *, align_corners: int, mode: GridSampleMode,
                       padding_mode: GridPadding) -> TensorType:
    _check_float("GridSample", "X", x)
    _check_float("GridSample", "grid", grid)
    spatial = x.rank - 2
    if spatial < 1:
        raise ShapeError(f"GridSample needs X of rank >= 3 (N, C, *spatial), got X{list(x.shape)}")
    if grid.rank != x.rank or grid.shape[0] != x.shape[0] or grid.shape[-1] != spatial:
        raise ShapeError(f"GridSample: grid{list(grid.shape)} must be (N, *out_spatial, {spatial}) for "
                         f"X{list(x.shape)}: the same batch, one coordinate per spatial axis of X")
    if mode is GridSampleMode.CUBIC and spatial != 2:
        raise ShapeError(f"GridSample: cubic mode samples 2-D images (4-D X) only, as ONNX defines it; "
                         f"X{list(x.shape)} has {spatial} spatial axes: use linear or nearest")
    return TensorType((*x.shape[:2], *grid.shape[1:-1]), x.dtype)


def denormalize(g, length: int, align_corners: bool):
    """A grid coordinate in [-1, 1] as a pixel coordinate: -1 and 1 are the corner pixels' centres with
    align_corners, else their outer edges."""
    return (g + 1) / 2 * (length - 1) if align_corners else ((g + 1) * length - 1) / 2


def coordinate_bounds(length: int, align_corners: bool) -> tuple[float, float]:
    """The pixel coordinates that [-1, 1] maps to: where reflection mirrors."""
    return (0.0, length - 1.0) if align_corners else (-0.5, length - 0.5)


def reflect(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """x mirrored at low and high (repeatedly) until it lies between them: a triangle wave of period
    2 * (high - low), which reads x once (the TE form's expression stays small)."""
    span = high - low
    if span <= 0:  # a one-pixel axis under align_corners: every point is that pixel
        return np.full_like(x, low)
    return low + span - np.abs(np.mod(np.abs(x - low), 2 * span) - span)


def cubic_weights(t: np.ndarray) -> list[np.ndarray]:
    """Keys' cubic convolution weights of the taps at -1, 0, 1, 2 for a fraction t in [0, 1)."""
    a = CUBIC_A

    def near(d):  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def fix_coordinate(x: np.ndarray, length: int, align_corners: bool, padding: GridPadding) -> np.ndarray:
    """A pixel coordinate outside [-1, 1]'s image moved back by the padding mode (zeros leaves it)."""
    low, high = coordinate_bounds(length, align_corners)
    if padding is GridPadding.BORDER:
        return np.where((x < low) | (x > high), np.clip(x, 0, length - 1), x)
    if padding is GridPadding.REFLECTION:
        return reflect(x, low, high)
    return x


def cubic_border(attrs: GridSampleAttrs) -> bool:
    """Cubic sampling with border padding clamps each tap, not the point first: onnxruntime and PyTorch do
    (onnx.reference clamps the point too, which moves a point outside the image onto the border pixel)."""
    return attrs.mode is GridSampleMode.CUBIC and attrs.padding_mode is GridPadding.BORDER


def axis_taps(g: np.ndarray, length: int, attrs: GridSampleAttrs) -> list[tuple[np.ndarray, np.ndarray]]:
    """(index, weight) of each tap along one axis for grid coordinates `g`; an index may fall outside
    [0, length) only under zeros padding, where its weight is then 0."""
    align = bool(attrs.align_corners)
    x = denormalize(g, length, align)
    if attrs.mode is GridSampleMode.NEAREST:
        x = np.rint(x)  # halves to even, as PyTorch rounds
    if not cubic_border(attrs):
        x = fix_coordinate(x, length, align, attrs.padding_mode)
    base = np.floor(x)
    t = x - base
    offsets = {1: [0], 2: [0, 1], 4: [-1, 0, 1, 2]}[attrs.mode.taps]
    weights = {1: [np.ones_like(t)], 2: [1 - t, t], 4: cubic_weights(t)}[attrs.mode.taps]
    taps = []
    for offset, weight in zip(offsets, weights):
        index = base + offset
        if attrs.padding_mode is GridPadding.ZEROS:
            weight = np.where((index >= 0) & (index < length), weight, 0)
        elif attrs.padding_mode is GridPadding.BORDER:
            index = np.clip(index, 0, length - 1)
        else:
            index = np.trunc(reflect(index, *coordinate_bounds(length, align)))
        taps.append((np.clip(index, 0, length - 1).astype(np.int64), weight))
    return taps


@declare("GridSample", GridSampleAttrs, inputs=("X", "grid"), shape=_grid_sample_shape,
         flops=lambda inputs, outputs, attrs: outputs[0].numel * 2 * attrs.mode.taps ** (inputs[0].rank - 2))
def GridSample(x, grid, **attrs):
    """X read at the points of a normalized grid, by nearest, (multi-)linear or cubic interpolation."""
    attrs = GridSampleAttrs(**attrs)
    spatial = x.shape[2:]
    compute = np.result_type(x.dtype, grid.dtype)
    grid = grid.astype(compute, copy=False)
    # the grid's last axis lists coordinates fastest axis first (x, y, z): axis a reads entry r - 1 - a
    per_axis = [axis_taps(grid[..., len(spatial) - 1 - a], n, attrs) for a, n in enumerate(spatial)]
    batch = np.arange(x.shape[0]).reshape(-1, *(1,) * (grid.ndim - 2))
    out = np.zeros((*grid.shape[:-1], x.shape[1]), compute)
    for combination in itertools.product(*per_axis):
        weight = math.prod(w for _, w in combination)
        # advanced indices around the channel slice put the point axes first: (N, *out, C)
        out += weight[..., None] * x[(batch, slice(None), *(i for i, _ in combination))]
    return np.ascontiguousarray(np.moveaxis(out, -1, 1).astype(x.dtype, copy=False))


# -- AffineGrid ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AffineGridAttrs:
    """`size` is AffineGrid's second input, (N, C, H, W) or (N, C, D, H, W), known at compile time."""

    size: tuple[int, ...]
    align_corners: int = 0


def _affine_grid_shape(theta: TensorType, *, size: tuple[int, ...], align_corners: int) -> TensorType:
    _check_float("AffineGrid", "theta", theta)
    if len(size) not in (4, 5):
        raise ShapeError(f"AffineGrid: size must be (N, C, H, W) or (N, C, D, H, W), got {list(size)}")
    spatial = len(size) - 2
    if theta.shape != (size[0], spatial, spatial + 1):
        raise ShapeError(f"AffineGrid: theta{list(theta.shape)} must be (N, {spatial}, {spatial + 1}) "
                         f"for size {list(size)}")
    if min(size[2:]) < 1:
        raise ShapeError(f"AffineGrid: size {list(size)} has an empty spatial axis")
    return TensorType((size[0], *size[2:], spatial), theta.dtype)


def base_coordinates(length: int, align_corners: bool) -> np.ndarray:
    """The normalized coordinates of an axis's pixels: corner pixels at -1 and 1 with align_corners,
    else the pixel centres of [-1, 1] cut into `length` equal cells."""
    if align_corners:
        return np.linspace(-1.0, 1.0, length)
    return (2 * np.arange(length) + 1) / length - 1


def homogeneous_grid(spatial: Sequence[int], align_corners: bool) -> np.ndarray:
    """(*spatial, r + 1): each pixel's normalized (x, y[, z], 1), fastest axis first as GridSample reads them."""
    axes = np.meshgrid(*(base_coordinates(n, align_corners) for n in spatial), indexing="ij")
    return np.stack([*axes[::-1], np.ones(tuple(spatial))], axis=-1)


@declare("AffineGrid", AffineGridAttrs, inputs=("theta",), outputs=("grid",), shape=_affine_grid_shape,
         flops=lambda inputs, outputs, attrs: 2 * outputs[0].numel * (len(attrs.size) - 1),
         onnx_inputs_as_attrs={1: "size"})
def AffineGrid(theta, *, size, align_corners):
    """The sampling grid of affine maps theta: each output pixel's normalized coordinates times theta."""
    points = homogeneous_grid(size[2:], bool(align_corners)).astype(theta.dtype)
    return np.einsum("...j,nkj->n...k", points, theta).astype(theta.dtype, copy=False)


# -- CenterCropPad ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CenterCropPadAttrs:
    """`shape` is CenterCropPad's second input (one size per axis of `axes`), known at compile time."""

    shape: tuple[int, ...]
    axes: tuple[int, ...] | None = None


def crop_pad_offsets(dims: tuple[int, ...], shape: tuple[int, ...], axes: tuple[int, ...] | None) -> list[int]:
    """Per axis, where the input starts in the output: negative where it is cropped (centred, the odd
    element off the end), positive where it is padded (centred, the odd zero at the end)."""
    picked = list(range(len(dims))) if axes is None else [a % len(dims) for a in axes]
    if axes is not None and any(not -len(dims) <= a < len(dims) for a in axes):
        raise ShapeError(f"CenterCropPad: axes {list(axes)} out of range for rank {len(dims)}")
    if len(set(picked)) != len(picked):
        raise ShapeError(f"CenterCropPad: axes {list(axes or ())} repeat an axis")
    if len(shape) != len(picked):
        raise ShapeError(f"CenterCropPad: shape {list(shape)} needs one size per axis of {picked}")
    if min(shape, default=1) < 1:
        raise ShapeError(f"CenterCropPad: shape {list(shape)} must be positive")
    offsets = [0] * len(dims)
    for a, size in zip(picked, shape):
        offsets[a] = (size - dims[a]) // 2 if size > dims[a] else -((dims[a] - size) // 2)
    return offsets


def crop_pad_dims(dims: tuple[int, ...], shape: tuple[int, ...], axes: tuple[int, ...] | None) -> tuple[int, ...]:
    picked = list(range(len(dims))) if axes is None else [a % len(dims) for a in axes]
    sizes = dict(zip(picked, shape))
    return tuple(sizes.get(a, n) for a, n in enumerate(dims))


def _center_crop_pad_shape(x: TensorType, *, shape: tuple[int, ...], axes: tuple[int, ...] | None) -> TensorType:
    crop_pad_offsets(x.shape, shape, axes)
    return TensorType(crop_pad_dims(x.shape, shape, axes), x.dtype)


@declare("CenterCropPad", CenterCropPadAttrs, inputs=("input_data",), outputs=("output_data",),
         shape=_center_crop_pad_shape, flops=per_output(0), onnx_inputs_as_attrs={1: "shape"})
def CenterCropPad(x, *, shape, axes):
    """The input centre-cropped or zero-padded to `shape` along `axes` (all axes when none are given)."""
    dims = crop_pad_dims(x.shape, shape, axes)
    offsets = crop_pad_offsets(x.shape, shape, axes)
    out = np.zeros(dims, x.dtype)
    source = tuple(slice(max(-o, 0), max(-o, 0) + min(n, m)) for o, n, m in zip(offsets, x.shape, dims))
    target = tuple(slice(max(o, 0), max(o, 0) + min(n, m)) for o, n, m in zip(offsets, x.shape, dims))
    out[target] = x[source]
    return out


# -- Col2Im ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Col2ImAttrs:
    """`image_shape` and `block_shape` are Col2Im's second and third inputs, known at compile time."""

    image_shape: tuple[int, ...]
    block_shape: tuple[int, ...]
    dilations: tuple[int, ...] | None = None
    pads: tuple[int, ...] | None = None
    strides: tuple[int, ...] | None = None


def col2im_window(attrs: Col2ImAttrs) -> Window:
    """The sliding window whose blocks the columns hold: a convolution's over the (padded) image."""
    return resolve_window("Col2Im", attrs.image_shape, attrs.block_shape, attrs.strides, attrs.dilations,
                          attrs.pads, AutoPad.NOTSET)


def _col2im_shape(x: TensorType, **attrs) -> TensorType:
    attrs = Col2ImAttrs(**attrs)
    if len(attrs.image_shape) != len(attrs.block_shape):
        raise ShapeError(f"Col2Im: image_shape {list(attrs.image_shape)} and block_shape "
                         f"{list(attrs.block_shape)} must have one size per spatial axis each")
    window = col2im_window(attrs)
    block = math.prod(attrs.block_shape)
    if x.rank != 3 or x.shape[1] % block or x.shape[2] != math.prod(window.out):
        raise ShapeError(f"Col2Im: input{list(x.shape)} must be (N, C * {block}, {math.prod(window.out)}): a "
                         f"column per block position ({'x'.join(map(str, window.out))}) of {block}-element blocks")
    return TensorType((x.shape[0], x.shape[1] // block, *attrs.image_shape), x.dtype)


@declare("Col2Im", Col2ImAttrs, inputs=("input",), outputs=("output",), shape=_col2im_shape,
         flops=per_output(0), onnx_inputs_as_attrs={1: "image_shape", 2: "block_shape"})
def Col2Im(x, **attrs):
    """im2col undone: every column's block added back into the image where its window lies."""
    attrs = Col2ImAttrs(**attrs)
    window = col2im_window(attrs)
    n, channels = x.shape[0], x.shape[1] // math.prod(attrs.block_shape)
    blocks = x.reshape(n, channels, *attrs.block_shape, *window.out)
    padded = [i + b + e for i, b, e in zip(attrs.image_shape, window.pads_begin, window.pads_end)]
    image = np.zeros((n, channels, *padded), x.dtype)
    for offset in itertools.product(*(range(k) for k in attrs.block_shape)):
        # block element `offset` of every window lands on a strided slice of the padded image
        rows = tuple(slice(k * d, k * d + (o - 1) * s + 1, s)
                     for k, d, o, s in zip(offset, window.dilations, window.out, window.strides))
        image[(..., *rows)] += blocks[(slice(None), slice(None), *offset)]
    crop = tuple(slice(b, b + i) for b, i in zip(window.pads_begin, attrs.image_shape))
    return np.ascontiguousarray(image[(..., *crop)])


# -- MaxUnpool -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaxUnpoolAttrs:
    """`output_shape` is MaxUnpool's optional third input, known at compile time."""

    kernel_shape: tuple[int, ...]
    output_shape: tuple[int, ...] | None = None
    pads: tuple[int, ...] | None = None
    strides: tuple[int, ...] | None = None


def unpooled_dims(x: tuple[int, ...], kernel_shape: tuple[int, ...], pads: tuple[int, ...] | None,
                  strides: tuple[int, ...] | None) -> tuple[int, ...]:
    """The shape MaxPool's input had: (in - 1) * stride - pads + kernel per spatial axis."""
    rank = len(x) - 2
    pads, strides = pads or (0,) * 2 * rank, strides or (1,) * rank
    if len(kernel_shape) != rank or len(pads) != 2 * rank or len(strides) != rank:
        raise ShapeError(f"MaxUnpool: kernel_shape {list(kernel_shape)}, strides {list(strides)} and pads "
                         f"{list(pads)} must have {rank}, {rank} and {2 * rank} entries for X{list(x)}")
    return (*x[:2], *((n - 1) * s - b - e + k
                      for n, s, b, e, k in zip(x[2:], strides, pads[:rank], pads[rank:], kernel_shape)))


def _max_unpool_shape(x: TensorType, indices: TensorType, **attrs) -> TensorType:
    attrs = MaxUnpoolAttrs(**attrs)
    if x.rank < 3:
        raise ShapeError(f"MaxUnpool needs X of rank >= 3 (N, C, *spatial), got X{list(x.shape)}")
    if indices.shape != x.shape or indices.dtype.value != "int64":
        raise ShapeError(f"MaxUnpool: I must be int64 and shaped as X{list(x.shape)} (MaxPool's Indices), got "
                         f"{indices.dtype.value} I{list(indices.shape)}")
    dims = unpooled_dims(x.shape, attrs.kernel_shape, attrs.pads, attrs.strides)
    if attrs.output_shape is not None and tuple(attrs.output_shape) != dims:
        raise UnsupportedError(f"MaxUnpool: output_shape {list(attrs.output_shape)} differs from the unpooled "
                               f"shape {list(dims)}; where I points into it is ambiguous (onnx.reference reads I "
                               "in the unpooled shape, onnxruntime in output_shape), so cnncompile refuses it")
    return TensorType(dims, x.dtype)


@declare("MaxUnpool", MaxUnpoolAttrs, inputs=("X", "I"), shape=_max_unpool_shape, flops=per_output(0),
         onnx_inputs_as_attrs={2: "output_shape"})
def MaxUnpool(x, indices, **attrs):
    """Zeros with each X element put back where I says MaxPool found it (flat indices into the whole output)."""
    dims = unpooled_dims(x.shape, attrs["kernel_shape"], attrs["pads"], attrs["strides"])
    out = np.zeros(math.prod(dims), x.dtype)
    out[indices.reshape(-1)] = x.reshape(-1)
    return out.reshape(dims)
