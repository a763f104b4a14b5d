"""Instant answers: hosts per region and the limit, from formulas, before any simulation.

    answers = instant_answers(scenario, world, overflow=0.05, wait_bound_s=10)
    answers.rows        # per hour: each fleet pool's offered load and the hosts it needs
    answers.peak_hosts  # {pool: hosts at the run's busiest hour}
    answers.limit       # the lowest limit whose queue wait stays within the bound

Hosts: Erlang B on each pool's slots (edgebench.plan.sizing), its load the servers the
pool's fleet deploys hold at the time (Little's law over time, the "modified offered load":
each start held for a private host's boot, cached, and its match). The limit: a first-in-
first-out queue in front of it walked over the run's own arrivals (edgebench.plan.queue),
the demand uncapped. Both approximations, named as such wherever they are shown;
`edgebench advise` confirms them by simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from edgebench.plan.forecast import Forecast
from edgebench.plan.overrides import with_rate
from edgebench.plan.queue import lowest_limit
from edgebench.plan.scenario import Scenario
from edgebench.plan.schedule import Schedule
from edgebench.plan.sizing import hosts_for
from emulator import World

HOUR_S = 3600.0
STEPS = 24  # rows of a run shorter than a few hours
GRID = 4000  # steps of the load's integration over the span, at most
TAIL = 12  # held times past the span a warm start's survivors are followed for


@dataclass(frozen=True)
class Pool:
    """Pool is a set of private hosts some regions' fleet deploys are tried on."""

    name: str  # the region's name, or "shared" (the mix's private_host_ids)
    regions: tuple[str, ...]
    hosts: tuple[str, ...]  # the scenario's, as it is
    slots_per_host: int
    fleet: str | None  # the world's fleet its hosts belong to (one fleet), else None


@dataclass(frozen=True)
class SizingRow:
    t_s: float  # forecast time (a forecast), else run time
    loads: dict[str, float]  # pool -> Erlangs offered at the row's busiest
    hosts: dict[str, int]  # pool -> hosts for the overflow target


@dataclass
class InstantAnswers:
    overflow: float
    wait_bound_s: float
    held_s: float  # a private deployment's mean time holding a slot
    pools: list[Pool]
    rows: list[SizingRow]
    limit: int
    limit_wait_s: float  # the longest wait at that limit
    peak_hosts: dict[str, int] = field(default_factory=dict)


def instant_answers(
    scenario: Scenario, world: World, overflow: float, wait_bound_s: float, warm: bool
) -> InstantAnswers:
    """instant_answers are the formulas' answers for the scenario on its world (warm: its
    runs start holding the servers of their first rate, edgebench.warm)."""
    held = world.lifecycle.cached_boot_s.mean + world.lifecycle.lifetime_s.mean
    pools = fleet_pools(scenario, world)
    rows = [_sized(t, loads, pools, overflow) for t, loads in _loads(scenario, pools, world, warm)]
    limit, walk = lowest_limit(Schedule.from_scenario(with_rate(scenario, "exceed")), wait_bound_s)
    ran = _run_rows(scenario, rows)  # a window's busiest hour is the window's, not the day's
    peak = {pool.name: max((row.hosts[pool.name] for row in ran), default=0) for pool in pools}
    return InstantAnswers(
        overflow, wait_bound_s, held, pools, rows, limit, walk.longest_wait_s, peak
    )


def _run_rows(scenario: Scenario, rows: list[SizingRow]) -> list[SizingRow]:
    """_run_rows are the rows the scenario's run covers: a forecast's window (or --duration
    slice) of its whole day, which the rows follow from its start; every row otherwise."""
    if not scenario.demand or len(rows) < 2:
        return rows
    start, end = Forecast.of(scenario).span
    end = min(end, start + scenario.duration_s)  # --duration cuts a run short
    step = rows[1].t_s - rows[0].t_s
    return [row for row in rows if row.t_s < end and row.t_s + step > start] or rows


def fleet_pools(scenario: Scenario, world: World) -> list[Pool]:
    """fleet_pools are the host sets fleet deploys are tried on: each region's own, and the
    mix's for the regions without (none when the scenario sends no fleet deploys)."""
    if scenario.endpoint_shares[1] == 0:
        return []
    pools = [
        _pool(region.name, (region.name,), region.hosts, world)
        for region in scenario.regions
        if region.hosts
    ]
    shared = [r.name for r in scenario.regions if not r.hosts]
    if shared and scenario.mix.private_host_ids:
        pools.append(_pool("shared", tuple(shared), scenario.mix.private_host_ids, world))
    return pools


def _pool(name: str, regions: tuple[str, ...], ids: list[str], world: World) -> Pool:
    hosts = [world.private_hosts[i] for i in ids if i in world.private_hosts]
    slots = round(sum(h.capacity for h in hosts) / len(hosts)) if hosts else 0
    fleets = {h.fleet for h in hosts}
    return Pool(name, regions, tuple(ids), slots, fleets.pop() if len(fleets) == 1 else None)


def _loads(scenario: Scenario, pools: list[Pool], world: World, warm: bool):
    """_loads yields (time, {pool: Erlangs}) row by row, each row's busiest moment.

    The load at t is the servers a pool's fleet deploys hold then (the modified offered
    load): every earlier start still held, sum of rate(s) x P(held > t - s), so a run that
    starts empty or a rising forecast is not sized as if it had held its rate forever.
    A forecast is followed from its first point (a window of it starts as the day left it).
    A warm start (a forecast with players at its start, or asked) holds its first rate's
    servers at the start, as the runs' preload does.
    """
    rate, shares, start, end = _demand(scenario)
    boot, life = world.lifecycle.cached_boot_s.mean, world.lifecycle.lifetime_s
    dt = max(1.0, min((boot + life.mean) / 20, (end - start) / GRID))
    times = np.arange(start, end + dt / 2, dt)
    longest = len(times) + math.ceil(TAIL * (boot + life.mean) / dt)
    kept = np.array([life.survival((k + 0.5) * dt - boot) for k in range(longest)])
    # A warm start: the servers the first rate held before the start, each still held for
    # what is left of it.
    before = np.cumsum(kept[::-1])[::-1][1 : len(times) + 1] * dt if warm else 0.0
    # The mix's share: a pool's regions' shares below leave out the regions with no fleet.
    fleet_share = scenario.endpoint_shares[1] if scenario.replay else scenario.mix.shares[1]
    offered = {}
    for pool in pools:
        share = [sum(shares(t).get(r, 0.0) for r in pool.regions) for t in times]
        starts = np.array([rate(t) * fleet_share for t in times]) * np.array(share)
        since = np.convolve(starts, kept[: len(times)])[: len(times)] * dt
        offered[pool.name] = since + starts[0] * before
    step = HOUR_S if end - start >= 3 * HOUR_S else max(dt, (end - start) / STEPS)
    t = start
    while t < end or t == start:
        within = (times >= t) & (times <= t + step)
        yield t, {name: float(load[within].max(initial=0.0)) for name, load in offered.items()}
        t += step


def _demand(scenario: Scenario):
    """_demand is (rate(t), region shares(t), start, end): a forecast's whole span (forecast
    time), else the run's stages (run time), uncapped."""
    weights = {r.name: r.weight for r in scenario.regions}
    total = sum(weights.values()) or 1.0
    fixed = {n: w / total for n, w in weights.items()}
    if scenario.demand:
        forecast = Forecast.of(scenario)
        factor = scenario.rate.factor

        def forecast_shares(t: float) -> dict[str, float]:
            return forecast.region_shares_at(t - forecast.span[0]) or fixed

        rate = lambda t: forecast.rate_at(t) * factor  # noqa: E731
        return rate, forecast_shares, forecast.times[0], forecast.times[-1]
    schedule = Schedule.from_scenario(with_rate(scenario, "exceed"))

    def stage_rate(t: float) -> float:
        rates = [s.rate_at(t) for s in schedule.demand if s.start_s <= t <= s.end_s]
        return max(rates, default=0.0)

    return stage_rate, lambda t: fixed, 0.0, schedule.duration_s


def _sized(t: float, loads: dict[str, float], pools: list[Pool], overflow: float) -> SizingRow:
    hosts = {p.name: hosts_for(loads[p.name], overflow, p.slots_per_host) for p in pools}
    return SizingRow(t, loads, hosts)


def hosts_text(answers: InstantAnswers, clock) -> list[str]:
    """hosts_text is the table `scenario plan` prints (clock: a time as the reader wants it)."""
    if not answers.pools:
        return ["private hosts: the scenario sends no fleet deploys (none to size)"]
    names = [p.name for p in answers.pools]
    lines = [
        f"private hosts to keep overflow under {answers.overflow:.0%} (Erlang B on each pool's "
        "slots at its busiest in the hour; its load the servers its fleet deploys hold then, "
        f"each about {answers.held_s:,.0f} s: Little's law over time; an approximation)",
        f"{'time':>9} " + " ".join(f"{'hosts ' + n:>18}" for n in names),
    ]
    for row in answers.rows:
        cells = " ".join(f"{row.hosts[n]:>18,}" for n in names)
        lines.append(f"{clock(row.t_s):>9} {cells}")
    for pool in answers.pools:
        now = len(pool.hosts)
        lines.append(
            f"  {pool.name}: {answers.peak_hosts[pool.name]:,} hosts of {pool.slots_per_host} "
            f"slots at the run's busiest hour (it names {now:,})"
            + (f"; fleet {pool.fleet}" if pool.fleet else "")
        )
    return lines


def limit_text(answers: InstantAnswers) -> str:
    return (
        f"limit to keep every match's wait for its turn within {answers.wait_bound_s:g} s: "
        f"{answers.limit}/s (the longest wait there {answers.limit_wait_s:g} s; a first-in-"
        "first-out queue walked over the run's own arrivals, uncapped; an approximation)"
    )


def wait_bound(scenario: Scenario, given: float | None) -> float:
    """wait_bound is the queue wait the limit is sized for: given, else the client's
    max_queue_wait, else 10 s."""
    if given is not None:
        return given
    policy = scenario.client_policy
    told = policy.max_queue_wait_s if policy else None
    return told if told is not None and math.isfinite(told) else 10.0
