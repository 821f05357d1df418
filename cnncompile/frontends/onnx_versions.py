"""Opsets: whatever opset a model was exported at, it is imported with opset-21 semantics.

cnncompile's ops transcribe opset 21, and the importer reads attributes by name, so an
op means at opset N what it means at 21 when every later version of it only widened its
types, added optional attributes or inputs, or moved an attribute into an input (which
`OpDef.onnx_inputs_as_attrs` reads in either form). From opset 13 on that holds for every
registered op (tests/frontends/test_onnx_import_versions.py checks it against onnx.defs), so such
models import as they are; so do models newer than 21, whose versions of the registered
ops only widened types or added attributes the ops read (Cast-24's and CastLike-24's
`round_mode`, float8e8m0's rounding; Max/AveragePool-22 only wrote down the rule for
ceil-mode windows that start in the padding, which the pooling ops already follow).

Below opset 13 meanings changed (Softmax coerced its input to 2-D, broadcasting needed
`broadcast`/`axis` attributes, Resize-10 had no coordinate modes), so older models are
upgraded with onnx's version converter. The converter is wrong or refuses in a few
places, handled here:
  - legacy broadcast with an `axis` (< 7): its adapter unsqueezes B at the wrong axes, so
    B is reshaped here first;
  - PRelu (< 7): a 1-D slope is per channel, not per last axis; reshaped to [C, 1, ...];
  - Upsample and Resize-10 become Resize with the default half_pixel coordinates, but
    they used asymmetric ones, rounding nearest down when enlarging and up when shrinking
    (as onnxruntime does); `legacy_resize_steps` restores that at import;
  - BatchNormalization spatial=0 (< 9), which the converter refuses and the op
    implements, is carried through;
  - is_test=0 (< 7) asks for training-mode BatchNormalization or Dropout, and is refused
    with a clear error (an absent is_test reads as inference, as the converter reads it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import onnx
import onnx.defs
from onnx import helper, version_converter

from cnncompile.errors import ModelError, UnsupportedError
from cnncompile.ir.graph import unique_name
from cnncompile.ops.resize import NearestMode, ResizeAttrs, ResizeMode
from cnncompile.ops.resize import CoordinateTransformationMode as Coordinates

TARGET_OPSET = 21
SAME_SEMANTICS_SINCE = 13
DEFAULT_DOMAINS = ("", "ai.onnx")

# Ops that exist only below the given opset, which the converter turns into registered ones.
UPGRADED_AWAY = {"Upsample": 10, "Scatter": 11}

# Attributes of newer opsets that cannot change a result cnncompile computes.
IGNORED_ATTRIBUTES: dict[tuple[str, str], str] = {}

LEGACY_BROADCAST = frozenset({"Add", "Sub", "Mul", "Div"})


def default_opset(proto: onnx.ModelProto) -> int | None:
    """The model's ai.onnx opset, None when it imports none."""
    return next((o.version for o in proto.opset_import if o.domain in DEFAULT_DOMAINS), None)


@dataclass(frozen=True)
class Upgraded:
    """An opset-21 (or newer) model; `legacy_resizes` names the outputs of Resize nodes
    that were Upsample or Resize-10 and need `legacy_resize_steps` at import."""

    proto: onnx.ModelProto
    legacy_resizes: frozenset[str] = frozenset()


def check_opset(proto: onnx.ModelProto) -> None:
    """Refuse an ai.onnx opset that names no version of the ops, before onnx reads it as one.

    onnx's checker does not object to opset 0, and its shape inference then infers nothing,
    so the complaint it ends with (a missing output shape) would not name the opset.
    """
    opset = default_opset(proto)
    newest = onnx.defs.onnx_opset_version()
    standard = next((n for n in proto.graph.node if n.domain in DEFAULT_DOMAINS), None)
    if opset is None and standard is not None:
        raise ModelError(f"node '{standard.name or '?'}' ({standard.op_type}) is an ai.onnx op, but the model "
                         f"imports no ai.onnx opset; add one to opset_import (e.g. version {TARGET_OPSET})")
    if opset is not None and opset < 1:
        raise UnsupportedError(f"the model imports ai.onnx opset {opset}, but opsets start at 1; re-export it "
                               f"at an opset from 1 to {newest}")
    if opset is not None and opset > newest:
        raise UnsupportedError(f"the model imports ai.onnx opset {opset}, newer than the installed onnx knows "
                               f"({newest}), so what its ops mean is unknown; upgrade onnx or re-export at "
                               f"opset <= {newest}")


def upgrade(proto: onnx.ModelProto) -> Upgraded:
    """Bring a model whose ai.onnx opset is below 13 to opset 21; others pass unchanged.

    `proto` must carry inferred shapes (value_info): the legacy rewrites need ranks. It
    is modified in place.
    """
    opset = default_opset(proto)
    if opset is None or opset >= SAME_SEMANTICS_SINCE:
        return Upgraded(proto)
    shapes = _known_shapes(proto)
    taken = {name for node in proto.graph.node for name in (*node.input, *node.output)} | set(shapes)
    nodes, spatial, resizes = [], set(), set()
    for node in proto.graph.node:
        if node.domain in DEFAULT_DOMAINS:
            _refuse_training(node, opset)
            if node.op_type in LEGACY_BROADCAST and opset < 7:
                nodes += _legacy_broadcast(node, shapes, taken)
            elif node.op_type == "PRelu" and opset < 7:
                nodes += _per_channel_slope(node, shapes, taken)
            if node.op_type == "BatchNormalization" and opset < 9 and _attr(node, "spatial", 1) == 0:
                _remove_attr(node, "spatial")
                spatial.add(node.output[0])
            if node.op_type == "Upsample" or (node.op_type == "Resize" and opset < 11):
                resizes.add(node.output[0])
        nodes.append(node)
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    converted = _convert(proto, opset)
    for node in converted.graph.node:
        if node.op_type == "BatchNormalization" and node.output[0] in spatial:
            node.attribute.append(helper.make_attribute("spatial", 0))
    return Upgraded(converted, frozenset(resizes))


def legacy_resize_steps(attrs: ResizeAttrs) -> list[ResizeAttrs]:
    """Opset-21 Resize steps computing what an Upsample or Resize-10 computed.

    Both used asymmetric coordinates (x_in = x_out / scale). onnxruntime's nearest rounds
    x_in down on axes it enlarges and up on axes it shrinks; one Resize has one rounding
    mode, so a node that does both becomes two Resizes over disjoint axes (nearest is
    separable, so the result is the same).
    """
    legacy = replace(attrs, coordinate_transformation_mode=Coordinates.ASYMMETRIC, roi=None)
    if attrs.mode is not ResizeMode.NEAREST:
        return [legacy]
    axes = attrs.axes or tuple(range(len(attrs.scales)))
    enlarged = [(a, s) for a, s in zip(axes, attrs.scales) if s > 1]
    shrunk = [(a, s) for a, s in zip(axes, attrs.scales) if s < 1]
    if not (enlarged and shrunk):
        return [replace(legacy, nearest_mode=NearestMode.CEIL if shrunk else NearestMode.FLOOR)]
    return [replace(legacy, nearest_mode=mode, axes=tuple(a for a, _ in part), scales=tuple(s for _, s in part))
            for mode, part in ((NearestMode.FLOOR, enlarged), (NearestMode.CEIL, shrunk))]


# -- the rewrites before conversion -----------------------------------------------------------


def _attr(node: onnx.NodeProto, name: str, default: int | None = None) -> int | None:
    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def _remove_attr(node: onnx.NodeProto, *names: str) -> None:
    kept = [a for a in node.attribute if a.name not in names]
    del node.attribute[:]
    node.attribute.extend(kept)


def _describe(node: onnx.NodeProto, opset: int | None = None) -> str:
    version = f", opset {opset}" if opset is not None else ""
    return f"node '{node.name or node.output[0]}' ({node.op_type}{version})"


def _refuse_training(node: onnx.NodeProto, opset: int) -> None:
    if node.op_type in ("BatchNormalization", "Dropout") and opset < 7 and _attr(node, "is_test") == 0:
        raise UnsupportedError(
            f"{_describe(node, opset)} has is_test=0, which asks for training mode; cnncompile compiles "
            "inference only: export the model in eval mode (is_test=1)"
        )


def _unsqueeze_input(node: onnx.NodeProto, position: int, axes: list[int], taken: set[str]) -> onnx.NodeProto:
    """An Unsqueeze (opset-1 form, axes as attribute) in front of one of `node`'s inputs."""
    name = unique_name(f"{node.input[position]}_unsqueezed", taken)
    unsqueeze = helper.make_node("Unsqueeze", [node.input[position]], [name], name=name, axes=axes)
    node.input[position] = name
    return unsqueeze


def _legacy_broadcast(node: onnx.NodeProto, shapes: dict, taken: set[str]) -> list[onnx.NodeProto]:
    """Turn `broadcast=1, axis=k` into an explicit reshape of B, leaving numpy broadcasting.

    B's dims line up with A's from `axis` on, so B gains trailing unit dims up to A's rank.
    """
    axis, broadcast = _attr(node, "axis"), _attr(node, "broadcast", 0)
    _remove_attr(node, "axis", "broadcast")
    if not broadcast or axis is None:
        return []
    a, b = shapes.get(node.input[0]), shapes.get(node.input[1])
    if a is None or b is None:
        raise UnsupportedError(f"{_describe(node)} broadcasts with axis={axis} (opset < 7), which needs the ranks "
                               "of both inputs, and shape inference could not find them; re-export at opset >= 7")
    trailing = len(a) - (axis % max(len(a), 1)) - len(b)
    if trailing < 0:
        raise ModelError(f"{_describe(node)}: B of rank {len(b)} does not fit A of rank {len(a)} from axis {axis}")
    return [_unsqueeze_input(node, 1, list(range(len(b), len(b) + trailing)), taken)] if trailing else []


def _per_channel_slope(node: onnx.NodeProto, shapes: dict, taken: set[str]) -> list[onnx.NodeProto]:
    """PRelu before opset 7 applied a 1-D slope per channel (axis 1); reshape it to [C, 1, ...]."""
    x, slope = shapes.get(node.input[0]), shapes.get(node.input[1])
    if slope is None or len(slope) != 1 or slope[0] == 1:
        return []
    if x is None:
        raise UnsupportedError(f"{_describe(node)} has a per-channel slope (opset < 7), which needs the rank of X, "
                               "and shape inference could not find it; re-export at opset >= 7")
    return [_unsqueeze_input(node, 1, list(range(1, len(x) - 1)), taken)] if len(x) > 2 else []


def _known_shapes(proto: onnx.ModelProto) -> dict[str, tuple[int | None, ...]]:
    """Shapes (unknown dims as None) of every value whose rank shape inference found."""
    graph = proto.graph
    shapes = {t.name: tuple(t.dims) for t in graph.initializer}
    for info in (*graph.input, *graph.value_info, *graph.output):
        tensor = info.type.tensor_type
        if info.type.HasField("tensor_type") and tensor.HasField("shape"):
            shapes.setdefault(info.name, tuple(d.dim_value if d.HasField("dim_value") else None
                                               for d in tensor.shape.dim))
    return shapes


# -- conversion -------------------------------------------------------------------------------

# pybind11 maps the converter's C++ exceptions onto these.
_CONVERTER_ERRORS = (version_converter.ConvertError, RuntimeError, ValueError, IndexError, KeyError)


def _convert(proto: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    try:
        return version_converter.convert_version(proto, TARGET_OPSET)
    except _CONVERTER_ERRORS as err:
        culprits = _failing_nodes(proto, opset) or [f"the model as a whole: {_converter_message(err)}"]
        raise UnsupportedError(
            f"onnx's version converter cannot bring this opset-{opset} model to opset {TARGET_OPSET}, whose "
            f"semantics cnncompile implements: {'; '.join(culprits)}; re-export the model at opset "
            f">= {SAME_SEMANTICS_SINCE}"
        ) from None


def _failing_nodes(proto: onnx.ModelProto, opset: int) -> list[str]:
    """Convert each node alone to find the ones the converter rejects."""
    graph = proto.graph
    infos = {i.name: i for i in (*graph.input, *graph.value_info, *graph.output)}
    initializers = {t.name: t for t in graph.initializer}
    failing = []
    for node in graph.node:
        inputs = [infos.get(n) or helper.make_tensor_value_info(n, initializers[n].data_type, initializers[n].dims)
                  for n in node.input if n in infos or n in initializers]
        outputs = [infos.get(n) or helper.make_empty_tensor_value_info(n) for n in node.output if n]
        constants = [initializers[n] for n in node.input if n in initializers]
        probe = helper.make_model(helper.make_graph([node], "probe", inputs, outputs, constants),
                                  opset_imports=list(proto.opset_import), ir_version=proto.ir_version)
        try:
            version_converter.convert_version(probe, TARGET_OPSET)
        except _CONVERTER_ERRORS as err:
            failing.append(f"{_describe(node, opset)}: {_converter_message(err)}")
    return failing


def _converter_message(err: Exception) -> str:
    """The converter's reason without its C++ file, line and assertion text."""
    line = next((line.strip() for line in str(err).splitlines() if line.strip()), err.__class__.__name__)
    return re.sub(r"^.*?Assertion `.*?` failed:\s*", "", line)
