"""Shape arithmetic exporters emit, folded at import: Shape, Gather, Slice, Constant, ConstantOfShape."""
