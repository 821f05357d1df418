"""Convolution algorithms: which ones exist, where each applies, and how each computes.

A FusedConv carries the algorithm chosen for it; `applicability` says where each one is
defined (selecting one outside that is an error, not a silent fallback), `reference`
computes each in NumPy so that its numerics are checked against `direct`, and the TVM
backend lowers each to its own kernel. `windows` is the sliding-window arithmetic that
convolution and pooling share, so the ops, the algorithms and the backends derive output
sizes and padding one way.
"""

from cnncompile.algorithms.applicability import ConvAlgorithm, ConvSpec, applicable, why_not

__all__ = ["ConvAlgorithm", "ConvSpec", "applicable", "why_not"]
