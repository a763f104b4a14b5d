"""Benchmark: is the emulator ever what limits a run?

Measured in one run, against baselines from the same run (the machine is shared):
1. throughput of valid POST /v2/deployments: the emulator over a bare JSON endpoint
   on the same server stack (Starlette + uvicorn), both driven by wrk at the same time
   and counted in requests per CPU-second of each server (see measure_together), plus
   the emulator's own requests/s when it runs alone;
2. the emulator's p99 service time at 40 requests/s (its own metrics);
3. placement cost with 10,000 active deployments over an empty platform.

Usage: make bench  (or .venv/bin/python bench/emulator_throughput.py --seconds 8)
Needs wrk (Debian: apt-get install wrk). Writes bench/out/emulator.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
WORLD = BENCH / "world-unbounded.toml"
OUT = BENCH / "out" / "emulator.json"
TARGETS = {"ratio": 0.6, "emulator_rps": 2500, "p99_ms_at_40rps": 10.0, "placement_ratio": 1.2}


def cpu_seconds(pid: int) -> float:
    """cpu_seconds is the user + system CPU time process pid has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """Server runs a command that prints its base URL on its first line of stdout."""

    def __init__(self, *command: str) -> None:
        self.command = command

    def __enter__(self) -> Server:
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.url = self.process.stdout.readline().strip()
        return self

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)

    def __exit__(self, *exc_info: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process.stdout.close()


def bare_server() -> Server:
    return Server(sys.executable, str(Path(__file__)), "--serve-bare")


def emulator_server(*options: str) -> Server:
    return Server(sys.executable, "-m", "edgebench.cli", "emulator", "--port", "0", *options)


def start_wrk(url: str, seconds: float, connections: int) -> subprocess.Popen:
    script = str(BENCH / "post_deploys.lua")
    command = ["wrk", "-t1", f"-c{connections}", f"-d{round(seconds)}s", "-s", script]
    return subprocess.Popen([*command, f"{url}/v2/deployments"], stdout=subprocess.PIPE, text=True)


def wrk_result(process: subprocess.Popen) -> tuple[int, float]:
    """wrk_result is (requests, requests/s), all 2xx; any other answer fails the benchmark."""
    output, _ = process.communicate()
    if process.returncode != 0 or "Non-2xx" in output or "Socket errors" in output:
        raise SystemExit(f"wrk failed or saw failed requests:\n{output}")
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    return requests, float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))


def measure_together(servers: dict[str, Server], seconds: float, connections: int) -> dict:
    """measure_together loads every server at once: requests per CPU-second of each.

    Run side by side, the machine's neighbours slow both alike, and CPU time per
    request does not depend on how the cores were shared out.
    """
    for server in servers.values():  # warm-up, one at a time
        wrk_result(start_wrk(server.url, 2, connections))
    cpu_before = {name: server.cpu_seconds() for name, server in servers.items()}
    loads = {name: start_wrk(s.url, seconds, connections) for name, s in servers.items()}
    results = {name: wrk_result(load) for name, load in loads.items()}
    return {
        name: requests / (servers[name].cpu_seconds() - cpu_before[name])
        for name, (requests, _) in results.items()
    }


def throughput(seconds: float, rounds: int, connections: int) -> dict:
    """throughput compares emulator and bare, loaded side by side, and a solo emulator run."""
    ratios, per_cpu = [], {"bare": [], "emulator": []}
    emulator_options = ("--limit", "0", "--world", str(WORLD))
    for _ in range(rounds):
        with bare_server() as bare, emulator_server(*emulator_options) as emulator:
            rates = measure_together({"bare": bare, "emulator": emulator}, seconds, connections)
        for name, rate in rates.items():
            per_cpu[name].append(rate)
        ratios.append(rates["emulator"] / rates["bare"])
        print(
            f"  round: bare {rates['bare']:,.0f}/CPU-s, emulator {rates['emulator']:,.0f}/CPU-s,"
            f" ratio {ratios[-1]:.3f}",
            flush=True,
        )
    with emulator_server(*emulator_options) as emulator:
        wrk_result(start_wrk(emulator.url, 2, connections))
        _, solo_rps = wrk_result(start_wrk(emulator.url, seconds, connections))
    return {
        "bare_rps_per_cpu_s": round(statistics.median(per_cpu["bare"])),
        "emulator_rps_per_cpu_s": round(statistics.median(per_cpu["emulator"])),
        "ratio": round(statistics.median(ratios), 3),
        "emulator_rps": round(solo_rps),
    }


def service_time_at(rate: float, seconds: float) -> dict:
    """service_time_at paces valid deploys at `rate` per second and reads the emulator's p99."""
    bodies = [json.loads(line) for line in _lua_bodies()]
    # The limit is off: a paced client that catches up after a stall would be refused.
    options = ("--world", str(WORLD), "--limit", "0")
    with emulator_server(*options) as server, httpx.Client(base_url=server.url) as client:
        headers = {"Authorization": "token bench"}
        started = time.perf_counter()
        for i in range(int(rate * seconds)):
            time.sleep(max(0.0, started + i / rate - time.perf_counter()))
            response = client.post("/v2/deployments", json=bodies[i % len(bodies)], headers=headers)
            response.raise_for_status()
        service = client.get("/_emulator/metrics").json()["service_time_ms"]
    return {"p50_ms": service["p50"], "p99_ms": service["p99"], "max_ms": service["max"]}


def _lua_bodies() -> list[str]:
    return re.findall(r"'(\{.*?\})'", (BENCH / "post_deploys.lua").read_text())


def placement_cost(active: int, batch: int, rounds: int) -> dict:
    """placement_cost times Platform.deploy on an empty platform and on one with `active`."""
    from emulator import DeployRequest, Distribution, load_world
    from geo import Position

    world = load_world(WORLD)
    never_ending = Distribution.fixed(1e12)
    world = world.__class__(**{**_fields(world), "lifecycle": _lifecycle(world, never_ending)})
    rng = random.Random(1)
    requests = [
        DeployRequest("my-game", "1.0.0", Position(rng.uniform(-60, 70), rng.uniform(-180, 180)))
        for _ in range(batch)
    ]
    empty, loaded = [], []
    for _ in range(rounds):
        for prefill, samples in ((0, empty), (active, loaded)):
            samples.append(_deploy_cost(world, requests, prefill))
    # Each round's two runs are back to back: their ratio cancels the machine's drift.
    ratios = [with_active / alone for alone, with_active in zip(empty, loaded, strict=True)]
    return {
        "empty_us": round(statistics.median(empty) * 1e6, 2),
        f"active_{active}_us": round(statistics.median(loaded) * 1e6, 2),
        "placement_ratio": round(statistics.median(ratios), 3),
    }


def _deploy_cost(world, requests: list, prefill: int) -> float:
    """_deploy_cost is seconds per deploy (with its lifecycle) on a platform in steady state."""
    from emulator import Platform

    platform = Platform(world)
    for request in requests:  # the same grid cells are ranked (cached) in both cases
        platform.deploy(request, now=0)
    platform.reset()
    for i in range(prefill):
        platform.deploy(requests[i % len(requests)], now=0)
    settled = 1_000.0  # every prefilled deployment is READY, none due to end
    platform.advance(settled)
    # CPU time of this process: the machine is shared, wall time would count the neighbours.
    started = time.process_time()
    for i, request in enumerate(requests):
        now = settled + i * 1e-2
        platform.deploy(request, now=now)
        platform.advance(now)
    return (time.process_time() - started) / len(requests)


def _fields(world) -> dict:
    return {name: getattr(world, name) for name in world.__dataclass_fields__}


def _lifecycle(world, lifetime):
    from dataclasses import replace

    return replace(world.lifecycle, lifetime_s=lifetime)


def serve_bare() -> None:
    sys.path.insert(0, str(BENCH))
    from bare_app import app

    from emulator import serve

    serve(app, "127.0.0.1", 0, on_ready=lambda url: print(url, flush=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="side-by-side rounds (median kept)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare()
        return 0
    if shutil.which("wrk") is None:
        print("Error: wrk not found; install it (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    print("throughput (wrk, valid POST /v2/deployments, rate limit off):", flush=True)
    results = throughput(args.seconds, args.rounds, args.connections)
    print("service time at 40 requests/s:", flush=True)
    results |= service_time_at(40, 10)
    print("placement cost:", flush=True)
    results |= placement_cost(active=10_000, batch=10_000, rounds=7)
    return report(results)


def report(results: dict) -> int:
    checks = {
        "ratio": results["ratio"] >= TARGETS["ratio"],
        "emulator_rps": results["emulator_rps"] >= TARGETS["emulator_rps"],
        "p99_ms_at_40rps": results["p99_ms"] <= TARGETS["p99_ms_at_40rps"],
        "placement_ratio": results["placement_ratio"] <= TARGETS["placement_ratio"],
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"results": results, "targets": TARGETS, "met": checks}, indent=2))
    for key, value in results.items():
        print(f"  {key:>22}: {value}")
    for key, met in checks.items():
        print(f"  target {key} {'met' if met else 'MISSED'} ({TARGETS[key]})")
    print(f"wrote {OUT}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
