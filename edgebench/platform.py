"""The platform a scenario runs on: its world, with the scenario's match length, and the
warnings a run or a simulation says before it starts.

    world = scenario_world(scenario)             # what the simulator (and the emulator) hold
    for line in scenario_warnings(scenario, world): ...

The embedded emulator resolves the same run (RunSpec) and holds its world the same way, so
a live run and its simulation hold servers alike.
"""

from __future__ import annotations

from edgebench.plan.scenario import Scenario
from emulator import Distribution, World, load_world, parse_distribution


def scenario_world(scenario: Scenario) -> World:
    """scenario_world is the scenario's world whose deployments last its matches' length."""
    world = load_world(scenario.world_file)
    lifetime = match_lifetime(scenario)
    return world.with_lifetime(lifetime) if lifetime else world


def unknown_hosts_warning(scenario: Scenario, world: World) -> str | None:
    """unknown_hosts_warning names a private host the scenario's fleet deploys name and the
    world has not: the emulator (and the simulator) answer each such request 400."""
    if scenario.endpoint_shares[1] == 0:
        return None  # no fleet deploy is sent: the ids are never read
    named = [("mix", scenario.mix.private_host_ids)] + [
        (f"regions[{i}]", region.private_host_ids) for i, region in enumerate(scenario.regions)
    ]
    for where, hosts in named:
        if unknown := [host for host in hosts if host not in world.private_hosts]:
            known = ", ".join(list(world.private_hosts)[:8]) or "none"
            return (
                f"{scenario.source}: {where}.private_host_ids: {unknown[0]!r} is not a host of "
                f"{world.source} (its hosts: {known}): the fleet deploys naming it are "
                "answered 400"
            )
    return None


def match_lifetime(scenario: Scenario) -> Distribution | None:
    """match_lifetime is the scenario's match length as a distribution (None: it has none)."""
    table = scenario.match_lifetime
    return None if table is None else parse_distribution(table, "demand.match_length")


def scenario_warnings(scenario: Scenario, world: World | None = None) -> list[str]:
    """scenario_warnings are what to say of a scenario before it runs: a bare match length,
    a world whose lifetime is not the scenario's match length."""
    world = world or load_world(scenario.world_file)
    said = scenario.lifetime_warning(world.lifecycle.lifetime_s.describe(), world.source)
    hosts = unknown_hosts_warning(scenario, world)
    return [*scenario.warnings, *(line for line in (said, hosts) if line)]
