"""Layer by layer, without undoing fusion: every node of the compiled graph against the float64 reference of
the model as imported, at the boundaries both graphs have.

Each optimized value stands for a value of the imported model (`Value.origin`: a fused conv's output for
the original Relu's, a folded BN's for the BN's, a layout or element-type copy for the value it copies).
Each compiled node's kernel runs on the gold (float64) values of its inputs, rounded to its element
types, and each output is compared with the gold value it stands for: so a layer's error is its own,
not what it inherited. Beside it, `input_error` is how far off its inputs arrived in the compiled run
(kernels chained), which is what the layer's error adds to.

A layer is judged by what its arithmetic predicts, not by one tolerance for all (`error_bound`), so a
layer that is off out of proportion stands out even where its error is small, and a long reduction is
not blamed for being long.

Memory: the two graphs are walked together and each array is dropped once nothing still to run reads it,
so what is held at once is a few live activations (as a plain run holds), never every layer's.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cnncompile.algorithms.applicability import ConvAlgorithm
from cnncompile.ir.graph import Graph, Node, Value
from cnncompile.ir.types import DType
from cnncompile.numerics import ALGORITHM_TOLERANCE, DTYPE_TOLERANCE, relative_error

# What `error_bound` is multiplied by before a layer is judged against it. sqrt(K) is the typical growth
# of K independently signed rounding errors, and the bound's largest ratio measured on correct float32
# builds of the zoo's lenet5, resnet18, mobilenet_v2, googlenet and convnext_tiny (LayerNorm, GELU
# included) is 1.3: the margin leaves 12x for ops whose rounding their slope amplifies. A wrong kernel
# is off by orders of magnitude more (0.1% off is about 1000x).
SAFETY = 16.0

# Error histogram: counts of |ours - gold| per decade, 1e-16 .. 1e+2, with the exact matches apart.
HISTOGRAM_DECADES = tuple(range(-16, 3))

KernelRunner = Callable[[str, Sequence[np.ndarray]], list[np.ndarray]]


@dataclass(frozen=True)
class LayerCheck:
    """One compiled node's output against the gold value of the ONNX value it stands for."""

    onnx_name: str
    node: str
    op: str
    covers: tuple[str, ...]     # the imported model's nodes this one computes (a fusion's several)
    max_abs: float
    max_rel: float              # DESIGN.md's error: max|ours - gold| / max|gold|
    cosine: float
    bound: float                # error_bound, on max_abs
    input_error: float          # DESIGN.md's error its inputs arrived with in the compiled run
    histogram: tuple[int, ...]  # exact matches, then one count per decade of HISTOGRAM_DECADES

    @property
    def passed(self) -> bool:
        return math.isfinite(self.max_abs) and self.max_abs <= SAFETY * self.bound

    @property
    def ratio(self) -> float:
        """How many bounds off the layer is: above SAFETY is out of proportion."""
        return self.max_abs / self.bound if self.bound > 0 else (0.0 if self.max_abs == 0 else math.inf)

    def as_dict(self) -> dict:
        edges = ["0"] + [f"1e{d}" for d in HISTOGRAM_DECADES]
        return {"onnx_name": self.onnx_name, "node": self.node, "op": self.op, "covers": list(self.covers),
                "max_abs": finite(self.max_abs), "max_rel": finite(self.max_rel), "cosine": finite(self.cosine),
                "bound": self.bound, "ratio": finite(self.ratio), "passed": self.passed,
                "input_error": finite(self.input_error),
                "histogram": {"upper_edges": edges, "counts": list(self.histogram)}}


def finite(x: float) -> float | str:
    """JSON has no inf or NaN; they are reported as strings."""
    return x if math.isfinite(x) else str(x)


def _eps(node: Node) -> float:
    """Machine epsilon of the narrowest float the node reads or writes (float32's if none is a float)."""
    floats = [v.type.dtype for v in (*node.inputs, *node.outputs) if v.type.dtype in DTYPE_TOLERANCE]
    return max((float(np.finfo(d.numpy).eps) for d in floats), default=float(np.finfo(np.float32).eps))


def reduction_length(node: Node) -> float:
    """K, the products summed into each output: the op's declared FLOPs over two per output element (a
    conv's Cin/groups*kh*kw, a Gemm's K, a pool's window); 1 for an elementwise op."""
    types = [v.type for v in node.outputs]
    outputs = sum(t.numel for t in types)
    flops = node.op.flops([v.type for v in node.inputs], types, node.attrs)
    return max(1.0, flops / (2.0 * max(outputs, 1)))


def error_bound(node: Node, gold_inputs: Sequence[np.ndarray], constant: Sequence[bool], gold_out: np.ndarray) -> float:
    """The max abs error a correct kernel may have on gold inputs:

        eps(dtype) * f_alg * (sqrt(K) * max|x| * max|w| + max|y|)

    eps: the epsilon of the narrowest float the node touches (its inputs are rounded to it, its products
    rounded in it); K: `reduction_length`; x: the activations read, w: the constants read (1 without any),
    y: the gold output (one rounding on store, and an epilogue's); f_alg: how much more a conv algorithm's
    transforms round than a dot product, DESIGN.md's algorithm tolerance over float32's (10 for Winograd
    F(2,3) and FFT, 100 for F(4,3)). Judged with the margin SAFETY."""
    def peak(arrays: list[np.ndarray]) -> float:
        floats = [np.abs(a, dtype=np.float64) for a in arrays if a.size and np.issubdtype(a.dtype, np.floating)]
        return max((float(np.max(a[np.isfinite(a)], initial=0.0)) for a in floats), default=0.0)

    x = peak([a for a, c in zip(gold_inputs, constant) if not c])
    w = peak([a for a, c in zip(gold_inputs, constant) if c]) or 1.0
    algorithm = getattr(node.attrs, "algorithm", None)
    factor = ALGORITHM_TOLERANCE.get(algorithm, DTYPE_TOLERANCE[DType.FLOAT32]) / DTYPE_TOLERANCE[DType.FLOAT32] \
        if isinstance(algorithm, ConvAlgorithm) else 1.0
    return _eps(node) * factor * (math.sqrt(reduction_length(node)) * x * w + peak([gold_out]))


def measure(ours: np.ndarray, gold: np.ndarray) -> tuple[float, float, float, tuple[int, ...]]:
    """max abs, DESIGN.md's relative error, cosine similarity and the decade histogram of |ours - gold|."""
    if ours.shape != gold.shape or not np.issubdtype(np.asarray(gold).dtype, np.number):
        same = ours.shape == gold.shape and np.array_equal(ours, gold)
        return (0.0 if same else math.inf), (0.0 if same else math.inf), (1.0 if same else 0.0), ()
    a, b = np.asarray(ours, np.float64).ravel(), np.asarray(gold, np.float64).ravel()
    diff = np.abs(a - b)
    diff[np.isnan(diff) & ~(np.isnan(a) & np.isnan(b))] = math.inf
    max_abs = float(np.max(diff, initial=0.0))
    norms = float(np.linalg.norm(a)) * float(np.linalg.norm(b))
    cosine = float(np.dot(a, b) / norms) if norms > 0 and np.all(np.isfinite(a)) else (1.0 if max_abs == 0 else 0.0)
    exact = int(np.count_nonzero(diff == 0))
    edges = np.array([10.0 ** d for d in HISTOGRAM_DECADES] + [math.inf])
    counts = np.bincount(np.searchsorted(edges, diff[diff > 0], side="left"), minlength=len(edges))
    counts[-2] += counts[-1]  # beyond the last decade counts in it
    return max_abs, relative_error(ours, gold), cosine, (exact, *map(int, counts[:-1]))


def covered_nodes(original: Graph) -> Callable[[Sequence[str], str], tuple[str, ...]]:
    """A function naming the imported model's nodes between some values (by name) and one value they
    lead to: what an optimized node reading the first and writing the last computes."""
    producer = {out.name: node for node in original.nodes for out in node.outputs}

    def between(sources: Sequence[str], target: str) -> tuple[str, ...]:
        stop, seen, stack = set(sources), set(), [target]
        while stack:
            name = stack.pop()
            node = producer.get(name)
            if name in stop or node is None or node.name in seen:
                continue
            seen.add(node.name)
            stack.extend(v.name for v in node.inputs)
        return tuple(n.name for n in original.nodes if n.name in seen)

    return between


def _stored(array: np.ndarray, value: Value) -> np.ndarray:
    """`array` as `value` holds it: floats in its element type, everything else as it is."""
    return array.astype(value.type.dtype.numpy) if np.issubdtype(array.dtype, np.floating) \
        and value.type.dtype.is_float else array


def _gold(array: np.ndarray) -> np.ndarray:
    return np.asarray(array, np.float64) if np.issubdtype(np.asarray(array).dtype, np.floating) else np.asarray(array)


class _Reference:
    """The imported model on the float64 reference, evaluated only as far as asked, each value kept while
    a node of either graph still needs it."""

    def __init__(self, graph: Graph, inputs: Mapping[str, np.ndarray], wanted: Counter[str]):
        self.graph, self.cursor, self.wanted = graph, 0, wanted
        self.readers = Counter(v for node in graph.nodes for v in node.inputs)
        self.env: dict[Value, np.ndarray] = {v: _gold(a) for v, a in graph.constants.items()}
        self.env.update({v: _gold(inputs[v.name]) for v in graph.inputs})
        self.by_name = {v.name: v for v in (*graph.inputs, *(o for n in graph.nodes for o in n.outputs))}

    def stands_for(self, value: Value) -> bool:
        known = self.by_name.get(value.origin)
        return known is not None and known.type.shape == value.type.shape

    def take(self, name: str) -> np.ndarray:
        """The gold value named `name`, computing up to it; dropped after its last wanted use."""
        value = self.by_name[name]
        while value not in self.env:
            node = self.graph.nodes[self.cursor]
            self.cursor += 1
            results = node.op.run([self.env[v] for v in node.inputs], node.attrs)
            for out, result in zip(node.outputs, results, strict=True):
                self.env[out] = _gold(result)
            for v in node.inputs:
                self.readers[v] -= 1
                self._drop_if_done(v)
        array = self.env[value]
        self.wanted[name] -= 1
        self._drop_if_done(value)
        return array

    def _drop_if_done(self, value: Value) -> None:
        if self.readers[value] <= 0 and self.wanted[value.name] <= 0 and value not in self.graph.constants:
            self.env.pop(value, None)


def compare_layers(original: Graph, optimized: Graph, run_node: KernelRunner,
                   inputs: Mapping[str, np.ndarray]) -> Iterator[LayerCheck]:
    """Each float output of each node of `optimized` (compiled: `run_node` runs one node's kernel) that
    stands for a value of `original`, in graph order. Values standing for nothing there (none, from this
    project's passes) are computed by the optimized op's float64 reference and not reported."""
    consumers = Counter(v for node in optimized.nodes for v in node.inputs)
    activations = [v for v in (*optimized.inputs, *(o for n in optimized.nodes for o in n.outputs))]
    reference = _Reference(original, inputs, Counter())
    mapped = {v for v in activations if reference.stands_for(v)}
    reference.wanted.update(v.origin for v in mapped)
    between = covered_nodes(original)
    gold: dict[Value, np.ndarray] = {v: _gold(a) for v, a in optimized.constants.items()}
    chain: dict[Value, np.ndarray] = dict(optimized.constants)
    for value in optimized.inputs:
        chain[value] = _stored(np.asarray(inputs[value.name]), value)
        gold[value] = reference.take(value.origin) if value in mapped else _gold(inputs[value.name])
    for node in optimized.nodes:
        args = [gold[v] for v in node.inputs]
        outs = [reference.take(v.origin) if v in mapped else None for v in node.outputs]
        if any(o is None for o in outs):
            computed = node.op.run(args, node.attrs)
            outs = [_gold(c) if o is None else o for o, c in zip(outs, computed)]
        ours = run_node(node.name, [_stored(a, v) for a, v in zip(args, node.inputs)])
        arrived = max((relative_error(chain[v], gold[v]) for v in node.inputs if v not in optimized.constants),
                      default=0.0)
        chained = run_node(node.name, [chain[v] for v in node.inputs])
        constant = [v in optimized.constants for v in node.inputs]
        for value, mine, want, carried in zip(node.outputs, ours, outs, chained):
            gold[value], chain[value] = want, carried
            if value not in mapped or not value.type.dtype.is_float:
                continue
            max_abs, max_rel, cosine, histogram = measure(np.asarray(mine), want)
            sources = [v.origin for v in node.inputs if v in mapped]
            yield LayerCheck(value.origin, node.name, node.op.name, between(sources, value.origin), max_abs,
                             max_rel, cosine, error_bound(node, args, constant, want), arrived, histogram)
        for v in node.inputs:
            consumers[v] -= 1
            if consumers[v] <= 0 and v not in optimized.constants:
                gold.pop(v, None)
                chain.pop(v, None)
