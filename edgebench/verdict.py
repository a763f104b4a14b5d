"""A run's verdict, for every command that makes a results folder (run, simulate, search).

    refuse_baseline_checks(scenario, thresholds_file)   # before anything is sent
    exit_code = analyse(results, thresholds_file)       # 0 met, 1 a check failed, 3 incomplete

Loads no traffic or orchestration code: `edgebench simulate` uses it without them.
"""

from __future__ import annotations

from pathlib import Path

import click

from checks import load_file, parse
from edgebench._errors import EdgebenchError
from edgebench.plan.scenario import Scenario


def refuse_baseline_checks(scenario: Scenario, thresholds_file: Path | None) -> None:
    """refuse_baseline_checks fails before traffic on checks a run cannot judge: no baseline."""
    texts = scenario.thresholds
    where = f"{scenario.source}: thresholds"
    if thresholds_file:
        texts, where = [c.text for c in load_file(thresholds_file)], f"{thresholds_file}: checks"
    relative = [check.text for check in parse(texts) if check.number is None]
    if relative:
        raise EdgebenchError(
            f"{where}: {relative[0]!r} compares with a baseline run, which `edgebench run` has "
            "none of; judge it after the run with `edgebench analyze RUN_DIR --baseline BASE`"
        )


def analyse(results: Path, thresholds_file: Path | None, plots: bool = True) -> int:
    """analyse runs the analysis on the run's folder and returns the verdict's exit code."""
    from analysis import thresholds
    from analysis.cli import one_screen
    from analysis.report import analyze, incomplete

    checks = thresholds.load_file(thresholds_file) if thresholds_file else None
    outcome = analyze(results, checks=checks, plots=plots)
    missing = incomplete(outcome.summary)
    if outcome.results or missing:
        thresholds.write_junit(outcome.results, results / "junit.xml", results.name, missing)
    click.echo(one_screen(outcome))
    return outcome.exit_code
