"""How much a simulation's answers depend on what its world assumes.

    ranges = sensitivity(scenario, plan, folder)   # writes folder/sensitivity.json

The scenario is simulated again, once per assumption moved: under each limiter shape the
world does not use, and with each timing at the low and the high edge of its calibrated
interval (the world's [intervals]: a fitted median's 90% interval) or, where nothing was
calibrated, 25% below and above. Each figure (the players' wait percentiles, the unserved
share, the overflow, the cost a day) is then given as simulated, with its range over the
assumptions and the assumption that moves it most. Each variant keeps its summary and
world file under `sensitivity/`, not its records.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import orjson

from edgebench.plan.overrides import with_world
from edgebench.plan.scenario import Scenario
from edgebench.search.space import world_toml
from edgebench.simulate.pool import Job
from emulator import ALGORITHMS, Distribution, default_world_path, parse_distribution

UNCALIBRATED_SHARE = 0.25  # how far a value nobody calibrated is moved, each way
FIGURES = (
    ("wait_p50_s", "players' wait p50 (s)"),
    ("wait_p95_s", "players' wait p95 (s)"),
    ("wait_p99_s", "players' wait p99 (s)"),
    ("share_unserved", "share of matches unserved"),
    ("share_overflow", "share of fleet deploys overflowed"),
    ("cost_per_day", "cost a day"),
)
TIMINGS = ("lifecycle.boot_s", "lifecycle.cached_boot_s", "api.latency_ms")
SENSITIVITY_FILE = "sensitivity.json"


def variants(scenario: Scenario, raw: dict) -> list[tuple[str, dict]]:
    """variants are (name, world table) of each assumption moved, one at a time."""
    shape = (raw.get("limits") or {}).get("algorithm", "sliding-window")
    moved = [
        (f"limits.algorithm = {other}", _with(raw, "limits", {"algorithm": other}))
        for other in ALGORITHMS
        if other != shape
    ]
    intervals = raw.get("intervals") or {}
    timings = [*TIMINGS, *(() if scenario.match_lifetime else ("lifecycle.lifetime_s",))]
    for key in timings:
        table, name = key.split(".")
        value = (raw.get(table) or {}).get(name)
        if value is None:
            continue
        base = parse_distribution(value, key)
        for edge, factor in _factors(key, base, intervals):
            changed = scaled(base, factor).describe()
            moved.append((f"{key} {edge}", _with(raw, table, {name: changed})))
    return moved


def _factors(key: str, base: Distribution, intervals: dict) -> list[tuple[str, float]]:
    """_factors are the edges to try: the calibrated interval's, else +-25%."""
    if key in intervals and base.kind == "lognormal":
        low, high = intervals[key]
        return [(f"at {low:g} (interval's low)", low / base.a),
                (f"at {high:g} (interval's high)", high / base.a)]  # fmt: skip
    return [("-25%", 1 - UNCALIBRATED_SHARE), ("+25%", 1 + UNCALIBRATED_SHARE)]


def scaled(distribution: Distribution, factor: float) -> Distribution:
    """scaled is the distribution with its scale (median, value, mean, bounds) times factor."""
    b = distribution.b * factor if distribution.kind == "uniform" else distribution.b
    return Distribution(distribution.kind, distribution.a * factor, b)


def _with(raw: dict, table: str, values: dict[str, Any]) -> dict:
    return {**raw, table: {**(raw.get(table) or {}), **values}}


def sensitivity(
    scenario: Scenario,
    folder: Path,
    summary: dict,
    job: Job,
    jobs: int,
    simulate_all: Callable[[list[Job], int], list[dict]],
) -> dict:
    """sensitivity simulates each variant (as `job` says: warm or not, latency, time scale;
    `jobs` at once, by simulate_all: edgebench.simulate.command's) and writes
    sensitivity.json: each figure's value, range and the assumption moving it most."""
    from analysis.thresholds import metrics

    world_file = Path(scenario.world_file) if scenario.world_file else default_world_path()
    raw = tomllib.loads(world_file.read_text())
    moved = variants(scenario, raw)
    click.echo(f"  {len(moved)} variants: {'; '.join(name for name, _ in moved)}", err=True)
    places = [folder / "sensitivity" / f"{number:02d}" for number in range(1, len(moved) + 1)]
    runs = []
    for (_, world), place in zip(moved, places, strict=True):
        place.mkdir(parents=True, exist_ok=True)
        (place / "world.toml").write_text(world_toml(world))
        variant = with_world(scenario, place / "world.toml")
        runs.append(replace(job, scenario=variant, folder=place, keep_records=False))
    summaries = simulate_all(runs, jobs)
    values = {name: metrics(s) for (name, _), s in zip(moved, summaries, strict=True)}
    base = metrics(summary)
    facts = {
        "assumptions": [name for name, _ in moved],
        "figures": {
            key: _range(key, base, values) for key, _ in FIGURES if base.get(key) is not None
        },
    }
    (folder / SENSITIVITY_FILE).write_bytes(orjson.dumps(facts, option=orjson.OPT_INDENT_2))
    return facts


def _range(key: str, base: dict, values: dict[str, dict]) -> dict:
    """_range is a figure as simulated, its least and most over the variants, and which
    variant moved it furthest from the value as simulated (None values: never served)."""
    value = base[key]
    seen = {name: v[key] for name, v in values.items() if v.get(key) is not None}
    every = [value, *seen.values()]
    most = max(seen, key=lambda name: abs(seen[name] - value), default=None)
    return {
        "value": value,
        "low": min(every),
        "high": max(every),
        "most": most if most is not None and not math.isclose(seen[most], value) else None,
        "unmeasured": sorted(name for name, v in values.items() if v.get(key) is None),
    }
