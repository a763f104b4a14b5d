"""Benchmark: a whole day's schedule built from its forecast, by the renewal equation.

Issue 34's target: `Schedule.from_scenario` of scenarios/launch-forecast-day.toml (24 hours,
three regions, the renewal solved on a 5 s grid into 17,280 pieces) in under a second. The
baseline, timed in the same run, is the same schedule built from Little's law's pieces (the
forecast's points as linear pieces of rate: what the schedule was before the renewal), so
the ratio says what solving the renewal costs on this machine whatever its speed today.
Each round solves afresh (the solution's cache cleared). Writes bench/out/schedule_build.json;
exit 1 when the target is missed.

Usage: make bench-schedule  (a few seconds)
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
import time
from pathlib import Path

from edgebench.plan import forecast as forecast_module
from edgebench.plan.forecast import Forecast
from edgebench.plan.scenario import load_scenario
from edgebench.plan.schedule import Schedule, fit, segments_of

ROOT = Path(__file__).resolve().parent.parent
DAY = ROOT / "scenarios" / "launch-forecast-day.toml"
OUT = ROOT / "bench" / "out" / "schedule_build.json"
ROUNDS = 5
TARGET_S = 1.0


def renewal_build(scenario) -> float:
    forecast_module._solved.cache_clear()
    began = time.perf_counter()
    Schedule.from_scenario(scenario)
    return time.perf_counter() - began


def little_build(scenario) -> float:
    """little_build builds the segments from the forecast's points by Little's law."""
    began = time.perf_counter()
    forecast = Forecast.of(scenario)
    k = forecast.matches_per_player_s
    points = list(zip(forecast.times, forecast.ccu, strict=True))
    pieces = [
        (a, b, k * n, k * m, stage)
        for stage, ((a, n), (b, m)) in enumerate(itertools.pairwise(points))
    ]
    segments_of(fit(pieces, scenario.duration_s))
    return time.perf_counter() - began


def main() -> int:
    scenario = load_scenario(DAY)
    renewal, little = [], []
    for _ in range(ROUNDS):  # alternating, so a noisy minute hits both
        renewal.append(renewal_build(scenario))
        little.append(little_build(scenario))
    built = statistics.median(renewal)
    baseline = statistics.median(little)
    pieces = len(Schedule.from_scenario(scenario).segments)
    figures = {
        "renewal_build_s": round(built, 4),
        "little_build_s": round(baseline, 4),
        "ratio": round(built / baseline, 1),
        "pieces": pieces,
        "target_s": TARGET_S,
        "met": built < TARGET_S,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(figures, indent=2) + "\n")
    print(
        f"a day's schedule: {built:.3f} s by the renewal ({pieces:,} pieces), "
        f"{baseline * 1000:.1f} ms by Little's law's points ({built / baseline:.0f} x); "
        f"target < {TARGET_S:g} s: {'met' if figures['met'] else 'MISSED'}"
    )
    return 0 if figures["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
