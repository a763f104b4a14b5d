"""A run's verdict, for every command that makes a results folder (run, simulate, search).

    refuse_baseline_checks(scenario, thresholds_file)   # before anything is sent
    exit_code = analyse(results, thresholds_file)       # 0 met, 1 a check failed, 3 incomplete

Loads no traffic or orchestration code: `edgebench simulate` uses it without them.
"""

from __future__ import annotations

from pathlib import Path

import click

from checks import parse, verdict_checks
from edgebench._errors import EdgebenchError
from edgebench.plan.scenario import Scenario


def refuse_baseline_checks(
    scenario: Scenario, thresholds_file: Path | None, inline: tuple[str, ...] = ()
) -> None:
    """refuse_baseline_checks fails before traffic on checks a run cannot judge (no
    baseline), and on a --check that does not read."""
    texts = scenario.thresholds
    where = f"{scenario.source}: thresholds"
    if thresholds_file or inline:
        given = verdict_checks(thresholds_file, inline) or []
        texts, where = [c.text for c in given], f"{thresholds_file or '--check'}: checks"
    relative = [check.text for check in parse(texts) if check.number is None]
    if relative:
        raise EdgebenchError(
            f"{where}: {relative[0]!r} compares with a baseline run, which `edgebench run` has "
            "none of; judge it after the run with `edgebench analyze RUN_DIR --baseline BASE`"
        )


def analyse(
    results: Path, thresholds_file: Path | None, plots: bool = True, inline: tuple[str, ...] = ()
) -> int:
    """analyse runs the analysis on the run's folder and returns the verdict's exit code
    (judged by --thresholds and --check when given, else by the scenario's thresholds)."""
    from analysis import thresholds
    from analysis.cli import one_screen
    from analysis.report import analyze, incomplete

    outcome = analyze(results, checks=verdict_checks(thresholds_file, inline), plots=plots)
    missing = incomplete(outcome.summary)
    if outcome.results or missing:
        thresholds.write_junit(outcome.results, results / "junit.xml", results.name, missing)
    click.echo(one_screen(outcome))
    return outcome.exit_code
