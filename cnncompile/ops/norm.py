"""Normalization: BatchNormalization (inference), LayerNormalization, InstanceNormalization, LRN."""
