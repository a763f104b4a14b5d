"""Reading a scenario file: TOML, the schema's check, the files it names, their digest."""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from edgebench._errors import ScenarioError
from edgebench.plan._problems import problem
from edgebench.plan._schema import Scenario

if TYPE_CHECKING:
    from hashlib import _Hash as Hash


Edit = Callable[[dict[str, Any]], dict[str, Any]]


def load_scenario(path: str | Path, edit: Edit | None = None) -> Scenario:
    """load_scenario reads and checks a scenario; ScenarioError lists every problem. edit
    changes the file's table before its one check (a command's overrides)."""
    path = Path(path)
    try:
        text = path.read_bytes()
        raw = tomllib.loads(text.decode("utf-8"))
    except FileNotFoundError:
        raise ScenarioError([f"{path}: file not found; pass an existing scenario file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([f"{path}: cannot read it ({exc}); check the file"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError([f"{path}: invalid TOML ({exc}); fix the syntax"]) from None
    raw.setdefault("name", path.stem)
    raw |= {"source": str(path), "digest": hashlib.sha256(text).hexdigest()}
    if edit is not None:
        raw = edit(raw)
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError([problem(path, dict(error)) for error in exc.errors()]) from None
    inputs = hashlib.sha256(text)
    if scenario.demand and scenario.demand.ccu_file:
        scenario = _with_forecast_file(scenario, path, inputs)
    if scenario.rate.replay_file:
        scenario = _with_replay(scenario, path, inputs)
    warnings = _bare_match_length(path, raw.get("demand"))
    scenario = scenario.model_copy(
        update={"inputs_digest": inputs.hexdigest(), "warnings": warnings}
    )
    if scenario.world_file and not scenario.world_file.is_file():
        raise ScenarioError(
            [
                f"{path}: target.world: {scenario.target.world!r} not found (looked for "
                f"{scenario.world_file}); give a world file's path, relative to the scenario"
            ]
        )
    return with_fleets(scenario)


def with_fleets(scenario: Scenario) -> Scenario:
    """with_fleets resolves each region's private_fleet into the ids of that fleet's hosts in
    the scenario's world (whose bytes join the inputs digest: a worker must have the same)."""
    if not any(region.private_fleet for region in scenario.regions):
        return scenario
    from emulator import ConfigError, default_world_path, load_world

    path = scenario.world_file or default_world_path()
    try:
        world = load_world(path)
    except ConfigError as exc:
        raise ScenarioError([f"{scenario.source}: target.world: {exc}"]) from None
    regions = []
    for i, region in enumerate(scenario.regions):
        if region.private_fleet:
            hosts = world.fleet_hosts(region.private_fleet)
            if not hosts:
                raise ScenarioError(
                    [
                        f"{scenario.source}: regions[{i}].private_fleet: {path} has no host of "
                        f"fleet {region.private_fleet!r}; name one of "
                        f"{', '.join(world.fleets()) or '(none: add [[private_hosts]])'}"
                    ]
                )
            region = region.model_copy(update={"fleet_hosts": hosts})
        regions.append(region)
    inputs = hashlib.sha256(f"{scenario.inputs_digest}{world.sha256}".encode()).hexdigest()
    return scenario.model_copy(update={"regions": regions, "inputs_digest": inputs})


def _with_replay(scenario: Scenario, path: Path, inputs: Hash) -> Scenario:
    """_with_replay reads rate.replay_file (relative to the scenario) into its matches,
    and adds the log's bytes to the `inputs` digest."""
    from edgebench.plan.replay import read_replay

    log = Path(scenario.rate.replay_file or "")
    log = log if log.is_absolute() else path.parent / log
    if not log.is_file():
        raise ScenarioError(
            [f"{path}: rate.replay_file: {scenario.rate.replay_file!r} not found; give a log"]
        )
    inputs.update(log.read_bytes())
    matches = tuple(read_replay(log))
    if any(match.fleet for match in matches) and not scenario.mix.private_host_ids:
        raise ScenarioError(
            [f"{path}: mix.private_host_ids: {log} has fleet deploys; list the fleet's host ids"]
        )
    return scenario.model_copy(update={"replay": matches})


def _with_forecast_file(scenario: Scenario, path: Path, inputs: Hash) -> Scenario:
    """_with_forecast_file reads demand.ccu_file (relative to the scenario) into the points,
    and adds the file's bytes to the `inputs` digest."""
    from edgebench.plan.forecast import read_ccu_file

    demand = scenario.demand
    assert demand is not None
    assert demand.ccu_file
    csv = Path(demand.ccu_file)
    csv = csv if csv.is_absolute() else path.parent / csv
    points, regions, origin = read_ccu_file(csv, path)
    inputs.update(csv.read_bytes())
    names = {region.name for region in scenario.regions}
    if unknown := sorted(set(regions) - names):
        raise ScenarioError(
            [f"{csv}: line 1: column {unknown[0]!r} is not a region of {path}; name a region"]
        )
    if regions and (missing := sorted(names - set(regions))):
        raise ScenarioError(
            [
                f"{csv}: line 1: no column for region {missing[0]!r} of {path}; add its players "
                "(every [[regions]] name has a column, or none has)"
            ]
        )
    update = {
        "ccu": points,
        "ccu_file": None,
        "region_ccu": regions,
        "origin": origin.isoformat() if origin else None,
    }
    return scenario.model_copy(update={"demand": demand.model_copy(update=update)})


SHORTEST_MATCH_S = 120.0  # a bare number under this is more likely minutes than seconds


def _bare_match_length(path: Path, demand: object) -> tuple[str, ...]:
    """_bare_match_length warns of a match length written as a bare number of seconds so
    small that minutes were probably meant (match_length = 25: 25 s, not 25 minutes)."""
    if not isinstance(demand, dict):
        return ()
    length = demand.get("match_length")
    key = "demand.match_length"
    if isinstance(length, dict):
        length, key = length.get("median"), "demand.match_length.median"
    if isinstance(length, bool) or not isinstance(length, int | float):
        return ()
    if length >= SHORTEST_MATCH_S:
        return ()
    return (
        f'{path}: {key}: {length:g} is read as {length:g} seconds; write "{length:g}m" '
        "if minutes were meant",
    )
