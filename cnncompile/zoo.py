"""`cnncompile.zoo`: the seed architectures by name (see cnncompile.frontends.zoo)."""

from cnncompile.frontends.zoo import Weights, build, model, names

__all__ = ["Weights", "build", "model", "names"]
