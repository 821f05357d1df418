"""The package's version, as installed from pyproject.toml: one module at the bottom of the layers, so that
a module below the API (the tuning cache's keys, an artifact's manifest) needs not import the package."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cnncompile")
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"
