"""Benchmark: does `edgebench calibrate` recover, from a live run, a world it was not told?

The emulator runs a world whose values differ from the shipped ones (tests/test_calibrate.py's:
boot median 4.2 s sigma 0.35 uncached, 2.0 s sigma 0.25 cached, the API answering in a
lognormal of median 30 ms sigma 0.2). A live `edgebench run` (embedded emulator, webhooks,
time scale 10) of about 400 deployments, then of 20; calibrate each. Targets (issue 26): from
400, each median within 6% and each sigma within 15%, and a simulation of the same scenario
and seed on the calibrated world within 5% of the live run's time to ready p50 and p95; from
20, the intervals wide (reported). Writes bench/out/calibrate_recovery.json; exit 1 on a miss.

Usage: make bench-calibrate  (about 1.5 minutes)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_calibrate import KNOWN_WORLD, SCENARIO  # noqa: E402

OUT = ROOT / "bench" / "out" / "calibrate_recovery.json"
TRUE = {"boot_s": (4.2, 0.35), "cached_boot_s": (2.0, 0.25), "latency_ms": (30.0, 0.2)}
EDGEBENCH = [sys.executable, "-m", "edgebench.cli"]


def scenario(folder: Path, name: str, seconds: int, world: str) -> Path:
    text = SCENARIO.replace("WORLD", world).replace("MODE", "respect")
    path = folder / f"{name}.toml"
    path.write_text(text.replace("SECONDS", str(seconds)).replace("RATE", "10"))
    return path


def edgebench(*args: str) -> None:
    subprocess.run([*EDGEBENCH, *args], check=False, capture_output=True, text=True)


def calibrated(folder: Path, run: Path, name: str) -> dict:
    out = folder / name / "world.toml"
    edgebench("calibrate", str(run), "--out", str(out))
    return orjson.loads((out.parent / "calibration.json").read_bytes())


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "world.toml").write_text(KNOWN_WORLD.replace("ALGORITHM", "sliding-window"))
        live = {}
        for name, seconds in (("large", 40), ("small", 2)):
            path = scenario(folder, name, seconds, "world.toml")
            edgebench("run", str(path), "--time-scale", "10", "--no-plots",
                      "--results-dir", str(folder / f"run-{name}"))  # fmt: skip
            live[name] = orjson.loads((folder / f"run-{name}" / "summary.json").read_bytes())
        large = calibrated(folder, folder / "run-large", "fit-large")
        small = calibrated(folder, folder / "run-small", "fit-small")
        again = scenario(folder, "again", 40, "fit-large/world.toml")
        # At the live run's time scale: its time to ready is wall time (boot / 10 + answer).
        edgebench("simulate", str(again), "--no-plots", "--time-scale", "10",
                  "--results-dir", str(folder / "sim"))  # fmt: skip
        simulated = orjson.loads((folder / "sim" / "summary.json").read_bytes())
    result = {"recovered": {}, "small_run": {}, "reproduced": {}}
    met = True
    for name, (median, sigma) in TRUE.items():
        fit = large["fits"][name]
        errors = (fit["median"] / median - 1, fit["sigma"] / sigma - 1)
        ok = abs(errors[0]) <= 0.06 and abs(errors[1]) <= 0.15
        met &= ok
        result["recovered"][name] = {"n": fit["n"], "median": fit["median"], "sigma": fit["sigma"],
                                     "median_error": round(errors[0], 4),
                                     "sigma_error": round(errors[1], 4), "met": ok}  # fmt: skip
        tiny = small["fits"][name]
        result["small_run"][name] = {
            key: tiny[key] for key in ("n", "median", "interval_90", "verdict")
        }
    for p in ("p50", "p95"):
        seen, model = live["large"]["time_to_ready_s"][p], simulated["time_to_ready_s"][p]
        gap = model / seen - 1
        met &= abs(gap) <= 0.05
        result["reproduced"][p] = {"live_s": seen, "simulated_s": model, "gap": round(gap, 4)}
    result["met"] = bool(met)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
