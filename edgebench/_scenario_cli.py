"""`edgebench scenario check` and `edgebench scenario sample`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import orjson

from edgebench._errors import ScenarioError
from edgebench.plan.payloads import preview
from edgebench.plan.scenario import load_scenario
from edgebench.plan.schedule import Schedule


def check(files: tuple[Path, ...]) -> list[str]:
    """check validates each file; it returns every problem and reports the good files."""
    problems: list[str] = []
    for path in files:
        try:
            scenario = load_scenario(path)
            _check_world(scenario)
        except ScenarioError as exc:
            problems.extend(exc.problems)
            continue
        schedule = Schedule.from_scenario(scenario)
        click.echo(
            f"{path}: ok: {scenario.name}, {scenario.rate.mode} mode, "
            f"{scenario.duration_s:g} s, {schedule.count():,} requests"
        )
        if note := schedule.demand_note():
            click.echo(f"{path}: warning: {note}")
    return problems


def _check_world(scenario) -> None:
    """_check_world reads the scenario's world as the embedded emulator will, before any run."""
    from emulator import load_world
    from emulator._errors import EmulatorError

    if scenario.world_file:
        try:
            load_world(scenario.world_file)
        except EmulatorError as exc:
            raise ScenarioError([f"{scenario.source}: target.world: {exc}"]) from None


def sample(path: Path, count: int, annotated: bool = False) -> Iterator[str]:
    """sample yields a JSON line per arrival: {"due_s", "endpoint", "body"} (pipeable to jq).

    annotated: `<due_s>s <endpoint> <body>` instead, for reading.
    """
    for due_s, request in preview(load_scenario(path), count):
        if annotated:
            yield f"{due_s:8.3f}s {request.endpoint} {request.json.decode()}"
        else:
            line = {"due_s": round(due_s, 6), "endpoint": request.endpoint, "body": request.body}
            yield orjson.dumps(line).decode()
