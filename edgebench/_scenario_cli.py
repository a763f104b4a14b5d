"""`edgebench scenario check` and `edgebench scenario sample`."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, tzinfo
from pathlib import Path

import click
import orjson

from edgebench._errors import ScenarioError
from edgebench.plan.forecast import Forecast, Plan, elapsed
from edgebench.plan.overrides import with_limit
from edgebench.plan.payloads import preview
from edgebench.plan.scenario import load_scenario
from edgebench.plan.schedule import Schedule
from edgebench.platform import scenario_warnings
from edgebench.warm import warms_by_default

OPENING_S = 120.0  # the opening a forecast's plan tells of: the run's first two minutes


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
    from emulator import EmulatorError, load_world

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


def plan_text(
    path: Path,
    tz: tzinfo = UTC,
    limit: int | None = None,
    overflow: float = 0.05,
    wait_bound_s: float | None = None,
) -> tuple[str, Plan | None, Forecast | None]:
    """plan_text is what the scenario asks of the API, before any traffic: (text, plan,
    forecast); plan and forecast are None for a scenario of [rate] stages (no forecast).
    A forecast of ISO times is told in clock time, in tz; limit replaces the scenario's.
    It ends with the instant answers: hosts per region for the overflow share, and the
    limit for the wait bound."""
    scenario = with_limit(load_scenario(path), limit)
    schedule = Schedule.from_scenario(scenario)
    when = _run_clock(scenario, tz)
    if scenario.demand:
        text, result, forecast = _forecast_text(path, scenario, schedule, tz)
    else:
        text, result, forecast = _stages_text(path, scenario, schedule), None, None
    queue_lines, panel = _queue_lines(scenario, schedule, when)
    if result is not None and forecast is not None:  # the plot draws the queue the text tells
        start = forecast.span[0]
        title, points = panel
        result = replace(result, queue=[(start + t, n) for t, n in points], queue_title=title)
    answers = _instant_lines(scenario, tz, overflow, wait_bound_s)
    return "\n".join([text, *queue_lines, *answers]), result, forecast


def _run_clock(scenario, tz: tzinfo):
    """_run_clock tells a run time as a reader wants it: a forecast of ISO times in clock
    time ("18:00 UTC"), else time from the run's start ("0:00:59 into the run")."""
    if scenario.demand and scenario.demand.origin:
        forecast = Forecast.of(scenario)
        return lambda t: forecast.clock(forecast.span[0] + t, tz)
    return lambda t: f"{elapsed(t)} into the run"


def _instant_lines(scenario, tz: tzinfo, overflow: float, wait_bound_s: float | None) -> list[str]:
    """_instant_lines are the formulas' answers: hosts per region, the limit for a wait."""
    from edgebench.advise.instant import hosts_text, instant_answers, limit_text, wait_bound
    from edgebench.platform import scenario_world

    bound = wait_bound(scenario, wait_bound_s)
    world = scenario_world(scenario)
    answers = instant_answers(scenario, world, overflow, bound, warms_by_default(scenario))
    clock = functools.partial(Forecast.of(scenario).clock, tz=tz) if scenario.demand else elapsed
    return [*hosts_text(answers, clock), limit_text(answers)]


def _forecast_text(
    path: Path, scenario, schedule: Schedule, tz: tzinfo
) -> tuple[str, Plan, Forecast]:
    """_forecast_text is the forecast's table: players, matches and servers over the day."""
    from edgebench.plan.forecast import plan

    forecast = Forecast.of(scenario)
    _clock = functools.partial(forecast.clock, tz=tz)
    limit, factor = scenario.rate.limit, scenario.rate.factor
    result = plan(forecast, limit, schedule.capped_rate(), factor)
    regions = list(result.rows[0].servers)
    header = f"{'time':>9} {'players':>10} {'matches/s':>10}  " + " ".join(
        f"{'servers ' + r:>16}" for r in regions
    )
    window = forecast.span
    times = f" x {factor:g} (rate factor)" if factor != 1 else ""
    lines = [
        f"{path}: {scenario.name}: forecast {_clock(forecast.times[0])} to "
        f"{_clock(forecast.times[-1])}{times}; a run covers {_clock(window[0])} to "
        f"{_clock(window[1])} (*); limit {limit}/s",
        header,
    ]
    for row in result.rows:
        mark = "  above the limit" if row.rate > limit else ""
        mark = ("*" if window[0] <= row.t_s <= window[1] else " ") + mark
        servers = " ".join(f"{row.servers[r]:>16,.0f}" for r in regions)
        lines.append(f"{_clock(row.t_s):>9} {row.ccu:>10,.0f} {row.rate:>10.1f}  {servers} {mark}")
    warm = "a run starts warm, holding them" if warms_by_default(scenario) else "from empty"
    lines += [
        f"peak: {result.peak_rate:.1f} matches/s in the busiest minute, from "
        f"{_clock(result.peak_at_s)} (starts hold the forecast's matches in progress: the "
        "renewal equation; Little's law only where players hold steady)",
        f"above the limit ({limit}/s): {result.above_limit_s:,.0f} s of the forecast",
        f"servers held when the run starts: {result.servers_at_start:,.0f} ({warm})",
        *_excess_lines(result, _clock),
    ]
    return "\n".join(lines), result, forecast


def _excess_lines(result, clock) -> list[str]:
    """_excess_lines name where the forecast cannot be met: players leave faster than
    matches end, so no match starts and the platform holds more than the forecast has."""
    if not result.excess:
        return []
    most = max(result.excess, key=lambda stretch: stretch[2])
    spans = ", ".join(f"{clock(a)} to {clock(b)}" for a, b, _ in result.excess[:5])
    more = f" and {len(result.excess) - 5} more" if len(result.excess) > 5 else ""
    return [
        f"the forecast cannot be held: players leave faster than matches end ({spans}{more}): "
        f"no match starts then, and the platform holds up to {most[2]:,.0f} servers more than "
        f"the forecast's (at {clock(most[0])} to {clock(most[1])})"
    ]


def _stages_text(path: Path, scenario, schedule: Schedule) -> str:
    """_stages_text is a scenario of [rate] stages: each stretch's rate, times its factor."""
    rate = scenario.rate
    lines = [
        f"{path}: {scenario.name}: {scenario.duration_s:g} s of [rate] stages x {rate.factor:g}, "
        f"{rate.mode} mode, limit {rate.limit}/s, {schedule.count():,} matches"
        + (f", released every {schedule.tick_s:g} s" if schedule.tick_s else ""),
        f"{'from':>9} {'to':>9} {'matches/s':>10}",
    ]
    for segment in schedule.demand:
        rates = f"{segment.rate_start:.1f}" + (
            f" -> {segment.rate_end:.1f}" if segment.rate_end != segment.rate_start else ""
        )
        lines.append(f"{elapsed(segment.start_s):>9} {elapsed(segment.end_s):>9} {rates:>10}")
    return "\n".join(lines)


Panel = tuple[str, list[tuple[float, float]]]  # the plot's queue panel: title, (run time, y)


def _queue_lines(scenario, schedule: Schedule, when) -> tuple[list[str], Panel]:
    """_queue_lines say what the limit does to the run's matches: the client's queue walked
    over the run's own arrivals, or the starts respect mode's cap leaves out, or those
    above the limit (exceed mode); and the same as the plot's panel, in run time."""
    from edgebench.plan.queue import queue_walk

    limit = scenario.rate.limit
    if scenario.rate.mode != "respect":
        lines = ["exceed mode: every match is sent when due; past the limit the API answers 429"]
        return lines, (f"starts above the limit ({limit}/s: answered 429)", _above(schedule, limit))
    if not scenario.queues:
        capped = round(schedule.demand_total()) - schedule.count()
        cap = schedule.capped_rate() or float(limit)
        lines = [
            f"no client queue: respect mode caps the run at {cap:.1f}/s; "
            f"{capped:,} of the demand's starts are not made"
        ]
        return lines, (f"starts the cap ({cap:.1f}/s) leaves out, a second", _above(schedule, cap))
    policy = scenario.client_policy
    wait = policy.max_queue_wait_s if policy else None
    walk = queue_walk(schedule, limit, wait, OPENING_S if scenario.demand else 0)
    leaving = f", leaving after {wait:g} s" if wait is not None and wait < float("inf") else ""
    lines = [
        f"the client's queue (first in, first out, {limit} sends a second): at "
        f"most {walk.peak_waiting:,} matches waiting (at {when(walk.peak_at_s)}), "
        f"the longest wait for a turn {walk.longest_wait_s:,.0f} s"
    ]
    if walk.abandoned:
        lines.append(f"abandoned past max_queue_wait ({wait:g} s): {walk.abandoned:,} matches")
    if opening := walk.opening:
        lines.append(
            f"the opening (matches due in the run's first {opening.seconds / 60:g} minutes): "
            f"{opening.matches:,} matches; their wait for a turn p99 {opening.p99_wait_s:,.0f} s, "
            f"longest {opening.longest_wait_s:,.0f} s; abandoned {opening.abandoned:,}"
        )
    title = f"the client's queue: matches waiting ({limit} sends a second{leaving})"
    return lines, (title, list(enumerate(walk.waiting)))


def _above(schedule: Schedule, level: float) -> list[tuple[float, float]]:
    """_above is the demand above `level` at each of the schedule's piece boundaries."""
    return [
        (t, max(0.0, rate - level))
        for segment in schedule.demand
        for t, rate in ((segment.start_s, segment.rate_start), (segment.end_s, segment.rate_end))
    ]
