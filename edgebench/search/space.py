"""What a search varies, and the scenario (and world file) each value makes.

    --vary rate                  the offered rate: a factor over the scenario's rates
    --vary limit                 the organisation's limit: the lowest that meets the checks
    --vary capacity              a scale factor over every location's slots
    --vary capacity:Frankfurt    the slots at one location (a city of the world)
    --vary capacity:fleet-fra-1  the slots on one private host
    --vary hosts:fleet-eu        how many hosts a private fleet has (a region's private_fleet)

A capacity value is written as a world file in the probe's folder (the world the probe
ran on, beside its records), so a simulated probe and a live one read the same file.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from pathlib import Path

from edgebench._errors import EdgebenchError
from edgebench.plan.overrides import with_limit
from edgebench.plan.scenario import Scenario, with_rate, with_world
from edgebench.plan.schedule import Schedule
from emulator import default_world_path, world_table


@dataclass(frozen=True)
class Space:
    """Space is the varied quantity: what it is, where the search starts, which way is good."""

    kind: str  # "rate", "limit", "scale", "location", "host" or "hosts"
    name: str | None  # the city, host or fleet of a "location", "host" or "hosts" space
    start: float
    wants: str  # "higher" (rate) or "lower" (capacity)
    whole: bool
    world_file: Path
    raw_world: dict
    floor: float = 0.0  # the least value the question allows (a fleet keeps one host)

    @property
    def label(self) -> str:
        return {
            "rate": "rate factor (x the scenario's rates)",
            "limit": "organisation limit (requests/s)",
            "scale": "capacity scale (x every location's slots)",
            "location": f"slots at {self.name}",
            "host": f"slots on private host {self.name}",
            "hosts": f"hosts in fleet {self.name}",
        }[self.kind]

    def scenario_at(self, scenario: Scenario, value: float, folder: Path) -> Scenario:
        """scenario_at is the scenario a probe at value runs (writing its world file)."""
        if self.kind == "rate":
            return with_rate(scenario, "", repr(value))
        if self.kind == "limit":
            return with_limit(scenario, int(value))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "world.toml"
        path.write_text(world_toml(self._world_at(value)))
        return with_world(scenario, path)

    def _world_at(self, value: float) -> dict:
        world = copy.deepcopy(self.raw_world)
        if self.kind == "scale":
            for location in world.get("locations", []):
                location["capacity"] = math.floor(location["capacity"] * value)
        elif self.kind == "location":
            for location in world.get("locations", []):
                if location["city"] == self.name:
                    location["capacity"] = int(value)
        elif self.kind == "hosts":
            for host in world.get("private_hosts", []):
                if host.get("fleet") == self.name:
                    host["count"] = int(value)
        else:
            for host in world.get("private_hosts", []):
                if host["id"] == self.name:
                    host["capacity"] = int(value)
        return world


def parse_space(vary: str, scenario: Scenario) -> Space:
    """parse_space reads --vary against the scenario's world; EdgebenchError names the fix."""
    world_file = Path(scenario.world_file) if scenario.world_file else default_world_path()
    raw = world_table(world_file)  # what it extends merged in: a probe writes it whole
    kind, _, name = vary.partition(":")
    if kind == "rate" and not name:
        return Space("rate", None, 1.0, "higher", False, world_file, raw)
    if kind == "limit" and not name:
        start = float(scenario.rate.limit)
        return Space("limit", None, start, "lower", True, world_file, raw, floor=1.0)
    if kind == "hosts":
        return _hosts_space(vary, name, scenario, world_file, raw)
    if kind != "capacity":
        raise EdgebenchError(
            f"--vary {vary!r}: not a quantity; use rate, limit, capacity, "
            "capacity:CITY_OR_HOST or hosts:FLEET"
        )
    if not name:
        return Space("scale", None, 1.0, "lower", False, world_file, raw)
    cities = {loc["city"]: loc["capacity"] for loc in raw.get("locations", [])}
    hosts = {host["id"]: host["capacity"] for host in raw.get("private_hosts", [])}
    if name in cities:
        return Space("location", name, float(cities[name]), "lower", True, world_file, raw)
    if name in hosts:
        return Space("host", name, float(hosts[name]), "lower", True, world_file, raw)
    known = ", ".join([*cities, *hosts][:12])
    raise EdgebenchError(
        f"--vary {vary!r}: {world_file} has no city or private host {name!r}; one of {known}"
    )


def _hosts_space(vary: str, fleet: str, scenario: Scenario, world_file: Path, raw: dict) -> Space:
    """_hosts_space varies a fleet's host count: the fleet must be one [[private_hosts]] entry
    (its `count` is what changes) that a region names with private_fleet."""
    entries = [h for h in raw.get("private_hosts", []) if h.get("fleet") == fleet]
    if len(entries) != 1:
        fleets = sorted({h.get("fleet", "my-fleet") for h in raw.get("private_hosts", [])})
        fix = (
            f"write its hosts as one [[private_hosts]] entry with count = {len(entries)}"
            if entries
            else f"name a fleet of the world: {', '.join(fleets) or 'none'}"
        )
        raise EdgebenchError(
            f"--vary {vary!r}: {world_file} has {len(entries)} entries for fleet {fleet!r}; {fix}"
        )
    if not any(region.private_fleet == fleet for region in scenario.regions):
        raise EdgebenchError(
            f"--vary {vary!r}: no region of {scenario.source} has private_fleet = "
            f'"{fleet}", so its hosts would take no match; name it in a [[regions]] table'
        )
    count = float(entries[0].get("count", 1))
    return Space("hosts", fleet, count, "lower", True, world_file, raw, floor=1.0)


def peak_rate(scenario: Scenario) -> float:
    """peak_rate is the busiest rate a scenario's schedule offers, per second."""
    schedule = Schedule.from_scenario(scenario)
    return max(
        (max(segment.rate_start, segment.rate_end) for segment in schedule.demand), default=0.0
    )


def world_toml(world: dict) -> str:
    """world_toml writes a world table back as TOML (scalars, inline tables, [[arrays]])."""
    lines = []
    for key, value in world.items():
        if isinstance(value, dict):
            lines += ["", f"[{key}]", *(f"{_key(k)} = {_value(v)}" for k, v in value.items())]
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for table in value:
                lines += ["", f"[[{key}]]", *(f"{_key(k)} = {_value(v)}" for k, v in table.items())]
        else:
            lines.insert(0, f"{key} = {_value(value)}")
    return "\n".join(lines).lstrip("\n") + "\n"


def _key(key: str) -> str:
    """_key is a key as TOML reads it back: bare when it can be, else quoted ("a.b")."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _value(key)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"a world holds no {type(value).__name__}")
