"""Benchmark: how late does edgebench send, and does the client's queue hold the limit?

1. Send lag (send minus due, for first attempts the limiter did not hold): p50 and p99 at
   40/s and 1,000/s, for uniform and Poisson arrivals (and 1,000/s Poisson shared out over
   two processes, --processes 2), each a 20 s run against the emulator with its rate
   limit off (exceed mode: no limiter). Target p99 <= 2 ms. Beside
   it, the same percentiles of two bare timers woken at the same times in a process of
   their own: gevent's sleep, and the wait the users make (gevent's, then
   edgebench.traffic.alarm's last stretch): the machine's own lateness; the ratio to the
   second says what is edgebench's.
2. Respect mode at exactly the limit (40/s, even arrivals, the SDK's client with its
   queue) for 5 minutes (--soak-seconds): zero dropped matches, zero 429s, p99 queue wait
   <= 1 s. Even arrivals: Poisson arrivals at exactly the limit make a queue at full load
   (utilisation 1), whose wait grows without bound with the run's length.

Usage: make bench-lag  (or .venv/bin/python bench/send_lag.py [--soak-seconds 300]
       [--case lag-1000-poisson] [--repeat 5]: the lag target holds only if every run meets it)
Writes bench/out/send_lag.json.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import orjson
from _verdict import conclude  # bench/, on the path as the script's folder

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "send_lag.json"
EDGEBENCH = [sys.executable, "-m", "edgebench.cli"]
TARGET_P99_MS = 2.0
TARGET_QUEUE_P99_MS = 1000.0
TIMER = """
import sys, time, gevent
from edgebench.traffic.alarm import sleep_until
rate, seconds, alarm = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3] == "alarm"
start, lags = time.time() + 0.5, []
for k in range(int(rate * seconds)):
    due = start + (k + 0.5) / rate
    if alarm:
        sleep_until(due)  # gevent's sleep until 2 ms before, then a timerfd: the users' wait
    else:
        gevent.sleep(max(0.0, due - time.time()))
    lags.append((time.time() - due) * 1000)
lags.sort()
print(lags[len(lags) // 2], lags[int(len(lags) * 0.99)])
"""


def scenario(folder: Path, name: str, mode: str, rate: float, seconds: float, extra="") -> Path:
    path = folder / f"{name}.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            name = "{name}"
            seed = 1
            [target]
            application = "my-game"
            version = "1.0.0"
            [rate]
            mode = "{mode}"
            {extra}
            stages = [{{ kind = "hold", duration = "{seconds}s", rate = {rate} }}]
            [[regions]]
            name = "world"
            countries = ["US", "BR", "DE", "JP"]
            """
        )
    )
    return path


class Emulator:
    """Emulator is `edgebench emulator` on a free port, its limits off, its time fast."""

    def __enter__(self) -> str:
        command = [*EDGEBENCH, "emulator", "--port", "0", "--limit", "0"]
        self.process = subprocess.Popen(
            [*command, "--time-scale", "60"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        return self.process.stdout.readline().decode().strip()

    def __exit__(self, *_exc) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def run(path: Path, results: Path, *args: str) -> list[dict]:
    done = subprocess.run(
        [*EDGEBENCH, "run", str(path), "--results-dir", str(results), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode not in (0, 1):
        raise SystemExit(f"{path.name}: edgebench run failed: {done.stderr[-2000:]}")
    return [
        orjson.loads(line) for log in results.glob("requests-*.jsonl") for line in log.open("rb")
    ]


def lag_ms(records: list[dict]) -> tuple[float, float]:
    lags = np.array(
        [
            (r["t_send"] - r["t_sched"]) * 1000
            for r in records
            if r["t_send"] and r["attempt"] == 1 and not r.get("queue_ms")
        ]
    )
    return float(np.percentile(lags, 50)), float(np.percentile(lags, 99))


def timer_ms(rate: float, seconds: float, kind: str) -> tuple[float, float]:
    done = subprocess.run(
        [sys.executable, "-c", TIMER, str(rate), str(seconds), kind],
        capture_output=True,
        text=True,
        check=True,
    )
    p50, p99 = (float(x) for x in done.stdout.split())
    return p50, p99


# (rate, arrivals, processes): the last one a run shared out over two Locust workers
CASES = [(40, "uniform", 1), (40, "poisson", 1), (1000, "uniform", 1), (1000, "poisson", 1),
         (1000, "poisson", 2)]  # fmt: skip


def case_name(rate: int, arrivals: str, processes: int) -> str:
    return f"lag-{rate}-{arrivals}" + (f"-{processes}-processes" if processes > 1 else "")


def measure_lag(folder: Path, url: str, seconds: float, cases: list[str], repeat: int) -> dict:
    """measure_lag is each case's runs: its send lag and the bare timers' beside it."""
    figures = {}
    for rate, arrivals, processes in CASES:
        name = case_name(rate, arrivals, processes)
        if cases and name not in cases:
            continue
        path = scenario(folder, name, "exceed", rate, seconds, f'arrivals = "{arrivals}"')
        shared = ["--processes", str(processes)] if processes > 1 else []
        figures[name] = []
        for attempt in range(repeat):
            results = folder / f"{name}-{attempt}"
            p50, p99 = lag_ms(run(path, results, "--host", url, *shared))
            figure = {"p50_ms": round(p50, 3), "p99_ms": round(p99, 3)}
            line = f"  {name}: send lag p50 {p50:.3f} ms, p99 {p99:.3f} ms; bare timers"
            for kind in ("gevent", "alarm"):
                base50, base99 = timer_ms(rate, seconds, kind)
                figure |= {f"bare_{kind}_p50_ms": round(base50, 3),
                           f"bare_{kind}_p99_ms": round(base99, 3)}  # fmt: skip
                line += f", {kind} {base50:.3f} / {base99:.3f} ms"
            figures[name].append(figure)
            print(line, flush=True)
    return figures


def measure_soak(folder: Path, seconds: float) -> dict:
    path = scenario(folder, "soak", "respect", 40, seconds, 'arrivals = "uniform"')
    path.write_text(path.read_text() + '\n[client]\npreset = "edgegap-sdk"\n')
    records = run(path, folder / "soak", "--time-scale", "60")
    queue = np.array([r["queue_ms"] for r in records if r["queue_ms"] is not None])
    outcomes = [r["outcome"] for r in records]
    figures = {
        "seconds": seconds,
        "matches": len({r["match"] for r in records}),
        "dropped": outcomes.count("dropped"),
        "abandoned": outcomes.count("abandoned"),
        "rate_limited": outcomes.count("rate_limited"),
        "queue_p99_ms": round(float(np.percentile(queue, 99)), 3),
    }
    print(f"  soak at 40/s for {seconds:g} s: {figures}", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="each send-lag run")
    parser.add_argument(
        "--soak-seconds", type=float, default=300.0, help="the soak at 40/s (0: none)"
    )
    parser.add_argument("--case", action="append", help="only this send-lag run (repeatable)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="each send-lag run this many times (each must meet)"
    )
    args = parser.parse_args()
    known = [case_name(*case) for case in CASES]
    if unknown := set(args.case or []) - set(known):
        parser.error(f"--case {', '.join(sorted(unknown))}: not one of {', '.join(known)}")
    with tempfile.TemporaryDirectory() as temporary, Emulator() as url:
        folder = Path(temporary)
        lag = measure_lag(folder, url, args.seconds, args.case or [], args.repeat)
        soak = measure_soak(folder, args.soak_seconds) if args.soak_seconds else None
    runs = [figure for figures in lag.values() for figure in figures]
    met = {"lag_p99": all(figure["p99_ms"] <= TARGET_P99_MS for figure in runs)}
    if soak:
        met["soak"] = (
            soak["dropped"] == 0
            and soak["rate_limited"] == 0
            and soak["queue_p99_ms"] <= TARGET_QUEUE_P99_MS
        )
    conclude(OUT, {"lag": lag, "soak": soak}, met)


if __name__ == "__main__":
    main()
