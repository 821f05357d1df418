"""Lowering cases for the quantization ops: QuantizeLinear and DequantizeLinear per tensor, per axis and
blocked (a short last block) in every quantized type, saturating; DynamicQuantizeLinear with and without
negative values; the integer products and convolutions with per-row/column/channel zero points and
scales, padding, groups, strides and a bias, including outputs that saturate.

Scales are drawn at random (not powers of two), so the kernel's float32 quotients and products must be
the reference's to the bit for the integers to agree (test_quantize_lowering.py checks that they do,
and QuantizeLinear's opset-23 `precision`, which a graph cannot carry through the opset-21 export that
compiling a Graph makes).
"""

from __future__ import annotations

import numpy as np

from cases import Case, case, integers, normal
from cnncompile.ir.types import DType


def scales(*shape: int, low: float = 0.01, high: float = 0.05, dtype: str = "float32"):
    return lambda rng: rng.uniform(low, high, shape).astype(dtype)


X = normal(2, 3, 4, 5, scale=2.0)
U8 = dict(low=0, high=256, dtype="uint8")
I8 = dict(low=-128, high=128, dtype="int8")

CASES: list[Case] = [
    case("QuantizeLinear", X, scales(), integers(low=100, high=140, dtype="uint8"), constant=(1, 2)),
    case("QuantizeLinear", X, scales(3), integers(3, low=-10, high=10, dtype="int8"), constant=(1, 2),
         id="QuantizeLinear-axis-int8"),
    case("QuantizeLinear", normal(4, 7, scale=100.0), scales(4, 3, low=0.001, high=0.01), axis=1, block_size=3,
         output_dtype=DType.INT16, id="QuantizeLinear-blocked-int16-saturating"),
    case("QuantizeLinear", normal(5, 6, scale=300.0), scales(6, low=0.5, high=2.0),
         integers(6, low=1000, high=60000, dtype="uint16"), axis=-1, id="QuantizeLinear-uint16-run-time-scale"),
    case("DequantizeLinear", integers(2, 3, 4, **U8), scales(), integers(low=0, high=256, dtype="uint8"),
         constant=(1, 2)),
    case("DequantizeLinear", integers(2, 3, 4, **I8), scales(3), integers(3, low=-5, high=5, dtype="int8"),
         axis=1, id="DequantizeLinear-axis-int8"),
    case("DequantizeLinear", integers(6, 5, low=0, high=65536, dtype="uint16"), scales(2, 5),
         integers(2, 5, low=0, high=65536, dtype="uint16"), axis=0, block_size=4, id="DequantizeLinear-blocked-uint16"),
    case("DequantizeLinear", integers(4, 6, low=-2**31, high=2**31, dtype="int32"), scales(low=1e-6, high=1e-5),
         id="DequantizeLinear-int32"),
    case("DequantizeLinear", integers(3, 5, low=-32768, high=32768, dtype="int16"),
         scales(5, low=1e-3, high=1e-2, dtype="float16"), axis=1, id="DequantizeLinear-int16-float16-scale"),
    case("DynamicQuantizeLinear", normal(3, 17, scale=3.0)),
    case("DynamicQuantizeLinear", lambda rng: rng.uniform(0.5, 9.0, (4, 6)).astype(np.float32),
         id="DynamicQuantizeLinear-positive"),
    case("MatMulInteger", integers(5, 7, **U8), integers(7, 4, **U8), integers(low=0, high=256, dtype="uint8"),
         integers(low=0, high=256, dtype="uint8"), constant=(1, 3)),
    case("MatMulInteger", integers(2, 3, 6, **I8), integers(6, 5, **I8), integers(3, low=-9, high=9, dtype="int8"),
         integers(5, low=-9, high=9, dtype="int8"), id="MatMulInteger-batched-per-row-column"),
    case("QLinearMatMul", integers(4, 9, **U8), scales(), integers(low=100, high=150, dtype="uint8"),
         integers(9, 6, **U8), scales(), integers(low=100, high=150, dtype="uint8"), scales(low=1.0, high=3.0),
         integers(low=110, high=140, dtype="uint8"), constant=(1, 2, 3, 4, 5, 6, 7)),
    case("QLinearMatMul", integers(2, 3, 8, **I8), scales(1), integers(1, low=-3, high=3, dtype="int8"),
         integers(2, 8, 5, **I8), scales(5), integers(5, low=-3, high=3, dtype="int8"), scales(5, low=0.2, high=1.0),
         integers(5, low=-10, high=10, dtype="int8"), id="QLinearMatMul-int8-per-column-saturating"),
    case("ConvInteger", integers(1, 4, 7, 6, **U8), integers(6, 2, 3, 3, **U8),
         integers(low=0, high=256, dtype="uint8"), integers(6, low=0, high=256, dtype="uint8"), constant=(1, 3),
         group=2, pads=(1, 0, 2, 1), strides=(2, 1)),
    case("ConvInteger", integers(2, 3, 9, **I8), integers(4, 3, 2, **I8), dilations=(2,),
         id="ConvInteger-1d-int8-no-zero-points"),
    case("QLinearConv", integers(1, 3, 8, 8, **U8), scales(), integers(low=100, high=150, dtype="uint8"),
         integers(5, 3, 3, 3, **U8), scales(5, low=0.005, high=0.02), integers(5, low=120, high=136, dtype="uint8"),
         scales(low=0.05, high=0.1), integers(low=120, high=136, dtype="uint8"),
         integers(5, low=-3000, high=3000, dtype="int32"), constant=(1, 2, 3, 4, 5, 6, 7, 8), pads=(1, 1, 1, 1)),
    case("QLinearConv", integers(2, 4, 6, 5, **I8), scales(), integers(low=-5, high=5, dtype="int8"),
         integers(4, 2, 2, 2, **I8), scales(), integers(low=-2, high=2, dtype="int8"), scales(low=0.001, high=0.005),
         integers(low=-8, high=8, dtype="int8"), group=2, strides=(2, 2), id="QLinearConv-int8-grouped-saturating"),
]
