"""The analysis stage: reads a run's results folder (results/README.md) and nothing else.

    from analysis import load_run, summarize
    run = load_run("results/20261127T091855Z-smoke")
    summary = summarize(run)          # the numbers of summary.json

It never imports Locust or the traffic code: the files are the contract.
"""

from analysis.load import Run, load_run
from analysis.metrics import summarize

__all__ = ["Run", "load_run", "summarize"]
