"""Benchmark: the whole analysis of 1,000,000 records against a naive pandas load alone.

In one run, on the same generated run folder (two workers' logs, the shape of
results/README.md, about 290 MB), each in its own process so peak memory is its own:

1. naive: `pandas.read_json(lines=True)` of every log, and nothing else;
2. edgebench: `edgebench analyze` (load, summary, every curve as PNG and SVG,
   report.html, thresholds, JUnit).

Rounds alternate the two (this machine's speed wanders) and the medians are
compared. Targets (issue 4): the whole analysis <= 5 s and <= 1 GB peak, where the
naive load alone took 13.4 s and 3.1 GB: a time ratio of at most 5 / 13.4.

At 10M (issue 27: <= 8 s), `--records 10000000 --form arrow` writes the records as the
simulator does (Arrow IPC streams) and times the analysis alone (a naive load of 3 GB of
JSON would need more memory than the point of it); `--form jsonl` at 10M is the same
without the naive load's rounds being skipped: slow.

Usage: make bench-analysis  (or .venv/bin/python bench/analysis_speed.py
       [--records 10000000 --form arrow --rounds 1])
Writes bench/out/analysis.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

from edgebench.records import REQUEST_FIELDS, ColumnarWriter, RecordWriter

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out" / "analysis.json"
TIME_RATIO_TARGET = round(5 / 13.4, 3)
MEMORY_TARGET_MB = 1024
NAIVE = """
import sys, pandas as pd
frames = [pd.read_json(path, lines=True) for path in sys.argv[1:]]
print(len(pd.concat(frames)))
"""
OUTCOMES = [
    ("accepted", 202, 0.86),
    ("allocation_failure", 422, 0.06),
    ("rate_limited", 429, 0.05),
    ("server_error", 503, 0.01),
    ("dropped", None, 0.02),
]
REGIONS = ["north-america", "europe", "asia", "south-america"]
ENDPOINTS = ["POST /v2/deployments", "POST /v2/private-fleets/deployments"]


def make_run(
    folder: Path, records: int, workers: int = 2, rate: float = 1000.0, form: str = "jsonl"
) -> None:
    """make_run writes a run folder of `records` starts at `rate`/s, as the traffic writes it
    (form "jsonl"), or as the simulator writes it (form "arrow": Arrow IPC streams)."""
    rng = np.random.default_rng(7)
    epoch = 1_800_000_000.0
    picks = rng.choice(len(OUTCOMES), size=records, p=[o[2] for o in OUTCOMES])
    latency = rng.lognormal(3.0, 0.6, size=records)
    regions = rng.integers(0, len(REGIONS), size=records)
    endpoints = (rng.random(records) < 0.2).astype(int)
    players = rng.integers(1, 5, size=records)
    files = [_writer(folder / f"requests-w{w}.{form}") for w in range(workers)]
    for index in range(records):
        outcome, status, _ = OUTCOMES[picks[index]]
        due = epoch + (index + 0.5) / rate
        sent = status is not None
        line = {
            "index": index,
            "t_sched": round(due, 6),
            "endpoint": ENDPOINTS[endpoints[index]],
            "region": REGIONS[regions[index]] if sent else None,
            "players": int(players[index]) if sent else None,
            "worker": f"w{index % workers}",
            "stage": 0,
            "offered_rate": rate,
            "t_send": round(due + 0.0004, 6) if sent else None,
            "status": status,
            "outcome": outcome,
            "latency_ms": round(float(latency[index]), 3) if sent else None,
            "latency_sched_ms": round(float(latency[index]) + 0.4, 3) if sent else None,
            "request_id": f"{index:012x}a1b2c3d4" if status in (202, 422) else None,
        }
        files[index % workers].add(line)
        if index % 50_000 == 0:  # a live run's writer flushes every second: in batches
            for file in files:
                file.flush()
    for file in files:
        file.close()
    manifest = {"scenario": {"name": "bench", "mode": "exceed", "limit": 40, "thresholds": []}}
    (folder / "manifest.json").write_bytes(orjson.dumps(manifest))


def _writer(path: Path) -> RecordWriter | ColumnarWriter:
    return ColumnarWriter(path, REQUEST_FIELDS) if path.suffix == ".arrow" else RecordWriter(path)


def timed(command: list[str]) -> tuple[float, float]:
    """timed runs a command to the end: (wall seconds, peak resident MB of that process)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{command[:4]} failed: {process.stderr.read().decode()[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024


def measure(records: int, rounds: int, form: str = "jsonl") -> dict:
    """measure times the naive load (JSON lines only) and edgebench's analysis, alternating."""
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary) / "run"
        folder.mkdir()
        print(f"  writing {records:,} records ({form}) ...", flush=True)
        make_run(folder, records, form=form)
        logs = [str(p) for p in sorted(folder.glob(f"requests-*.{form}"))]
        size_mb = sum(Path(log).stat().st_size for log in logs) / 2**20
        naive, ours = [], []
        for _ in range(rounds):
            if form == "jsonl":
                naive.append(timed([sys.executable, "-c", NAIVE, *logs]))
            ours.append(timed([sys.executable, "-m", "edgebench.cli", "analyze", str(folder)]))
            told = f"naive load {naive[-1][0]:.2f} s, {naive[-1][1]:.0f} MB; " if naive else ""
            print(
                f"  {told}edgebench analyze {ours[-1][0]:.2f} s, {ours[-1][1]:.0f} MB", flush=True
            )
    ours_s = statistics.median(t for t, _ in ours)
    figures = {
        "records": records,
        "form": form,
        "log_mb": round(size_mb),
        "analysis_s": round(ours_s, 2),
        "analysis_peak_mb": round(max(m for _, m in ours)),
    }
    if naive:
        naive_s = statistics.median(t for t, _ in naive)
        figures |= {
            "naive_load_s": round(naive_s, 2),
            "naive_peak_mb": round(max(m for _, m in naive)),
            "time_ratio": round(ours_s / naive_s, 3),
        }
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--form",
        choices=["jsonl", "arrow"],
        default="jsonl",
        help="the records as a live run writes them (jsonl, against the naive load) or as "
        "the simulator does (arrow: the analysis alone, against --seconds)",
    )
    parser.add_argument(
        "--seconds", type=float, default=8.0, help="the analysis' target time for --form arrow"
    )
    args = parser.parse_args()
    results = measure(args.records, args.rounds, args.form)
    if args.form == "jsonl":
        targets = {"time_ratio": TIME_RATIO_TARGET, "analysis_peak_mb": MEMORY_TARGET_MB}
        met = results["time_ratio"] <= TIME_RATIO_TARGET
    else:
        targets = {"analysis_s": args.seconds, "analysis_peak_mb": 2 * MEMORY_TARGET_MB}
        met = results["analysis_s"] <= args.seconds
    met = met and results["analysis_peak_mb"] <= targets["analysis_peak_mb"]
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"results": results, "targets": targets, "met": met}, indent=2))
    for key, value in results.items():
        print(f"  {key:>17}: {value}")
    print(f"  targets {targets}: {'met' if met else 'MISSED'}; wrote {OUT}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
