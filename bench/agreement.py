"""Benchmark: does `edgebench simulate` agree with a live run of the same scenario?

bench/agreement.toml (2 minutes on worlds/small.toml, 3/s then a ramp to 50/s in exceed
mode: 202s, 422s and 429s) is run live (Locust against the embedded emulator) and
simulated, both at --time-scale 5, and their summaries compared. Targets (issue 13):
202/422/429 shares within 2 percentage points, accepted rate within 2%, time to ready
p50 and p95 within 10%. Writes bench/out/agreement.json; exit 1 when a target is missed.

Usage: make bench-agreement  (about 2.5 minutes)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "bench" / "agreement.toml"
OUT = ROOT / "bench" / "out" / "agreement.json"
EDGEBENCH = [sys.executable, "-m", "edgebench.cli"]
TIME_SCALE = "5"


def summary_of(command: str, folder: Path) -> dict:
    args = [*EDGEBENCH, command, str(SCENARIO), "--results-dir", str(folder)]
    done = subprocess.run([*args, "--time-scale", TIME_SCALE], capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"edgebench {command} failed: {done.stderr[-2000:]}")
    return orjson.loads((folder / "summary.json").read_bytes())


def figures(summary: dict) -> dict:
    shares = summary["shares_of_sent"]
    ready = summary["time_to_ready_s"]
    return {
        "share_202": shares.get("accepted", 0.0),
        "share_422": shares.get("allocation_failure", 0.0),
        "share_429": shares.get("rate_limited", 0.0),
        "accepted_rate_per_s": summary["accepted_rate_per_s"],
        "ready_p50_s": ready["p50"],
        "ready_p95_s": ready["p95"],
    }


def verdicts(live: dict, simulated: dict) -> dict:
    """verdicts is each target: met or not, with the difference it was judged on."""
    result = {}
    for share in ("share_202", "share_422", "share_429"):
        gap = abs(live[share] - simulated[share]) * 100
        result[share] = {"gap_points": round(gap, 2), "met": gap <= 2.0}
    relative = (("accepted_rate_per_s", 0.02), ("ready_p50_s", 0.1), ("ready_p95_s", 0.1))
    for key, tolerance in relative:
        gap = abs(simulated[key] - live[key]) / live[key]
        result[key] = {"gap_relative": round(gap, 4), "met": gap <= tolerance}
    return result


def main() -> None:
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        live = figures(summary_of("run", folder / "live"))
        simulated = figures(summary_of("simulate", folder / "simulated"))
    judged = verdicts(live, simulated)
    for key, verdict in judged.items():
        print(f"  {key:<20} live {live[key]:<10} simulated {simulated[key]:<10} {verdict}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"live": live, "simulated": simulated, "targets": judged}, indent=2))
    print(f"wrote {OUT}")
    if not all(v["met"] for v in judged.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
