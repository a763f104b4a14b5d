"""Benchmark: a soak at the full limit holds (issue 14, part 4).

`edgebench run scenarios/respect-limit.toml` (respect mode at the 40/s limit, even
arrivals, each match one request) with `--processes 2` against the embedded emulator, for
30 minutes (--minutes). Targets, each against a baseline taken in the same run:
- zero 429s at the emulator and zero dropped matches;
- resident memory of the generator (Locust's master and workers together) and of the
  emulator grows by <= 10% from the end of the first 5 minutes to the end of the run;
- send lag (send minus due: the limiter's hold counts, since at a steady 40/s it should
  hold nothing for long) does not grow: p99 of the last 5 minutes <= 1.25 x the p99 of
  minutes 5-10 (or + 1 ms, this machine's noise);
- the analysis of the whole run takes <= 1.1 x the time per record of analysing its
  first sixth (a run of 5 minutes): no cost that grows faster than the records.

Not the SDK's client with its queue: a limiter that counts each window from the API's
answers (the only way to be sure of the API's count) drains at about limit / (1 s +
latency), so at exactly the limit its queue grows for as long as the run lasts (130 ms
more wait a minute, measured here): a queue at full load has no steady state.

The embedded emulator runs at time scale 60 (a 15-minute match lasts 15 s), so its
deployments start, run and end many times over: its memory holds the steady state.

Usage: make bench-soak  (or .venv/bin/python bench/soak.py [--minutes 30])
Writes bench/out/soak.json; the run folder stays in bench/out/soak-run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson
import psutil
from _verdict import conclude  # bench/, on the path as the script's folder

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "soak.json"
RUN_DIR = ROOT / "bench" / "out" / "soak-run"
EDGEBENCH = [sys.executable, "-m", "edgebench.cli"]
SAMPLE_S = 10.0
WARMUP_S = 300.0
MEMORY_GROWTH = 0.10
LAG_GROWTH, LAG_NOISE_MS = 1.25, 1.0
ANALYSIS_GROWTH = 1.10

SCENARIO = ROOT / "scenarios" / "respect-limit.toml"


def memory_mib(run: psutil.Process) -> tuple[float, float]:
    """memory_mib is the resident memory of the generator's processes and of the emulator."""
    generator = emulator = 0.0
    for process in run.children(recursive=True):
        try:
            command = " ".join(process.cmdline())
            rss = process.memory_info().rss / 2**20
        except psutil.Error:
            continue
        if "emulator" in command:
            emulator += rss
        elif "locust" in command:
            generator += rss
    return generator, emulator


def soak(seconds: float) -> tuple[list[tuple[float, float, float]], int]:
    """soak runs the scenario, sampling memory; it returns the samples and the exit code."""
    command = [*EDGEBENCH, "run", str(SCENARIO), "--duration", f"{seconds:g}s"]
    command += ["--processes", "2", "--time-scale", "60"]
    command += ["--results-dir", str(RUN_DIR), "--overwrite"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    run, began, samples = psutil.Process(process.pid), time.time(), []
    while process.poll() is None:
        time.sleep(SAMPLE_S)
        elapsed = time.time() - began
        generator, emulator = memory_mib(run)
        if generator and emulator:
            samples.append((elapsed, generator, emulator))
            print(f"  {elapsed / 60:5.1f} min: generator {generator:6.1f} MiB, "
                  f"emulator {emulator:6.1f} MiB", flush=True)  # fmt: skip
    print(process.stdout.read().decode(), flush=True)
    return samples, process.returncode


def memory_growth(samples, column: int, warmup_s: float) -> dict:
    """memory_growth compares the memory at the end of the warm-up with the run's last minute."""
    at = [s[column] for s in samples]
    times = np.array([s[0] for s in samples])
    after = int(np.searchsorted(times, warmup_s))
    base = float(np.mean(at[max(0, after - 3) : after + 1]))
    last = float(max(at[-6:]))
    return {"after_warmup_mib": round(base, 1), "end_mib": round(last, 1),
            "growth": round(last / base - 1, 4)}  # fmt: skip


def records() -> list[dict]:
    logs = RUN_DIR.glob("requests-*.jsonl")
    return [orjson.loads(line) for log in logs for line in log.open("rb")]


def lag_growth(rows: list[dict], epoch: float, seconds: float) -> dict:
    """lag_growth is the send lag's p99 just after the warm-up and over the last 5 minutes."""
    sent = [r for r in rows if r["t_send"] and r["attempt"] == 1]
    due = np.array([r["t_sched"] - epoch for r in sent])
    lag = np.array([(r["t_send"] - r["t_sched"]) * 1000 for r in sent])
    early = lag[(due >= WARMUP_S) & (due < 2 * WARMUP_S)]
    late = lag[due >= seconds - WARMUP_S]
    per_minute = [
        round(float(np.percentile(lag[(due >= m * 60) & (due < m * 60 + 60)], 99)), 3)
        for m in range(int(seconds // 60))
    ]
    return {
        "p99_minutes_5_10_ms": round(float(np.percentile(early, 99)), 3),
        "p99_last_5_minutes_ms": round(float(np.percentile(late, 99)), 3),
        "p99_by_minute_ms": per_minute,
    }


def analysis_seconds(folder: Path) -> float:
    began = time.perf_counter()
    done = subprocess.run([*EDGEBENCH, "analyze", str(folder)], capture_output=True, check=False)
    if done.returncode not in (0, 1):  # 1: a threshold failed, which the figures above tell
        raise SystemExit(f"edgebench analyze {folder} failed: {done.stderr.decode()[-1000:]}")
    return time.perf_counter() - began


def first_part(rows_until: float) -> tuple[Path, int]:
    """first_part copies the run folder with only the records due before rows_until."""
    part = RUN_DIR.parent / "soak-first-part"
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir()
    shutil.copy(RUN_DIR / "manifest.json", part / "manifest.json")
    kept = 0
    for log in RUN_DIR.glob("requests-*.jsonl"):
        lines = [line for line in log.open("rb") if orjson.loads(line)["t_sched"] < rows_until]
        (part / log.name).write_bytes(b"".join(lines))
        kept += len(lines)
    return part, kept


def analysis_growth(total: int, epoch: float, seconds: float) -> dict:
    part, kept = first_part(epoch + seconds / 6)
    whole_s, part_s = analysis_seconds(RUN_DIR), analysis_seconds(part)
    shutil.rmtree(part, ignore_errors=True)
    ratio = (whole_s / total) / (part_s / kept)
    return {
        "records": total,
        "seconds": round(whole_s, 2),
        "first_sixth_records": kept,
        "first_sixth_seconds": round(part_s, 2),
        "per_record_ratio": round(ratio, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="the soak's length")
    seconds = parser.parse_args().minutes * 60
    if seconds < 3 * WARMUP_S:
        raise SystemExit("Error: --minutes: at least 15 (5 of warm-up, 5 to compare, 5 at the end)")
    RUN_DIR.parent.mkdir(parents=True, exist_ok=True)
    samples, code = soak(seconds)
    summary = orjson.loads((RUN_DIR / "summary.json").read_bytes())
    epoch = orjson.loads((RUN_DIR / "manifest.json").read_bytes())["epoch"]
    rows = records()
    outcomes = [r["outcome"] for r in rows]
    figures = {
        "minutes": seconds / 60,
        "exit_code": code,
        "matches": len({r["match"] for r in rows}),
        "rate_limited": outcomes.count("rate_limited"),
        "dropped": outcomes.count("dropped"),
        "abandoned": outcomes.count("abandoned"),
        "accepted_rate": summary.get("accepted_rate_per_s"),
        "generator_memory": memory_growth(samples, 1, WARMUP_S),
        "emulator_memory": memory_growth(samples, 2, WARMUP_S),
        "send_lag": lag_growth(rows, epoch, seconds),
        "analysis": analysis_growth(len(rows), epoch, seconds),
    }
    lag = figures["send_lag"]
    early = lag["p99_minutes_5_10_ms"]
    met = {
        "zero_429": figures["rate_limited"] == 0,
        "zero_dropped": figures["dropped"] == 0,
        "generator_memory": figures["generator_memory"]["growth"] <= MEMORY_GROWTH,
        "emulator_memory": figures["emulator_memory"]["growth"] <= MEMORY_GROWTH,
        "send_lag": lag["p99_last_5_minutes_ms"] <= max(early * LAG_GROWTH, early + LAG_NOISE_MS),
        "analysis": figures["analysis"]["per_record_ratio"] <= ANALYSIS_GROWTH,
    }
    print(json.dumps(figures, indent=2))
    conclude(OUT, {"soak": figures}, met)


if __name__ == "__main__":
    main()
