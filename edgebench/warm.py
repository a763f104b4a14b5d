"""A warm start: the deployments already running when a run's slice of the day begins.

A run of a forecast's peak hour does not start on an empty platform. By Little's law the
platform holds, at the window's start, about (deploys per second then) x (the mean match
length) servers, spread over the regions as the players are then, each with what is left
of its match: the length's equilibrium distribution (emulator's Distribution.residual).
The same requests warm the simulator's model and, through `POST /_emulator/preload`, the
embedded emulator of a live run, before the first arrival.

    count = warm_count(schedule, limit, mean_lifetime_s)
    body = preload_body(scenario, count)     # what /_emulator/preload reads
    model.preload(parse_preload(body), now)  # emulator._model: the simulator's way in
"""

from __future__ import annotations

from typing import Any

from edgebench.plan.payloads import FLEET_DEPLOY, PayloadPlan
from edgebench.plan.scenario import Scenario
from edgebench.plan.schedule import Schedule

WARM_KEY_BASE = 1 << 40  # the warm parties' draws, apart from the arrivals' keys (0, 1, ...)


def warms_by_default(scenario: Scenario) -> bool:
    """warms_by_default: a forecast whose run starts with players in matches starts warm (a
    window of it, or a day from midnight: the day before was running)."""
    if not scenario.demand:
        return False
    from edgebench.plan.forecast import Forecast

    forecast = Forecast.of(scenario)
    return bool(scenario.demand.window) or forecast.ccu_at(forecast.span[0]) > 0


def wants_warm(scenario: Scenario, asked: bool | None) -> bool:
    """wants_warm is --warm-start/--cold-start when given, else warms_by_default."""
    return warms_by_default(scenario) if asked is None else asked


def warm_body(
    scenario: Scenario, world_lifetime_mean_s: float, time_scale: float
) -> dict[str, Any]:
    """warm_body is the preload of the scenario's start on a world whose matches last
    world_lifetime_mean_s platform seconds on average, at time_scale."""
    schedule = Schedule.from_scenario(scenario)
    count = warm_count(schedule, scenario.rate.limit, world_lifetime_mean_s / time_scale)
    return preload_body(scenario, count)


def warm_count(schedule: Schedule, limit: int | None, mean_lifetime_s: float) -> int:
    """warm_count is Little's law at the run's start: deploys per second then (the demand's,
    no more than the limit lets through) times the mean match length."""
    rate = schedule.rate_at(0.0)
    if limit is not None:
        rate = min(rate, float(limit))
    return round(rate * mean_lifetime_s)


def preload_body(scenario: Scenario, count: int) -> dict[str, Any]:
    """preload_body is /_emulator/preload's body: count parties drawn as the run's would be
    at its start (their regions, kinds and players' centres)."""
    # Only a warm start draws them: `edgebench run` loads no numpy or simulator otherwise.
    import numpy as np

    from edgebench.simulate.batch import BatchParties

    plan = PayloadPlan(scenario)
    indices = np.arange(WARM_KEY_BASE, WARM_KEY_BASE + count, dtype=np.int64)
    parties = BatchParties(plan).parties(indices, np.zeros(count)) if count else []
    target = scenario.target
    return {
        "application": target.application,
        "version": target.version,
        "deployments": [
            {
                "centre": None if p.centre is None else [p.centre.latitude, p.centre.longitude],
                "fleet": p.endpoint == FLEET_DEPLOY and scenario.fleet_host_ids(p.region),
                "cached": p.kind == "cached",
            }
            for p in parties
        ],
    }
