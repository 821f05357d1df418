"""NumPy reference backend: the gold standard every optimized result is checked against."""

from cnncompile.backends.reference.interpreter import check_inputs, run_reference

__all__ = ["check_inputs", "run_reference"]
