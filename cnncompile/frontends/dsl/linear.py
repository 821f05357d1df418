"""Classifier heads: Flatten and the fully connected Linear (an ONNX Gemm)."""

from __future__ import annotations

from dataclasses import dataclass

from cnncompile.errors import ShapeError
from cnncompile.frontends.dsl.core import Builder, Init, Layer, join
from cnncompile.frontends.dsl.pointwise import UnaryOp
from cnncompile.ir.graph import Value
from cnncompile.ops import linalg
from cnncompile.ops import tensor as T


@dataclass(frozen=True)
class Flatten(UnaryOp):
    """(N, C, *spatial) -> (N, C * prod(spatial)): the bridge from feature maps to a Linear head."""

    op = T.Flatten
    axis: int = 1


@dataclass(frozen=True)
class Linear(Layer):
    """y = x W^T + b with W of shape (out_features, in_features), as torch stores it (Gemm transB=1)."""

    out_features: int
    bias: bool = True

    def apply(self, b: Builder, x: Value, path: str) -> Value:
        if x.type.rank != 2:
            raise ShapeError(f"layer '{path}' (Linear) needs an (N, features) input, got {list(x.type.shape)}; "
                             "put a Flatten (or GlobalAvgPool then Flatten) before it")
        operands = [x, b.param(join(path, "weight"), (self.out_features, x.type.shape[1]), Init.HE_NORMAL)]
        if self.bias:
            operands.append(b.param(join(path, "bias"), (self.out_features,), Init.SHIFT))
        return b.node(linalg.Gemm, operands, path, transB=1)
