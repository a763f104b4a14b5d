"""A warm start: the deployments already running when a run's slice of the day begins.

A run of a forecast's window does not start on an empty platform. The renewal solution
(edgebench.plan.renewal) says which matches run at the window's start: each cell's starts
still running, with its age, as many as the forecast holds then (more where players left
faster than matches end); each keeps what is left of its match past that age (emulator's
Distribution.remaining), and its region is the region its match started in. A scenario of
[rate] stages started warm holds Little's law's count at its first rate, each with a
residual from the length's equilibrium distribution (a match caught at a random moment).
The same requests warm the simulator's model and, through `POST /_emulator/preload`, the
embedded emulator of a live run, before the first arrival.

    body = warm_body(scenario, mean_lifetime_s, time_scale)  # what /_emulator/preload reads
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
    if scenario.demand:
        return preload_body(scenario, *running_ages(scenario, world_lifetime_mean_s))
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


def running_ages(scenario: Scenario, mean_lifetime_s: float) -> tuple[int, Any]:
    """running_ages are (count, ages): the matches the forecast's renewal solution has
    running at the run's start (times the rate factor; no more than the limit lets through
    for a mean match), and each one's age, drawn from the solution's ages (seeded)."""
    import numpy as np

    from edgebench.plan.forecast import Forecast

    forecast = Forecast.of(scenario)
    solution = forecast.renewal
    counts, lower = solution.ages_at(forecast.span[0])
    by_age = counts.sum(axis=1) * scenario.rate.factor
    ceiling = scenario.rate.limit * mean_lifetime_s
    count = round(min(float(by_age.sum()), ceiling))
    if count == 0:
        return 0, np.zeros(0)
    rng = np.random.default_rng([scenario.seed, WARM_KEY_BASE])
    cells = rng.choice(len(by_age), size=count, p=by_age / by_age.sum())
    return count, lower[cells] + rng.random(count) * solution.dt


def preload_body(scenario: Scenario, count: int, ages: Any = None) -> dict[str, Any]:
    """preload_body is /_emulator/preload's body: count parties drawn as the run's would be
    (their regions, kinds and players' centres); with ages, each drawn as at the moment its
    match started (before the run: its region's share of the starts then) and told its age."""
    # Only a warm start draws them: `edgebench run` loads no numpy or simulator otherwise.
    import numpy as np

    from edgebench.simulate.batch import BatchParties

    plan = PayloadPlan(scenario)
    indices = np.arange(WARM_KEY_BASE, WARM_KEY_BASE + count, dtype=np.int64)
    started = -np.asarray(ages, dtype=float) if ages is not None else np.zeros(count)
    parties = BatchParties(plan).parties(indices, started) if count else []
    target = scenario.target
    fleets = {r.name: scenario.fleet_host_ids(r.name) for r in scenario.regions}
    return {
        "application": target.application,
        "version": target.version,
        # Each region's hosts once: a deployment names its region's (thousands of ids each).
        "fleets": {name: hosts for name, hosts in fleets.items() if hosts},
        "deployments": [
            {
                "centre": None if p.centre is None else [p.centre.latitude, p.centre.longitude],
                "fleet": p.endpoint == FLEET_DEPLOY and bool(fleets.get(p.region)) and p.region,
                "cached": p.kind == "cached",
            }
            | ({} if ages is None else {"age_s": round(float(ages[k]), 3)})
            for k, p in enumerate(parties)
        ],
    }
