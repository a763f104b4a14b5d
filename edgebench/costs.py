"""What a run's cost is worked out from: the scenario's prices and its world's facts.

    basis = cost_basis(scenario, world)   # None: the scenario gives no prices
    write_manifest(folder, costs=basis)   # analysis.cost reads it beside the records

A deployment on Edgegap's cloud costs its vCPU and memory (its application's in the world)
for as long as its match runs (the match length's mean); a private host costs its price
for the whole run, used or idle. Nothing is priced by default.
"""

from __future__ import annotations

from typing import Any

from edgebench._errors import EdgebenchError
from edgebench.plan.scenario import Scenario
from emulator import World


def cost_basis(scenario: Scenario, world: World) -> dict[str, Any] | None:
    """cost_basis is the manifest's `costs` (None: no prices given); EdgebenchError names a
    price the world cannot be billed by."""
    costs = scenario.costs
    if costs is None:
        return None
    application = scenario.target.application
    vcpu, memory_gb = world.resources.get(application, (None, None))
    if vcpu is None and (costs.cloud_vcpu_hour or costs.cloud_gb_hour):
        raise EdgebenchError(
            f"{world.source}: applications: {application!r} has no vcpu and memory_gb, which "
            "the cloud's prices bill; add e.g. vcpu = 0.5 and memory_gb = 1 to its table"
        )
    fleets = world.fleets()
    if unknown := [fleet for fleet in costs.private if fleet not in fleets]:
        raise EdgebenchError(
            f"{scenario.source}: costs.private.{unknown[0]}: no fleet of that name in "
            f"{world.source}; price one of {', '.join(fleets) or '(none)'}"
        )
    return {
        "currency": costs.currency,
        "note": costs.note,
        "cloud_vcpu_hour": costs.cloud_vcpu_hour,
        "cloud_gb_hour": costs.cloud_gb_hour,
        "egress_player_hour": costs.egress_player_hour,
        "vcpu": vcpu,
        "memory_gb": memory_gb,
        "match_s": world.lifecycle.lifetime_s.mean,
        "private": {fleet: _fleet(world, fleet, costs.private.get(fleet)) for fleet in fleets},
    }


def _fleet(world: World, fleet: str, price) -> dict[str, Any]:
    """_fleet is what a fleet's hosts are billed as: the ACTIVE ones, for the whole run."""
    active = [h for h in world.private_hosts.values() if h.fleet == fleet and h.active]
    return {
        "hosts": len(active),
        "slots": sum(host.capacity for host in active),
        "per_host_hour": None if price is None else price.hourly,
    }


def refuse_window_cost(scenario: Scenario, knowingly: bool) -> None:
    """refuse_window_cost: `--minimize cost` prices a day, so over a slice of a forecast (its
    window, or a --duration shorter than it) the answer would be the slice's cost scaled to
    24 hours, pricing a peak as if it lasted all day. Refused in one line unless asked for
    knowingly (--window-cost); a scenario of [rate] stages has no day to slice."""
    if knowingly or not slice_of_a_day(scenario):
        return
    raise EdgebenchError(
        f"--minimize cost: {scenario.source} runs {scenario.duration_s / 3600:g} h of its "
        f"forecast's {forecast_hours(scenario):g} h, and a slice's cost scaled to 24 h is not "
        "the day's; drop its window (or --duration) to price the whole forecast, or pass "
        "--window-cost to price the slice knowingly"
    )


def forecast_hours(scenario: Scenario) -> float:
    """forecast_hours is the whole forecast's span in hours (0: the scenario has none)."""
    if scenario.demand is None:
        return 0.0
    times = [t for t, _ in scenario.demand.ccu]
    return (times[-1] - times[0]) / 3600


def slice_of_a_day(scenario: Scenario) -> bool:
    """slice_of_a_day: the run covers part of its forecast (a window, a shorter --duration),
    so its cost a day is the slice's scaled to 24 h, not the day's."""
    whole = forecast_hours(scenario) * 3600
    return bool(whole) and scenario.duration_s < whole - 1e-6
