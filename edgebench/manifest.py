"""manifest.json: what a run was (scenario, target, versions, times), never any secret."""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from edgebench import __version__

MANIFEST = "manifest.json"


def utc(unix: float) -> str:
    """utc is a unix time as ISO 8601 in UTC, to the millisecond.

    >>> utc(1_800_000_000.25)
    '2027-01-15T08:00:00.250Z'
    """
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def git_commit(directory: Path) -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607 (git from PATH, as a user runs it)
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None


def read_manifest(results_dir: Path) -> dict:
    """read_manifest is results_dir/manifest.json ({} when there is none or it is unreadable)."""
    try:
        manifest = orjson.loads((results_dir / MANIFEST).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def write_manifest(results_dir: Path, **fields: object) -> dict:
    """write_manifest merges fields into results_dir/manifest.json and returns it all."""
    path = results_dir / MANIFEST
    manifest = read_manifest(results_dir) | fields
    results_dir.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    temporary.replace(path)
    return manifest


def run_facts(scenario, schedule, host: str, token_set: bool, workers: int) -> dict:
    """run_facts is what the manifest records when a run starts."""
    import locust

    facts = scenario_facts(scenario, schedule)
    facts["versions"]["locust"] = locust.__version__
    return facts | {
        "target": {"host": host, "token_set": token_set},
        "workers": workers,
    }


def _clock_start(scenario) -> dict:
    """_clock_start is the clock time of the run's time 0, for a forecast of ISO times (the
    report's axes read in clock time): {"clock_start_utc": ISO} or {}."""
    if not (scenario.demand and scenario.demand.origin):
        return {}
    from edgebench.plan.forecast import Forecast

    forecast = Forecast.of(scenario)
    assert forecast.origin is not None
    start = forecast.origin + timedelta(seconds=forecast.span[0])
    return {"clock_start_utc": start.astimezone(UTC).isoformat()}


FORECAST_POINTS = 1_500  # the most points of the forecast's matches the manifest keeps


def _forecast_facts(scenario) -> dict:
    """_forecast_facts is {"forecast": ...} for a forecast: its matches in progress over the
    run (s x CCU / p, per region; run time; times the rate factor) and the mean match length,
    what the report holds the platform's servers against; {} for a scenario of stages."""
    if not scenario.demand:
        return {}
    import numpy as np

    from edgebench.plan.forecast import Forecast

    forecast = Forecast.of(scenario)
    solution = forecast.renewal
    start, end = forecast.span
    grid = solution.start + solution.dt * np.arange(len(solution.wanted))
    inside = np.flatnonzero((grid >= start) & (grid <= end))
    kept = inside[:: max(1, -(-len(inside) // FORECAST_POINTS))]
    wanted = solution.wanted[kept] * scenario.rate.factor
    matches = {"all": wanted.sum(axis=1)} | (
        {name: wanted[:, k] for k, name in enumerate(solution.names)} if forecast.regions else {}
    )
    return {
        "forecast": {
            "t_s": (grid[kept] - start).round(3).tolist(),
            "matches": {name: values.round(2).tolist() for name, values in matches.items()},
            "match_length_mean_s": round(forecast.length.mean, 3) if forecast.length else None,
        }
    }


def scenario_facts(scenario, schedule) -> dict:
    """scenario_facts is what a live run's and a simulation's manifests both record."""
    return {
        "scenario": {
            "name": scenario.name,
            "path": scenario.source,
            "sha256": scenario.digest,
            "inputs_sha256": scenario.inputs_digest,
            "seed": scenario.seed,
            "mode": scenario.rate.mode,
            "limit": scenario.rate.limit,
            "duration_s": scenario.duration_s,
            "expected_requests": schedule.count(),
            "thresholds": scenario.thresholds,
            "watches": [watch.text for watch in scenario.watches],
            **_clock_start(scenario),
        },
        "demand": schedule.demand_facts(),
        **_forecast_facts(scenario),
        "versions": {"edgebench": __version__, "python": platform.python_version()},
        "git_commit": git_commit(Path(__file__).resolve().parent),
        "command_line": sys.argv,
        "started_at": (now := time.time()),
        "started_at_utc": utc(now),
    }
