"""The TVM backend: every node a TIR PrimFunc built from its plan and scheduled by this project's templates,
the graph one Relax function calling them, built for CUDA or LLVM (build.py) and run by the Relax VM.

Nothing is imported here: TVM takes seconds to import, and only the modules that use it pay for it.
"""
