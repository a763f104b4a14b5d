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
from edgebench.platform import scenario_warnings


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
        for line in scenario_warnings(scenario):
            click.echo(f"warning: {line}")
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


def plan_text(path: Path) -> tuple[str, object, object]:
    """plan_text is the forecast's plan as a table: (text, plan, forecast)."""
    from edgebench.plan.forecast import Forecast, plan

    scenario = load_scenario(path)
    if not scenario.demand:
        raise ScenarioError(
            [f"{path}: demand: missing; `scenario plan` reads a [demand] forecast (see "
             "scenarios/README.md)"]
        )  # fmt: skip
    forecast = Forecast.of(scenario)
    schedule = Schedule.from_scenario(scenario)
    limit = scenario.rate.limit
    result = plan(forecast, limit, schedule.capped_rate())
    regions = list(result.rows[0].servers)
    header = f"{'time':>9} {'players':>10} {'matches/s':>10}  " + " ".join(
        f"{'servers ' + r:>16}" for r in regions
    )
    window = forecast.span
    lines = [
        f"{path}: {scenario.name}: forecast {_clock(forecast.times[0])} to "
        f"{_clock(forecast.times[-1])}; a run covers {_clock(window[0])} to {_clock(window[1])} "
        f"(*); limit {limit}/s",
        header,
    ]
    for row in result.rows:
        mark = "  above the limit" if row.rate > limit else ""
        mark = ("*" if window[0] <= row.t_s <= window[1] else " ") + mark
        servers = " ".join(f"{row.servers[r]:>16,.0f}" for r in regions)
        lines.append(f"{_clock(row.t_s):>9} {row.ccu:>10,.0f} {row.rate:>10.1f}  {servers} {mark}")
    lines += [
        f"peak: {result.peak_rate:.1f} matches/s at {_clock(result.peak_at_s)}",
        f"above the limit ({limit}/s): {result.above_limit_s:,.0f} s of the forecast",
        f"servers held when the run starts: {result.servers_at_start:,.0f} (the emulator "
        "starts empty: occupancy is right from one match length into the run)",
    ]
    if result.cap is not None:
        lines.append(
            f"a first-in-first-out queue in front of the {result.cap:.1f}/s the client sends: "
            f"at most {result.queue_peak:,.0f} matches waiting (at "
            f"{_clock(result.queue_peak_at_s)}), the last of them for "
            f"{result.queue_wait_peak_s:,.0f} s"
        )
    return "\n".join(lines), result, forecast


def _clock(seconds: float) -> str:
    """_clock is a forecast time as h:mm:ss.

    >>> _clock(9000.0)
    '2:30:00'
    """
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
