"""Data movement: Concat, Split, Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Pad, Resize, DepthToSpace."""
