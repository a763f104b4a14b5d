"""Benchmark: probes in parallel. The shipped capacity search with --jobs 2 against --jobs 1.

`edgebench search scenarios/capacity-search.toml --vary capacity:Frankfurt --rate-factor 1.2
--check "share_422 < 0.01"` (docs/planning.md's), simulated, twice per round: one probe at a time
(bisection), then two at once (the bracket's steps together, then k-section), alternating
for ROUNDS rounds in the same minutes (this machine is shared). Target (issue 27): the same
answer, and the wall time of --jobs 2 at most 0.6 of --jobs 1's (the median of the rounds'
ratios). Writes bench/out/search_jobs.json; exit 1 when missed.

Usage: make bench-search  (about 2 minutes)
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "search_jobs.json"
ROUNDS = 3
TARGET = 0.6
SEARCH = [
    sys.executable, "-m", "edgebench.cli", "search", str(ROOT / "scenarios/capacity-search.toml"),
    "--vary", "capacity:Frankfurt", "--rate-factor", "1.2", "--check", "share_422 < 0.01",
]  # fmt: skip


def searched(folder: Path, jobs: int) -> tuple[float, dict]:
    began = time.perf_counter()
    subprocess.run([*SEARCH, "--jobs", str(jobs), "--results-dir", str(folder)],
                   check=False, capture_output=True)  # fmt: skip
    took = time.perf_counter() - began
    return took, orjson.loads((folder / "search.json").read_bytes())


def main() -> int:
    rounds = []
    with tempfile.TemporaryDirectory() as scratch:
        for number in range(ROUNDS):
            one, alone = searched(Path(scratch) / f"one-{number}", 1)
            two, together = searched(Path(scratch) / f"two-{number}", 2)
            rounds.append({
                "jobs_1": {"seconds": round(one, 2), "answer": alone["answer"],
                           "probes": len(alone["probes"])},
                "jobs_2": {"seconds": round(two, 2), "answer": together["answer"],
                           "probes": len(together["probes"])},
                "ratio": round(two / one, 3),
            })  # fmt: skip
    ratio = statistics.median(r["ratio"] for r in rounds)
    same = all(r["jobs_1"]["answer"] == r["jobs_2"]["answer"] for r in rounds)
    result = {"rounds": rounds, "median_ratio": ratio, "same_answer": same, "target": TARGET,
              "met": same and ratio <= TARGET}  # fmt: skip
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
