"""ONNX's conformance cases, read from the data directories the installed onnx ships.

`node` holds one generated model per op behaviour (the cases
`onnx.backend.test.case.node.collect_testcases` writes), `pytorch-converted` and
`pytorch-operator` small models an old PyTorch exporter wrote (opset 6 to 12). A case is
selected when every node of its model is an op cnncompile declares: cases of other ops
test nothing cnncompile claims to do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
from onnx import numpy_helper
from onnx.backend.test.loader import load_model_tests

from cnncompile.ops import REGISTRY

KINDS = ("node", "pytorch-converted", "pytorch-operator")


@dataclass(frozen=True)
class Case:
    kind: str
    name: str
    directory: Path
    rtol: float
    atol: float

    @property
    def id(self) -> str:
        return f"{self.kind}/{self.name}"

    def model(self) -> onnx.ModelProto:
        return onnx.load(str(self.directory / "model.onnx"))

    def data_sets(self, model: onnx.ModelProto) -> list[tuple[list[Any], list[Any]]]:
        """(inputs, expected outputs) of each test_data_set, read by the graph's declared types."""
        sets = []
        for folder in sorted(self.directory.glob("test_data_set_*")):
            inputs = [_read(folder / f"input_{i}.pb", model.graph.input[i].type)
                      for i in range(len(list(folder.glob("input_*.pb"))))]
            outputs = [_read(folder / f"output_{i}.pb", model.graph.output[i].type)
                       for i in range(len(list(folder.glob("output_*.pb"))))]
            sets.append((inputs, outputs))
        return sets


def _read(path: Path, type_proto: onnx.TypeProto) -> Any:
    """A tensor, sequence or optional as onnx's own runner reads it."""
    data = path.read_bytes()
    if type_proto.HasField("sequence_type"):
        sequence = onnx.SequenceProto()
        sequence.ParseFromString(data)
        return numpy_helper.to_list(sequence)
    if type_proto.HasField("optional_type"):
        optional = onnx.OptionalProto()
        optional.ParseFromString(data)
        return numpy_helper.to_optional(optional)
    tensor = onnx.TensorProto()
    tensor.ParseFromString(data)
    return numpy_helper.to_array(tensor)


ONNX_OPS = frozenset(name for name, op in REGISTRY.items() if op.domain == "")


def uses_only_registry_ops(model: onnx.ModelProto) -> bool:
    """Every node is an ONNX op that cnncompile declares (its own fused ops are not ONNX's)."""
    return all(node.domain in ("", "ai.onnx") and node.op_type in ONNX_OPS for node in model.graph.node)


def selected_cases() -> list[Case]:
    """Every case, of every kind, whose model cnncompile's op registry covers, by id."""
    cases = []
    for kind in KINDS:
        for test in load_model_tests(kind=kind):
            case = Case(kind, test.name, Path(os.fspath(test.model_dir)), test.rtol, test.atol)
            if uses_only_registry_ops(case.model()):
                cases.append(case)
    return sorted(cases, key=lambda c: c.id)
