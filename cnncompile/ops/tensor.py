"""Data movement: Concat, Split, Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Pad, DepthToSpace,
SpaceToDepth.

None of these does arithmetic, so each costs 0 FLOPs; their price is the bytes they move.
Resize, which does interpolate, lives in `resize.py`.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cnncompile.errors import ShapeError
from cnncompile.ir.types import TensorType
from cnncompile.ops.registry import ANY_LAYOUT, OpLayouts, declare, normalize_axis


def no_arithmetic(inputs: Sequence[TensorType], outputs: Sequence[TensorType], attrs: object) -> int:
    """Data movement reads and writes but computes nothing."""
    return 0


def normalize_axes(axes: Sequence[int], rank: int, op: str) -> list[int]:
    """Axes made non-negative, each named once."""
    result = [normalize_axis(a, rank, op) for a in axes]
    if len(set(result)) != len(result):
        raise ShapeError(f"{op}: axes {list(axes)} name an axis twice; list each axis once")
    return result


# -- Concat and Split -----------------------------------------------------------------------


@dataclass(frozen=True)
class ConcatAttrs:
    axis: int


def _concat_shape(*inputs: TensorType, axis: int) -> TensorType:
    first = inputs[0]
    shapes = ", ".join(str(list(t.shape)) for t in inputs)
    if first.rank == 0:
        raise ShapeError("Concat cannot join scalars; Unsqueeze them to rank 1 first")
    axis = normalize_axis(axis, first.rank, "Concat")
    if len({t.dtype for t in inputs}) > 1:
        raise ShapeError(f"Concat operands have different dtypes: {', '.join(t.dtype.value for t in inputs)}")
    for t in inputs:
        if t.rank != first.rank or any(a != b for i, (a, b) in enumerate(zip(t.shape, first.shape)) if i != axis):
            raise ShapeError(f"Concat along axis {axis}: shapes {shapes} must agree on every other axis")
    layout = first.layout
    if layout is not None and axis != 1:
        raise ShapeError(f"Concat along axis {axis} of operands stored as {layout}: only the channel axis 1 "
                         "joins blocked or channels-last tensors; keep the operands in NCHW")
    out = list(first.shape)
    out[axis] = sum(t.shape[axis] for t in inputs)
    return first.with_shape(tuple(out))


# Along channels, in NHWC or NCHWc (each operand's channels a multiple of the block, which
# the layout's `holds` ensures), a concat still copies whole rows or blocks.
@declare("Concat", ConcatAttrs, inputs=("inputs*",), outputs=("concat_result",),
         shape=_concat_shape, flops=no_arithmetic, layouts=OpLayouts(ANY_LAYOUT))
def Concat(*inputs, axis):
    """Join the inputs end to end along `axis`."""
    return np.concatenate(inputs, axis=axis)


@dataclass(frozen=True)
class SplitAttrs:
    axis: int = 0
    num_outputs: int | None = None
    split: tuple[int, ...] | None = None


def _split_sizes(shape: tuple[int, ...], axis: int, num_outputs: int | None, split: tuple[int, ...] | None) -> list[int]:
    """Chunk lengths: `split` as given, else num_outputs chunks of ceil(dim / n), the last one shorter."""
    dim = shape[axis]
    if split is not None:
        if any(s < 0 for s in split) or sum(split) != dim:
            raise ShapeError(f"Split of {list(shape)} along axis {axis}: split {list(split)} must be "
                             f"non-negative and sum to {dim}")
        return list(split)
    if num_outputs is None or num_outputs < 1:
        raise ShapeError("Split needs either split sizes or num_outputs >= 1")
    chunk = -(-dim // num_outputs)
    last = dim - chunk * (num_outputs - 1)
    if last < 1 and dim > 0:
        raise ShapeError(f"Split of {list(shape)} into num_outputs={num_outputs} along axis {axis}: chunks of "
                         f"{chunk} leave nothing for the last output; give explicit split sizes")
    return [chunk] * (num_outputs - 1) + [last]


def _split_shape(x: TensorType, *, axis: int, num_outputs: int | None, split: tuple[int, ...] | None) -> list[TensorType]:
    axis = normalize_axis(axis, x.rank, "Split")
    shapes = []
    for size in _split_sizes(x.shape, axis, num_outputs, split):
        out = list(x.shape)
        out[axis] = size
        shapes.append(x.with_shape(tuple(out)))
    return shapes


@declare("Split", SplitAttrs, inputs=("input",), outputs=("outputs*",), shape=_split_shape,
         flops=no_arithmetic, onnx_inputs_as_attrs={1: "split"})
def Split(x, *, axis, num_outputs, split):
    """Cut the input along `axis` into consecutive chunks of the given lengths."""
    axis = axis % x.ndim
    bounds = np.cumsum(_split_sizes(x.shape, axis, num_outputs, split))[:-1]
    return [np.ascontiguousarray(part) for part in np.split(x, bounds, axis=axis)]


# -- Reshape, Flatten, Transpose, Squeeze, Unsqueeze ------------------------------------------


@dataclass(frozen=True)
class ReshapeAttrs:
    shape: tuple[int, ...]
    allowzero: int = 0


def _reshape_target(dims: tuple[int, ...], shape: tuple[int, ...], allowzero: int) -> tuple[int, ...]:
    """Resolve ONNX's 0 (copy the input's dim, unless allowzero) and -1 (whatever is left)."""
    numel = math.prod(dims)

    def fail(reason: str) -> ShapeError:
        return ShapeError(f"Reshape cannot turn {list(dims)} ({numel} elements) into {list(shape)}: {reason}")

    if any(d < -1 for d in shape):
        raise fail("dims must be >= -1")
    if list(shape).count(-1) > 1:
        raise fail("at most one dim may be -1")
    if allowzero and 0 in shape and -1 in shape:
        raise fail("with allowzero=1 a 0 is a real zero, so -1 cannot be inferred")
    out = list(shape)
    for i, d in enumerate(shape):
        if d == 0 and not allowzero:
            if i >= len(dims):
                raise fail(f"0 at position {i} copies an input dim, but the input has rank {len(dims)}")
            out[i] = dims[i]
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        if known == 0 or numel % known:
            raise fail(f"{numel} is not divisible by {known}; give a shape whose product is {numel}")
        out[out.index(-1)] = numel // known
    if math.prod(out) != numel:
        raise fail(f"that shape holds {math.prod(out)} elements; give a shape whose product is {numel}")
    return tuple(out)


def _reshape_shape(x: TensorType, *, shape: tuple[int, ...], allowzero: int) -> TensorType:
    return TensorType(_reshape_target(x.shape, shape, allowzero), x.dtype)


@declare("Reshape", ReshapeAttrs, inputs=("data",), outputs=("reshaped",), shape=_reshape_shape,
         flops=no_arithmetic, onnx_inputs_as_attrs={1: "shape"})
def Reshape(data, *, shape, allowzero):
    """The same elements in row-major order, viewed with a new shape."""
    return data.reshape(_reshape_target(data.shape, shape, allowzero))


@dataclass(frozen=True)
class FlattenAttrs:
    axis: int = 1


def _flatten_dims(dims: tuple[int, ...], axis: int) -> tuple[int, int]:
    rank = len(dims)
    if not -rank <= axis <= rank:
        raise ShapeError(f"Flatten: axis {axis} is out of range for {list(dims)}; use -{rank}..{rank}")
    axis = axis + rank if axis < 0 else axis
    return math.prod(dims[:axis]), math.prod(dims[axis:])


def _flatten_shape(x: TensorType, *, axis: int) -> TensorType:
    return TensorType(_flatten_dims(x.shape, axis), x.dtype)


@declare("Flatten", FlattenAttrs, inputs=("input",), outputs=("output",), shape=_flatten_shape, flops=no_arithmetic)
def Flatten(x, *, axis):
    """A 2-D view: the dims before `axis` become rows, the rest columns."""
    return x.reshape(_flatten_dims(x.shape, axis))


@dataclass(frozen=True)
class TransposeAttrs:
    perm: tuple[int, ...] | None = None


def _perm(rank: int, perm: tuple[int, ...] | None) -> tuple[int, ...]:
    if perm is None:
        return tuple(reversed(range(rank)))
    if sorted(perm) != list(range(rank)):
        raise ShapeError(f"Transpose: perm {list(perm)} is not a permutation of 0..{rank - 1} for a rank-{rank} input")
    return tuple(perm)


def _transpose_shape(x: TensorType, *, perm: tuple[int, ...] | None) -> TensorType:
    return TensorType(tuple(x.shape[p] for p in _perm(x.rank, perm)), x.dtype)


@declare("Transpose", TransposeAttrs, inputs=("data",), outputs=("transposed",), shape=_transpose_shape,
         flops=no_arithmetic)
def Transpose(data, *, perm):
    """Permute the axes: output axis i is input axis perm[i] (reversed by default)."""
    return np.ascontiguousarray(np.transpose(data, _perm(data.ndim, perm)))


@dataclass(frozen=True)
class SqueezeAttrs:
    axes: tuple[int, ...] | None = None


def _squeezed(dims: tuple[int, ...], axes: tuple[int, ...] | None) -> tuple[int, ...]:
    if not axes:
        return tuple(d for d in dims if d != 1)
    drop = normalize_axes(axes, len(dims), "Squeeze")
    wide = [a for a in drop if dims[a] != 1]
    if wide:
        raise ShapeError(f"Squeeze: axes {wide} of {list(dims)} are not 1; squeeze only size-1 axes")
    return tuple(d for i, d in enumerate(dims) if i not in drop)


def _squeeze_shape(x: TensorType, *, axes: tuple[int, ...] | None) -> TensorType:
    return TensorType(_squeezed(x.shape, axes), x.dtype)


@declare("Squeeze", SqueezeAttrs, inputs=("data",), outputs=("squeezed",), shape=_squeeze_shape,
         flops=no_arithmetic, onnx_inputs_as_attrs={1: "axes"})
def Squeeze(data, *, axes):
    """Drop size-1 axes: those listed, or all of them."""
    return data.reshape(_squeezed(data.shape, axes))


@dataclass(frozen=True)
class UnsqueezeAttrs:
    axes: tuple[int, ...]


def _unsqueezed(dims: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    rank = len(dims) + len(axes)
    ones = set(normalize_axes(axes, rank, "Unsqueeze"))
    rest = iter(dims)
    return tuple(1 if i in ones else next(rest) for i in range(rank))


def _unsqueeze_shape(x: TensorType, *, axes: tuple[int, ...]) -> TensorType:
    return TensorType(_unsqueezed(x.shape, axes), x.dtype)


@declare("Unsqueeze", UnsqueezeAttrs, inputs=("data",), outputs=("expanded",), shape=_unsqueeze_shape,
         flops=no_arithmetic, onnx_inputs_as_attrs={1: "axes"})
def Unsqueeze(data, *, axes):
    """Insert size-1 axes at the listed positions of the output."""
    return data.reshape(_unsqueezed(data.shape, axes))


# -- Pad ----------------------------------------------------------------------------------


class PadMode(enum.Enum):
    CONSTANT = "constant"
    REFLECT = "reflect"
    EDGE = "edge"
    WRAP = "wrap"


@dataclass(frozen=True)
class PadAttrs:
    pads: tuple[int, ...]
    mode: PadMode = PadMode.CONSTANT
    constant_value: float = 0.0
    axes: tuple[int, ...] | None = None


def pad_widths(dims: tuple[int, ...], pads: tuple[int, ...], axes: tuple[int, ...] | None) -> list[tuple[int, int]]:
    """(begin, end) per axis of the input; negative widths crop."""
    rank = len(dims)
    axes_list = list(range(rank)) if axes is None else normalize_axes(axes, rank, "Pad")
    if len(pads) != 2 * len(axes_list):
        raise ShapeError(f"Pad of {list(dims)}: pads {list(pads)} needs 2 x {len(axes_list)} entries "
                         "(all begins, then all ends)")
    widths = [(0, 0)] * rank
    for i, axis in enumerate(axes_list):
        widths[axis] = (pads[i], pads[len(axes_list) + i])
    return widths


def _pad_dims(dims: tuple[int, ...], pads: tuple[int, ...], mode: PadMode, axes: tuple[int, ...] | None) -> tuple[int, ...]:
    widths = pad_widths(dims, pads, axes)
    out = []
    for axis, (d, (begin, end)) in enumerate(zip(dims, widths)):
        kept = d + min(begin, 0) + min(end, 0)
        if kept < 0:
            raise ShapeError(f"Pad of {list(dims)}: pads {list(pads)} crop more than axis {axis} holds")
        grow = max(max(begin, 0), max(end, 0))
        if grow and mode is not PadMode.CONSTANT and kept == 0:
            raise ShapeError(f"Pad mode {mode.value} of {list(dims)}: axis {axis} is empty after cropping, "
                             "so there is nothing to repeat; use mode constant")
        if mode is PadMode.REFLECT and grow > kept - 1:
            raise ShapeError(f"Pad mode reflect of {list(dims)}: pad {grow} on axis {axis} exceeds its "
                             f"{kept} elements minus 1; pad less or use mode edge/wrap")
        out.append(kept + max(begin, 0) + max(end, 0))
    return tuple(out)


def _pad_shape(data: TensorType, *, pads: tuple[int, ...], mode: PadMode, constant_value: float,
               axes: tuple[int, ...] | None) -> TensorType:
    return data.with_shape(_pad_dims(data.shape, pads, mode, axes))


@declare("Pad", PadAttrs, inputs=("data",), outputs=("output",), shape=_pad_shape, flops=no_arithmetic,
         onnx_inputs_as_attrs={1: "pads", 2: "constant_value", 3: "axes"},
         onnx_aliases={"value": "constant_value", "paddings": "pads"})
def Pad(data, *, pads, mode, constant_value, axes):
    """Crop by negative pads, then pad by positive ones (constant, reflect, edge or wrap)."""
    widths = pad_widths(data.shape, pads, axes)
    kept = data[tuple(slice(max(-b, 0), d - max(-e, 0)) for d, (b, e) in zip(data.shape, widths))]
    grow = [(max(b, 0), max(e, 0)) for b, e in widths]
    if mode is PadMode.CONSTANT:
        return np.pad(kept, grow, mode="constant", constant_values=constant_value)
    return np.pad(kept, grow, mode=mode.value)


# -- DepthToSpace -----------------------------------------------------------------------------


class DepthToSpaceMode(enum.Enum):
    DCR = "DCR"
    CRD = "CRD"


@dataclass(frozen=True)
class DepthToSpaceAttrs:
    blocksize: int
    mode: DepthToSpaceMode = DepthToSpaceMode.DCR


def _depth_to_space_shape(x: TensorType, *, blocksize: int, mode: DepthToSpaceMode) -> TensorType:
    if x.rank != 4 or blocksize < 1 or x.shape[1] % (blocksize * blocksize):
        raise ShapeError(f"DepthToSpace with blocksize={blocksize} needs a 4-D NCHW input whose channels divide "
                         f"by blocksize^2 = {blocksize * blocksize}, got {list(x.shape)}")
    n, c, h, w = x.shape
    return x.with_shape((n, c // (blocksize * blocksize), h * blocksize, w * blocksize))


@declare("DepthToSpace", DepthToSpaceAttrs, inputs=("input",), outputs=("output",),
         shape=_depth_to_space_shape, flops=no_arithmetic)
def DepthToSpace(x, *, blocksize, mode):
    """Move blocks of channels into blocksize x blocksize spatial tiles (DCR or CRD order)."""
    n, c, h, w = x.shape
    b = blocksize
    if mode is DepthToSpaceMode.DCR:
        tiles = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        tiles = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return np.ascontiguousarray(tiles).reshape(n, c // (b * b), h * b, w * b)


@dataclass(frozen=True)
class SpaceToDepthAttrs:
    blocksize: int


def _space_to_depth_shape(x: TensorType, *, blocksize: int) -> TensorType:
    b = blocksize
    if x.rank != 4 or b < 1 or x.shape[2] % b or x.shape[3] % b:
        raise ShapeError(f"SpaceToDepth with blocksize={b} needs a 4-D NCHW input whose height and width divide "
                         f"by {b}, got {list(x.shape)}")
    n, c, h, w = x.shape
    return x.with_shape((n, c * b * b, h // b, w // b))


@declare("SpaceToDepth", SpaceToDepthAttrs, inputs=("input",), outputs=("output",),
         shape=_space_to_depth_shape, flops=no_arithmetic)
def SpaceToDepth(x, *, blocksize):
    """DepthToSpace (DCR) undone: each blocksize x blocksize tile becomes channels, tile position first."""
    n, c, h, w = x.shape
    b = blocksize
    tiles = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
    return np.ascontiguousarray(tiles).reshape(n, c * b * b, h // b, w // b)
