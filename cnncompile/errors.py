"""The one exception family users see.

Every failure a user can cause (a malformed model, an unsupported op, a wrong shape, a
missing input) is a `CnnCompileError` whose message names the node, the op and what to
do, so the CLI can print it as one line and exit with code 2.
"""


class CnnCompileError(Exception):
    """Base of every error cnncompile raises on purpose."""


class ShapeError(CnnCompileError):
    """A shape or dtype rule rejected its inputs or attributes."""


class AttrError(CnnCompileError):
    """An attribute is missing, of the wrong type or out of range."""


class VerifyError(CnnCompileError):
    """The IR broke an invariant (SSA, order, types, attributes)."""


class UnsupportedError(CnnCompileError):
    """The model uses something cnncompile does not implement."""


class ModelError(CnnCompileError):
    """The model file or its inputs are malformed."""


class ExecutionError(CnnCompileError):
    """A kernel failed while running a graph."""


class PassError(CnnCompileError):
    """A pass broke the IR, changed the numbers, or did not reach a fixed point."""


class ResourceError(CnnCompileError):
    """The model needs more memory than the limit allows, or sizes its kernels cannot index."""
