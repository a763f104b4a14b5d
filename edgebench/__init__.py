"""edgebench: load tests and capacity benchmarks for Edgegap's deployment API."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("edgebench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
