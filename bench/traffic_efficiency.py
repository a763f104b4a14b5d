"""Benchmark: what does edgebench's traffic cost, next to a bare Locust user?

In one run, against the same bare JSON endpoint (Starlette + uvicorn, so the
target is never the limit), it compares locustfiles/edgegap.py's DeployUser
(schedule, realistic bodies, records on) with a bare FastHttpUser posting one
fixed body (bench/bare_fasthttp.py):

1. unbounded (the target, max_ratio >= 0.8): the bare user's requests/s with no
   pacing, and what edgebench sends when offered more than that (its open model
   drops the starts it cannot make), both counted at the target over a steady
   window (from the target's own count, so neither start-up, the schedule's
   lead-in nor the ramp weighs on either); runs alternate, each edgebench run
   against the bare runs either side of it, median of the ratios;
2. paced: CPU time of each Locust process over the same steady-state window,
   both running at once at the same offered rate (so the neighbours' load hits
   both alike): bare CPU / edgebench CPU for the same number of requests.

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

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out" / "traffic.json"
TARGET = 0.8

sys.path.insert(0, str(BENCH))
from emulator_throughput import bare_server, cpu_seconds  # noqa: E402 (a sibling script, not a package)

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

    def finish(self) -> None:
        """finish waits for the end; a run that printed no request summary failed."""
        output, _ = self.process.communicate(timeout=120)
        if not re.search(r"^\s+Aggregated\s+\d+\s", output, re.MULTILINE):
            raise SystemExit(f"Locust failed:\n{output[-3000:]}")


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


def steady_rate(url: str, run: LocustRun, skip_s: float, window_s: float) -> tuple[float, float]:
    """steady_rate is the requests/s the target answered over window_s, once skip_s passed
    since the run's first request reached it, and the share of a core the generator used."""

    def answered() -> tuple[int, float, float]:
        count = httpx.get(f"{url}/count").json()["answered"]
        return count, time.monotonic(), run.cpu_seconds()

    first = answered()[0]
    while answered()[0] == first:
        if run.process.poll() is not None:
            raise SystemExit(f"Locust ended before sending:\n{run.process.stdout.read()[-3000:]}")
        time.sleep(0.05)
    time.sleep(skip_s)
    before = answered()
    time.sleep(window_s)
    after = answered()
    run.finish()
    elapsed = after[1] - before[1]
    return (after[0] - before[0]) / elapsed, (after[2] - before[2]) / elapsed


def unbounded(url: str, folder: Path, rounds: int, users: int) -> dict:
    """unbounded is the bare user's most requests/s and edgebench's, offered more than that.

    Each edgebench run is offered 10% above the bare user's last rate (so a machine that
    sped up does not cap it) and compared with the mean of the bare runs just before and
    just after it: on this shared machine the speed drifts from one minute to the next
    by more than the difference measured, and bracketing cancels a steady drift.
    """
    seconds, skip_s, window_s = 12, 2.0, 6.0

    def run_bare() -> float:
        rate, cpu = steady_rate(url, bare(url, 0, seconds, users), skip_s, window_s)
        print(f"  unbounded: bare {rate:.0f}/s ({cpu:.2f} of a core)", flush=True)
        return rate

    bare_rates, ours_rates, ratios = [run_bare()], [], []
    for _ in range(rounds):
        offered = round(bare_rates[-1] * 1.1)
        run = edgebench(url, offered, seconds, folder)
        ours_rate, ours_cpu = steady_rate(url, run, skip_s, window_s)
        print(
            f"  unbounded: edgebench offered {offered}/s: {ours_rate:.0f}/s "
            f"({ours_cpu:.2f} of a core)",
            flush=True,
        )
        bare_rates.append(run_bare())
        ours_rates.append(ours_rate)
        ratios.append(ours_rate / statistics.mean(bare_rates[-2:]))
        print(f"  unbounded: ratio to the bare runs either side {ratios[-1]:.3f}", flush=True)
    return {
        "bare_max_rps": round(statistics.median(bare_rates)),
        "edgebench_max_rps": round(statistics.median(ours_rates)),
        "max_ratio": round(statistics.median(ratios), 3),
    }


def measure(rate: float, seconds: float, rounds: int, users: int) -> dict:
    """measure compares the most each can send, then their CPU for the same paced requests."""
    ratios = []
    with tempfile.TemporaryDirectory() as folder, bare_server() as server:
        most = unbounded(server.url, Path(folder), rounds, users)
        for _ in range(rounds):
            runs = {
                "bare": bare(server.url, rate, seconds, users),
                "edgebench": edgebench(server.url, rate, seconds, Path(folder)),
            }
            spent = side_by_side(runs, seconds)
            ratios.append(spent["bare"] / spent["edgebench"])
            print(
                f"  paced at {rate:g}/s each: bare {spent['bare']:.2f} CPU-s, "
                f"edgebench {spent['edgebench']:.2f} CPU-s, ratio {ratios[-1]:.3f}",
                flush=True,
            )
    return {**most, "paced_rate": rate, "paced_cpu_ratio": round(statistics.median(ratios), 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000, help="offered requests/s")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--users", type=int, default=32)
    args = parser.parse_args()
    results = measure(args.rate, args.seconds, args.rounds, args.users)
    met = results["max_ratio"] >= TARGET
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"results": results, "target": TARGET, "met": met}, indent=2))
    for key, value in results.items():
        print(f"  {key:>18}: {value}")
    print(f"  target max_ratio {'met' if met else 'MISSED'} (>= {TARGET}); wrote {OUT}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
