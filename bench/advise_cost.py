"""Benchmark: does `advise --minimize cost` find the cheapest fleet a brute-force grid finds?

scenarios/fleet-cost.toml: two regions with a fleet each, example prices, overflow checks.
advise varies both fleets' host counts and walks each to its cheapest; the grid simulates
every pair of counts around it (the same simulation, seed and world rewriting as advise's
probes). Target (issue 25): advise's answer costs within 2% of the grid's cheapest passing
point, in far fewer simulations. Writes bench/out/advise_cost.json; exit 1 when missed.

Usage: make bench-advise  (about 2 minutes)
"""

from __future__ import annotations

import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import orjson

from edgebench.advise.command import AdvisePlan, advise

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "fleet-cost.toml"
OUT = ROOT / "bench" / "out" / "advise_cost.json"
CHECKS = ("share_overflow:americas < 0.25", "share_overflow:europe < 0.25")
KNOBS = ("hosts:fleet-na", "hosts:fleet-eu")
GRID = {"hosts:fleet-na": range(16, 31), "hosts:fleet-eu": range(10, 23)}
TARGET = 0.02


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "advice"
        began = time.monotonic()
        plan = AdvisePlan(SCENARIO, CHECKS, KNOBS, minimize="cost", results_dir=folder)
        code = advise(plan)
        advise_s = time.monotonic() - began
        facts = orjson.loads((folder / "advice.json").read_bytes())
        grid, grid_s = brute_force(Path(scratch) / "grid")
    best = min((p for p in grid if p["passed"]), key=lambda p: p["cost_per_day"])
    found = facts["final"]["cost_per_day"]
    gap = found / best["cost_per_day"] - 1
    result = {
        "advise": {"answers": facts["answers"], "cost_per_day": found, "probes": len(
            facts["probes"]), "seconds": round(advise_s, 1), "exit_code": code},
        "grid": {"cheapest": best["point"], "cost_per_day": best["cost_per_day"],
                 "probes": len(grid), "seconds": round(grid_s, 1)},
        "gap": round(gap, 5),
        "target": TARGET,
        "met": code == 0 and gap <= TARGET,
    }  # fmt: skip
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if result["met"] else 1


def brute_force(folder: Path) -> tuple[list[dict], float]:
    """brute_force simulates every point of GRID with advise's own prober."""
    import tomllib

    from checks import parse
    from edgebench.advise.command import Advice
    from edgebench.plan.overrides import Overrides, planned

    scenario = planned(SCENARIO, Overrides())
    raw = tomllib.loads(Path(scenario.world_file or "").read_text())
    prober = Advice(scenario, raw, parse(list(CHECKS)), folder, max_probes=10_000, warm=True)
    began = time.monotonic()
    for values in itertools.product(*GRID.values()):
        prober.at(dict(zip(GRID, map(float, values), strict=True)))
    return prober.probes, time.monotonic() - began


if __name__ == "__main__":
    sys.exit(main())
