"""Reductions over an axis: Softmax, LogSoftmax, ReduceMean."""
