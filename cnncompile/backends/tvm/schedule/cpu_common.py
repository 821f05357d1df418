"""Schedule building blocks for CPUs: inlining, and parallel + vectorized loop nests.

Every block of a CPU kernel ends in one of two shapes: a data-parallel nest whose outer
loops run on the thread pool and whose innermost loop fills SIMD lanes, or a reduction
whose spatial loops run in parallel around serial reduction loops. Nests too small to pay
for waking the thread pool stay on one thread.
"""

from __future__ import annotations

import math

from tvm import tirx
from tvm.s_tir import Schedule, ScheduleError
from tvm.s_tir.schedule import LoopRV, SBlockRV

from cnncompile.backends.tvm.kernel import PAD_STAGE
from cnncompile.backends.tvm.tiling import registers

# Fewer output elements than this run on one thread: a parallel launch costs a few microseconds.
MIN_PARALLEL_WORK = 16384
# Parallel iterations to aim for: enough to balance the threads, few enough to keep inner loops intact.
PARALLEL_CHUNKS = 256
# The widest vector a loop is split into (LLVM splits it into registers).
MAX_VECTOR = 64


def extent(sch: Schedule, loop: LoopRV) -> int:
    return int(sch.get(loop).extent)


def is_reduction(sch: Schedule, block: SBlockRV) -> bool:
    return any(iv.iter_type == tirx.IterVar.CommReduce for iv in sch.get(block).iter_vars)


def blocks(sch: Schedule) -> list[SBlockRV]:
    return list(sch.get_child_blocks(sch.get_sblock("root")))


def inline_injective(sch: Schedule, keep: frozenset[str] = frozenset()) -> None:
    """Inline every data-parallel stage into its consumers (or producer) where TIR allows it.

    Outputs and reductions cannot be inlined; `keep` names stages a template wants to
    materialize (padding read many times by a convolution). Repeats until nothing changes,
    since inlining one stage can make another inlinable.
    """
    changed = True
    while changed:
        changed = False
        for block in blocks(sch):
            if sch.get(block).name_hint in keep or is_reduction(sch, block):
                continue
            for inline in (sch.compute_inline, sch.reverse_compute_inline):
                if _try(inline, block):
                    changed = True
                    break
            if changed:
                break


def _try(primitive, block: SBlockRV) -> bool:
    try:
        primitive(block)
    except ScheduleError:
        return False
    return True


def largest_divisor(n: int, limit: int) -> int:
    """The largest divisor of n that is at most limit (at least 1)."""
    return max(d for d in range(1, max(min(n, limit), 1) + 1) if n % d == 0)


def padding(sch: Schedule, block: SBlockRV) -> SBlockRV | None:
    """The block's materialized `pad` producer, if its input is padded."""
    return next((p for p in sch.get_producers(block) if sch.get(p).name_hint == PAD_STAGE), None)


def vector_factor(length: int, lanes: int) -> int:
    """How many consecutive elements of a loop of `length` to put in one vector, 1 if none.

    Whole registers when the loop allows (up to MAX_VECTOR elements, which LLVM splits
    into registers); otherwise the largest divisor that still fills half a register,
    since LLVM legalizes odd widths into register-sized pieces.
    """
    multiples = [f for f in range(MAX_VECTOR - MAX_VECTOR % lanes, 0, -lanes) if length % f == 0]
    if multiples:
        return multiples[0]
    divisors = [f for f in range(min(length, MAX_VECTOR), max(lanes // 2, 2) - 1, -1) if length % f == 0]
    return divisors[0] if divisors else 1


def parallel_outer(sch: Schedule, loops: list[LoopRV], work: int) -> None:
    """Fuse the leading loops until there are PARALLEL_CHUNKS iterations to share, and run them in parallel.

    The inner loops stay nested: fusing everything would cost a division and a modulo per
    element to recover the indices.
    """
    if work < MIN_PARALLEL_WORK or not loops:
        return
    taken = 1
    while taken < len(loops) and math.prod(extent(sch, loop) for loop in loops[:taken]) < PARALLEL_CHUNKS:
        taken += 1
    sch.parallel(sch.fuse(*loops[:taken]) if taken > 1 else loops[0])


def parallel_vectorize(sch: Schedule, block: SBlockRV, lanes: int) -> None:
    """Vectorize the innermost loop of a data-parallel block and parallelize the outer ones."""
    loops = sch.get_loops(block)
    if not loops:
        return
    work = math.prod(extent(sch, loop) for loop in loops)
    factor = vector_factor(extent(sch, loops[-1]), lanes)
    outer = list(loops)
    if factor > 1:
        head, lane = sch.split(loops[-1], [None, factor])
        sch.vectorize(lane)
        outer = [*loops[:-1], head]
    parallel_outer(sch, outer, work)


def parallel_reduction(sch: Schedule, block: SBlockRV) -> None:
    """Run a reduction's spatial loops (the outer ones, as TE emits them) on the thread pool."""
    loops = sch.get_loops(block)
    kinds = [iv.iter_type for iv in sch.get(block).iter_vars]
    spatial = [loop for loop, kind in zip(loops, kinds) if kind == tirx.IterVar.DataPar]
    parallel_outer(sch, spatial, math.prod(extent(sch, loop) for loop in loops))


def schedule_rest(sch: Schedule, lanes: int, done: frozenset[str]) -> None:
    """The generic treatment for every block a template did not schedule itself."""
    for block in blocks(sch):
        if sch.get(block).name_hint in done:
            continue
        if is_reduction(sch, block):
            parallel_reduction(sch, block)
        else:
            parallel_vectorize(sch, block, lanes)


def tile_rows(rows: int, vectors: int, lanes: int) -> int:
    """The largest divisor of `rows` whose accumulators (rows x vectors) leave 4 registers free."""
    budget = max((registers(lanes) - 4) // vectors, 1)
    return max(d for d in range(1, min(rows, budget) + 1) if rows % d == 0)


def tile_columns(length: int, lanes: int) -> int:
    """Output columns per tile: one register when the row allows, else the whole short row, else a divisor."""
    if length % lanes == 0:
        return lanes
    if length <= 2 * lanes:
        return length
    return max(d for d in range(1, lanes + 1) if length % d == 0)


def spatial_and_reduction(sch: Schedule, block: SBlockRV) -> tuple[list[LoopRV], list[LoopRV]]:
    loops = sch.get_loops(block)
    kinds = [iv.iter_type for iv in sch.get(block).iter_vars]
    spatial = [loop for loop, kind in zip(loops, kinds) if kind == tirx.IterVar.DataPar]
    return spatial, [loop for loop, kind in zip(loops, kinds) if kind != tirx.IterVar.DataPar]


def accumulate_in_registers(sch: Schedule, block: SBlockRV, at: LoopRV, vectorize_finish: bool = True) -> SBlockRV:
    """Give the reduction a tile-sized accumulator, finished (epilogue or copy-out) under `at`.

    The accumulator keeps the "global" scope on purpose: a "local" one becomes a
    TVMBackendAllocWorkspace call per tile, whose stores and loads LLVM cannot remove,
    while build.py keeps small *global* CPU buffers on the stack, where LLVM promotes them
    to registers.
    """
    consumers = sch.get_consumers(block)
    if consumers:
        finish = consumers[0]
    else:
        sch.cache_write(block, 0, "global")
        finish = sch.get_consumers(block)[0]
    sch.reverse_compute_at(finish, at)
    if vectorize_finish:
        vectorize_below(sch, finish, at)
    return finish


def vectorize_below(sch: Schedule, block: SBlockRV, at: LoopRV) -> None:
    """Vectorize the block's innermost loop if it has one of its own under `at` (a 1-element tile has none,
    and vectorizing `at` itself would run the tile's serial reduction as one vector step)."""
    inner = sch.get_loops(block)[-1]
    if not sch.get(inner).same_as(sch.get(at)):
        sch.vectorize(inner)


def unroll_block(sch: Schedule, block: LoopRV, serial: list[LoopRV]) -> None:
    """Unroll a reduction's input-channel block, nested in the `serial` reduction loops. If they run once
    (one block of input channels, a 1x1 window), half the block stays a loop: unrolled whole, the
    reduction is straight-line code, which LLVM reorders one accumulator at a time, keeping every
    broadcast input live and spilling them (1x1 conv 16->96 at 112x112 with ReLU6: 0.35 ms, 0.18 in
    two steps of 8)."""
    if math.prod(extent(sch, loop) for loop in serial) == 1:
        _, block = sch.split(block, [None, largest_divisor(extent(sch, block), extent(sch, block) // 2)])
    sch.unroll(block)
