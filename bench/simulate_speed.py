"""Benchmark: how fast does `edgebench simulate` run a launch day?

bench/simulate-day.toml is scenarios/launch-forecast.toml's whole 24-hour forecast with
its peak scaled to 40 matches/s (about 1.7 million matches, respect mode, the SDK's
client, Poisson arrivals). It is simulated and written (requests-*.arrow, the default
records, emulator-metrics.jsonl, manifest.json; no analysis) in one process. Target
(issue 27): the day in <= 20 s on this machine, i.e. >= 4,320 simulated seconds per wall
second (issue 13's: 60 s, 1,440).

Beside it, in the same run, a baseline of the same length: the schedule's arrivals alone,
each written as a short JSON line (the least any simulation of the day must do). The
machine is shared and noisy; the ratio says what is the simulator's own.

Usage: make bench-simulate  (or .venv/bin/python bench/simulate_speed.py [--duration 6h])
Writes bench/out/simulate_speed.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import orjson

from edgebench.plan.scenario import load_scenario, with_duration
from edgebench.plan.schedule import Schedule
from edgebench.records import read_columnar
from edgebench.simulate.command import SimulatePlan, simulate_into

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "bench" / "simulate-day.toml"
OUT = ROOT / "bench" / "out" / "simulate_speed.json"
TARGET_SIMULATED_PER_WALL = 4320.0


def baseline_s(scenario, folder: Path) -> tuple[float, int]:
    """baseline_s times the arrivals alone, each written as a line: (seconds, arrivals)."""
    started = time.perf_counter()
    count = 0
    with (folder / "baseline.jsonl").open("wb") as out:
        lines = []
        for arrival in Schedule.from_scenario(scenario).arrivals():
            lines.append(orjson.dumps({"index": arrival.index, "t": arrival.due_s}) + b"\n")
            count += 1
            if len(lines) >= 50_000:
                out.write(b"".join(lines))
                lines.clear()
        out.write(b"".join(lines))
    return time.perf_counter() - started, count


def simulate_s(scenario, folder: Path) -> float:
    started = time.perf_counter()
    simulate_into(scenario, SimulatePlan(SCENARIO, results_dir=folder / "day"), echo=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", help="simulate only this much of the day (e.g. 6h)")
    args = parser.parse_args()
    scenario = load_scenario(SCENARIO)
    if args.duration:
        scenario = with_duration(scenario, args.duration)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        base_s, arrivals = baseline_s(scenario, folder)
        print(f"  baseline (arrivals written alone): {arrivals:,} in {base_s:.1f} s", flush=True)
        wall_s = simulate_s(scenario, folder)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        table, _ = read_columnar(next((folder / "day").glob("requests-*.arrow")))
        records = table.num_rows
    per_wall = scenario.duration_s / wall_s
    figures = {
        "simulated_s": scenario.duration_s,
        "matches": arrivals,
        "records": records,
        "wall_s": round(wall_s, 2),
        "simulated_s_per_wall_s": round(per_wall),
        "us_per_record": round(wall_s / records * 1e6, 1),
        "baseline_s": round(base_s, 2),
        "ratio_to_baseline": round(wall_s / base_s, 2),
        "peak_rss_mb": round(peak_mb),
        "met": per_wall >= TARGET_SIMULATED_PER_WALL,
    }
    verdict = "met" if figures["met"] else "MISSED"
    print(f"  simulated {scenario.duration_s:,.0f} s ({records:,} records) in {wall_s:.1f} s: "
          f"{per_wall:,.0f} simulated s per wall s ({wall_s / base_s:.1f} x the baseline); "
          f"target >= {TARGET_SIMULATED_PER_WALL:,.0f}: {verdict}")  # fmt: skip
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(figures, indent=2))
    print(f"wrote {OUT}")
    if not figures["met"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
