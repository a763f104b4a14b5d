"""`edgebench scenario check` and `edgebench scenario sample`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click

from edgebench._errors import ScenarioError
from edgebench.plan.payloads import PayloadPlan
from edgebench.plan.scenario import load_scenario
from edgebench.plan.schedule import Schedule


def check(files: tuple[Path, ...]) -> list[str]:
    """check validates each file; it returns every problem and reports the good files."""
    problems: list[str] = []
    for path in files:
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            problems.extend(exc.problems)
            continue
        schedule = Schedule.from_scenario(scenario)
        click.echo(
            f"{path}: ok: {scenario.name}, {scenario.rate.mode} mode, "
            f"{scenario.duration_s:g} s, about {schedule.expected_total()} requests"
        )
    return problems


def sample(path: Path, count: int) -> Iterator[str]:
    """sample yields `<due_s> <endpoint> <body>` for the first count arrivals."""
    scenario = load_scenario(path)
    plan = PayloadPlan(scenario, webhook_base="http://127.0.0.1:PORT")
    for arrival, _ in zip(Schedule.from_scenario(scenario).arrivals(), range(count), strict=False):
        request = plan.request(arrival.index)
        body = request.json.decode()
        yield f"{arrival.due_s:8.3f}s {request.endpoint} {body}"
