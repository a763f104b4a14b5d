"""Benchmark: does a run of a forecast's peak hour start where the day would be then?

bench/warm-window.toml is bench/warm-day.toml's 18:30 to 19:30 (the launch forecast with
half its deploys on the default world's private fleets). The day is simulated up to 19:30,
and the hour alone twice: started warm (the default for a window) and empty. Target
(issue 24): the warm hour's 422 share and fleet overflow share within 1 percentage point
of the day's same hour; the empty hour is shown beside them, as what the warm start fixes.
Writes bench/out/warm_start.json; exit 1 when a target is missed.

Usage: make bench-warm  (about 1.5 minutes)
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import orjson

from analysis.load import load_run
from edgebench.plan.scenario import load_scenario, with_duration
from edgebench.records import read_records
from edgebench.simulate.command import SimulatePlan, simulate_into

ROOT = Path(__file__).resolve().parent.parent
DAY, WINDOW = ROOT / "bench" / "warm-day.toml", ROOT / "bench" / "warm-window.toml"
OUT = ROOT / "bench" / "out" / "warm_start.json"
HOUR = (18.5 * 3600, 19.5 * 3600)
TARGET_POINTS = 1.0


def simulated(path: Path, folder: Path, duration: str | None = None, warm=None) -> Path:
    scenario = load_scenario(path)
    if duration:
        scenario = with_duration(scenario, duration)
    plan = SimulatePlan(path, results_dir=folder, warm_start=warm, overwrite=True)
    return simulate_into(scenario, plan, echo=False)


def hour_of(folder: Path, start_s: float, end_s: float) -> dict:
    """hour_of is the 422 and overflow shares of the run's requests due in [start_s, end_s)."""
    run = load_run(folder, lean=True)
    epoch = float(orjson.loads((folder / "manifest.json").read_bytes())["epoch"])
    requests = run.requests
    due = requests["t_sched"].to_numpy(dtype=float) - epoch
    inside = requests[(due >= start_s) & (due < end_s) & requests["t_send"].notna().to_numpy()]
    share_422 = float((inside["outcome"] == "allocation_failure").mean())
    readings = read_records(folder / "emulator-metrics.jsonl")[0]
    first = _reading_at(readings, epoch + start_s)
    last = _reading_at(readings, epoch + end_s)
    cloud = last["fleet_cloud"] - first["fleet_cloud"]
    private = last["fleet_private"] - first["fleet_private"]
    return {
        "share_422": round(share_422, 4),
        "share_overflow": round(cloud / (cloud + private), 4) if cloud + private else None,
        "sent": len(inside),
    }


def _reading_at(readings: list[dict], t: float) -> dict:
    """_reading_at is the last reading taken at or before unix time t."""
    before = [r for r in readings if r["t"] <= t]
    return before[-1] if before else readings[0]


def main() -> None:
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        print("simulating the day up to 19:30 ...", flush=True)
        day = hour_of(simulated(DAY, folder / "day", "19h30m"), *HOUR)
        print("simulating the hour alone, warm and empty ...", flush=True)
        warm = hour_of(simulated(WINDOW, folder / "warm"), 0.0, 3600.0)
        empty = hour_of(simulated(WINDOW, folder / "empty", warm=False), 0.0, 3600.0)
    gaps = {
        key: round(abs(warm[key] - day[key]) * 100, 2)
        for key in ("share_422", "share_overflow")
        if warm[key] is not None and day[key] is not None
    }
    figures = {
        "day_same_hour": day,
        "window_warm": warm,
        "window_empty": empty,
        "gap_points": gaps,
        "met": len(gaps) == 2 and all(g <= TARGET_POINTS for g in gaps.values()),
    }
    for name, values in (("day's hour", day), ("warm hour", warm), ("empty hour", empty)):
        print(f"  {name:<11} 422 {values['share_422']:.2%}  overflow "
              f"{values['share_overflow'] or 0:.2%}  ({values['sent']:,} sent)")  # fmt: skip
    verdict = "met" if figures["met"] else "MISSED"
    print(f"  warm against the day: {gaps} points; target <= {TARGET_POINTS}: {verdict}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(figures, indent=2))
    print(f"wrote {OUT}")
    if not figures["met"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
