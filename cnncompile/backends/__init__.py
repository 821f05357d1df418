"""Backends: the NumPy reference interpreter and (later) Apache TVM."""
