"""The analysis stage: reads a run's results folder (results/README.md) and nothing else.

    from analysis import load_run, summarize
    run = load_run("results/20261127T091855Z-smoke")
    summary = summarize(run)          # the numbers of summary.json

It never imports Locust or the traffic code: the files are the contract.
Names load on first use, so `edgebench --help` does not pay for pandas.
"""

from importlib import import_module

_EXPORTS = {"Run": "analysis.load", "load_run": "analysis.load", "summarize": "analysis.metrics"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")
