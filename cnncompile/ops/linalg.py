"""Matrix products: Gemm and MatMul."""
