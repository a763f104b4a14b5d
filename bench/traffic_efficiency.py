"""Benchmark: what does edgebench's traffic cost, next to a bare Locust user?

In one run, against the same bare JSON endpoint (Starlette + uvicorn, so the
target is never the limit), it compares locustfiles/edgegap.py's DeployUser
(schedule, realistic bodies, records on) with a bare FastHttpUser posting one
fixed body (bench/bare_fasthttp.py):

1. efficiency: CPU time of each Locust process over the same steady-state window,
   both running at once at the same offered rate (so the neighbours' load hits
   both alike): bare CPU / edgebench CPU for the same number of requests;
2. unbounded: the bare user's requests/s with no pacing, and what edgebench sends
   when offered that rate (its open model drops the starts it cannot make).

Usage: make bench-traffic  (or .venv/bin/python bench/traffic_efficiency.py)
Writes bench/out/traffic.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out" / "traffic.json"
TARGET = 0.8

sys.path.insert(0, str(BENCH))
from emulator_throughput import bare_server  # noqa: E402 (a sibling script, not a package)

SCENARIO = """
name = "bench"
seed = 1
[target]
application = "my-game"
version = "1.0.0"
[players]
sizes = [1, 2, 4]
[rate]
mode = "exceed"
stages = [{{ kind = "hold", duration = "{seconds}s", rate = {rate} }}]
[[regions]]
name = "world"
countries = ["US", "BR", "DE", "JP"]
cities = [{{ name = "Paris", country = "FR", latitude = 48.8566, longitude = 2.3522 }}]
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class LocustRun:
    """LocustRun is one headless Locust process; its CPU time can be read while it runs."""

    def __init__(self, args: list[str], env: dict | None = None) -> None:
        command = [sys.executable, "-m", "locust", "--headless", "--only-summary", *args]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
            env=os.environ | (env or {}),
        )

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)

    def finish(self) -> float:
        """finish waits for the end and returns Locust's requests/s for the run."""
        output, _ = self.process.communicate(timeout=120)
        pattern = r"^\s+Aggregated\s+(\d+)\s.*\|\s+([\d.]+)\s+[\d.]+\s*$"
        match = re.search(pattern, output, re.MULTILINE)
        if not match:
            raise SystemExit(f"Locust failed:\n{output[-3000:]}")
        return float(match.group(2))


def bare(url: str, rate: float, seconds: float, users: int) -> LocustRun:
    env = {"BENCH_RATE": str(rate), "BENCH_USERS": str(users)}
    args = ["-f", str(BENCH / "bare_fasthttp.py"), "--host", url, "-u", str(users)]
    return LocustRun([*args, "-r", str(users), "-t", f"{round(seconds)}s"], env)


def edgebench(url: str, rate: float, seconds: float, folder: Path) -> LocustRun:
    scenario = folder / f"bench-{rate}.toml"
    scenario.write_text(SCENARIO.format(seconds=round(seconds), rate=rate))
    results = folder / f"run-{rate}-{time.monotonic()}"
    args = ["-f", "locustfiles/edgegap.py", "--host", url, "--scenario", str(scenario)]
    return LocustRun([*args, "--results-dir", str(results)])


def side_by_side(runs: dict[str, LocustRun], seconds: float) -> dict[str, float]:
    """side_by_side is each run's CPU time over the same steady-state window.

    Both run at once, so the machine's neighbours slow them alike; the window
    leaves out start-up and ramp, which cost the same whatever the users do.
    """
    started = time.monotonic()
    time.sleep(seconds * 0.3)
    before = {name: run.cpu_seconds() for name, run in runs.items()}
    time.sleep(seconds * 0.8 - (time.monotonic() - started))
    spent = {name: run.cpu_seconds() - before[name] for name, run in runs.items()}
    for run in runs.values():
        run.finish()
    return spent


def measure(rate: float, seconds: float, rounds: int, users: int) -> dict:
    """measure compares CPU for the same requests, then the most each can send."""
    ratios = []
    with tempfile.TemporaryDirectory() as folder, bare_server() as server:
        for _ in range(rounds):
            runs = {
                "bare": bare(server.url, rate, seconds, users),
                "edgebench": edgebench(server.url, rate, seconds, Path(folder)),
            }
            spent = side_by_side(runs, seconds)
            ratios.append(spent["bare"] / spent["edgebench"])
            print(
                f"  at {rate:g}/s each: bare {spent['bare']:.2f} CPU-s, "
                f"edgebench {spent['edgebench']:.2f} CPU-s, ratio {ratios[-1]:.3f}",
                flush=True,
            )
        bare_max = bare(server.url, 0, seconds, users).finish()
        ours_max = edgebench(server.url, bare_max, seconds, Path(folder)).finish()
    return {
        "rate": rate,
        "efficiency_ratio": round(statistics.median(ratios), 3),
        "bare_max_rps": round(bare_max),
        "edgebench_rps_offered_bare_max": round(ours_max),
        "max_ratio": round(ours_max / bare_max, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000, help="offered requests/s")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--users", type=int, default=32)
    args = parser.parse_args()
    results = measure(args.rate, args.seconds, args.rounds, args.users)
    met = results["efficiency_ratio"] >= TARGET
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"results": results, "target": TARGET, "met": met}, indent=2))
    for key, value in results.items():
        print(f"  {key:>18}: {value}")
    print(f"  target efficiency_ratio {'met' if met else 'MISSED'} ({TARGET}); wrote {OUT}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
