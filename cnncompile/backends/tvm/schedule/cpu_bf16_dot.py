"""bfloat16 pair dot products on AVX512_BF16: `vdpbf16ps` as a tensor intrinsic.

One `vdpbf16ps` adds, to each of 16 float32 lanes, the products of a pair of bfloat16
values: lane i of the accumulator gains A[0] * B[i, 0] + A[1] * B[i, 1], the products
exact in float32 (8-bit mantissas) and each sum rounded once. A conv computes its
reduction over pairs of input channels this way: the pair of inputs is broadcast as one
32-bit value, the weights are packed with each output channel's pair adjacent (16 lanes x
2 bf16, one 512-bit load), so one instruction does the 32 multiply-adds that take two
FMAs and two conversions from bf16 in float32 arithmetic.

TVM 0.27 cannot spell the intrinsic in TIR: its BF16 legalization turns bfloat16 vectors
into float32 ones before the call (LLVM's verifier then rejects `<32 x float>` where
`<32 x bfloat>` is declared), and a reinterpret to `bfloat16x32` after legalization
crashes its LLVM code generator. So the tensor intrinsic calls `cnn_dpbf16ps`, a function
whose operands are `int32x16` (the pairs' bits), defined in a few lines of LLVM IR that
the kernel imports (`pragma_import_llvm`): LLVM links it into the kernel's module and
inlines it, leaving the bare instruction. The products accumulate in float32 as the
emulating reference's do (one rounding per addition, in another order: float32-level
differences only); denormals are flushed, as the instruction does.
"""

from __future__ import annotations

from tvm.s_tir import Schedule, TensorIntrin
from tvm.s_tir.schedule import LoopRV
from tvm.script import tirx as T

from cnncompile.backends.tvm.lowering.common import bf16_bits_value
from cnncompile.backends.tvm.plan import BF16_LANES as LANES

PAIR = 2
INTRINSIC = "cnn_bf16_dot_16x2"
INTRINSIC_FROM_BF16 = "cnn_bf16_dot_16x2_from_bf16"
IMPORT_PRAGMA = "pragma_import_llvm"
_FUNCTION = "cnn_dpbf16ps"

# linkonce_odr: every kernel of a module imports it, and the linker keeps one copy.
LLVM_IR = f"""
declare <16 x float> @llvm.x86.avx512bf16.dpbf16ps.512(<16 x float>, <32 x bfloat>, <32 x bfloat>)
define linkonce_odr <16 x float> @{_FUNCTION}(<16 x float> %acc, <16 x i32> %a, <16 x i32> %b) alwaysinline {{
  %pairs = bitcast <16 x i32> %a to <32 x bfloat>
  %weights = bitcast <16 x i32> %b to <32 x bfloat>
  %sum = call <16 x float> @llvm.x86.avx512bf16.dpbf16ps.512(<16 x float> %acc, <32 x bfloat> %pairs,
                                                             <32 x bfloat> %weights)
  ret <16 x float> %sum
}}
"""


def _register(name: str, pairs_dtype: str) -> None:
    """The intrinsic whose pair operand is a buffer of `pairs_dtype` (uint16 bits, or the bfloat16 values). Its
    description multiplies as the conv's stage does (the same bf16_bits_value), so that tensorize finds it."""
    to_bits = (lambda value: value) if pairs_dtype == "uint16" else (lambda value: T.reinterpret("uint16", value))
    pair_vector = f"{pairs_dtype}x{PAIR}"

    @T.prim_func(s_tir=True)
    def description(a: T.Buffer((PAIR,), pairs_dtype, offset_factor=1),
                    b: T.Buffer((LANES, PAIR), "uint16", offset_factor=1),
                    c: T.Buffer((LANES,), "float32", offset_factor=1)) -> None:
        with T.sblock("root"):
            T.reads(c[0:LANES], a[0:PAIR], b[0:LANES, 0:PAIR])
            T.writes(c[0:LANES])
            for i in T.serial(0, LANES):
                for k in T.serial(0, PAIR):
                    with T.sblock("update"):
                        vi, vk = T.axis.remap("SR", [i, k])
                        c[vi] = c[vi] + bf16_bits_value(to_bits(a[vk])) * bf16_bits_value(b[vi, vk])

    @T.prim_func(s_tir=True)
    def implementation(a: T.Buffer((PAIR,), pairs_dtype, offset_factor=1),
                       b: T.Buffer((LANES, PAIR), "uint16", offset_factor=1),
                       c: T.Buffer((LANES,), "float32", offset_factor=1)) -> None:
        with T.sblock("root"):
            T.reads(c[0:LANES], a[0:PAIR], b[0:LANES, 0:PAIR])
            T.writes(c[0:LANES])
            pair = T.reinterpret(a.vload([0], pair_vector), dtype="int32")
            c[T.ramp(T.int32(0), 1, LANES)] = T.call_pure_extern(
                "float32x16", _FUNCTION, c.vload([0], "float32x16"), T.broadcast(pair, LANES),
                T.reinterpret(b.vload([0, 0], "uint16x32"), dtype="int32x16"))

    TensorIntrin.register(name, description, implementation, override=True)


_register(INTRINSIC, "uint16")
_register(INTRINSIC_FROM_BF16, "bfloat16")


def tensorize_pairs(sch: Schedule, lanes: LoopRV, imports_at: LoopRV, from_bf16: bool) -> None:
    """Run the (16 output channels x 2 input channels) loops under `lanes` as one `vdpbf16ps`, the kernel
    importing its definition at `imports_at` (a loop that encloses every use); `from_bf16` when the pairs
    are read from the kernel's bfloat16 input itself (a kernel parameter, which the legalization leaves
    in bfloat16), not from a padded copy of its bits."""
    sch.tensorize(lanes, INTRINSIC_FROM_BF16 if from_bf16 else INTRINSIC)
    sch.annotate(imports_at, IMPORT_PRAGMA, LLVM_IR)
