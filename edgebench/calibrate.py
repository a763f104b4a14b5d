"""`edgebench calibrate`: a world file fitted to what real runs measured.

    plan = CalibratePlan((Path("results/real-1"),), out=Path("calibrated.toml"))
    exit_code = calibrate(plan)   # 0 written, 2 bad input (not runs, no readiness data)

The fits are analysis.calibration's; this writes them into the base world (the runs'
world, or --base, or the shipped one): lifecycle.boot_s and cached_boot_s, api.latency_ms,
limits.algorithm when an exceed run told it; each value with a comment and a [provenance]
entry naming the runs, the date and the samples behind it, and [intervals] holding each
fitted median's 90% interval (what `--sensitivity` tries). calibration.json and
calibration.html sit beside the world file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import orjson

from edgebench._errors import EdgebenchError
from edgebench.manifest import read_manifest
from edgebench.search.space import world_toml
from emulator import default_world_path

# fit name -> the world key it sets
WORLD_KEYS = {
    "boot_s": ("lifecycle", "boot_s"),
    "cached_boot_s": ("lifecycle", "cached_boot_s"),
    "latency_ms": ("api", "latency_ms"),
}


@dataclass
class CalibratePlan:
    runs: tuple[Path, ...]
    out: Path = Path("calibrated-world.toml")
    base: Path | None = None


def calibrate(plan: CalibratePlan) -> int:
    """calibrate fits the runs, writes the world file, calibration.json and .html."""
    from analysis._errors import AnalysisError
    from analysis.calibration import calibrate_runs

    if not plan.runs:
        raise EdgebenchError("calibrate: name at least one run folder, e.g. results/real-1")
    base = plan.base or _runs_world(plan.runs) or default_world_path()
    raw = _read_world(base)
    cached = {loc["city"] for loc in raw.get("locations", []) if loc.get("cached")}
    try:
        facts = calibrate_runs(list(plan.runs), cached)
    except AnalysisError as exc:
        raise EdgebenchError(str(exc)) from None
    fits = facts.pop("fits")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    written, said = _calibrated(raw, fits, facts, stamp)
    plan.out.parent.mkdir(parents=True, exist_ok=True)
    plan.out.write_text(_with_comments(world_toml(written), said, base, facts["runs"]))
    report = facts | {"base_world": str(base), "world_file": str(plan.out), "date": stamp}
    report["fits"] = {name: fit.facts() for name, fit in fits.items()}
    json_path = plan.out.with_name("calibration.json")
    json_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    from analysis.calibration_report import write_calibration_report

    page = write_calibration_report(report, fits, plan.out.parent)
    for line in summary_lines(report):
        click.echo(line)
    click.echo(f"  world: {plan.out}\n  calibration: {json_path}\n  report: {page}")
    return 0


def _runs_world(runs: tuple[Path, ...]) -> Path | None:
    """_runs_world is the world the first run ran on, when it is still there."""
    source = ((read_manifest(runs[0]).get("emulator") or {}).get("world") or {}).get("source")
    return Path(source) if source and Path(source).is_file() else None


def _read_world(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise EdgebenchError(f"--base {path}: not a readable world file ({exc})") from None


def _calibrated(raw: dict, fits: dict, facts: dict, stamp: str) -> tuple[dict, dict[str, str]]:
    """_calibrated is the base world with each usable fit set, and what to say of each key."""
    world: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    provenance = dict(world.get("provenance", {}))
    intervals = dict(world.get("intervals", {}))
    said = {}
    runs = ", ".join(facts["runs"])
    for name, fit in fits.items():
        if fit.n < 2 or not fit.sigma > 0:
            continue
        table, key = WORLD_KEYS[name]
        world.setdefault(table, {})[key] = {
            "distribution": "lognormal",
            "median": round(fit.median, 4),
            "sigma": round(fit.sigma, 4),
        }
        low, high = fit.interval["median"]
        text = (
            f"calibrated from {runs} on {stamp}: {fit.n} samples, median 90% interval "
            f"{low:.4g}-{high:.4g}, KS {fit.ks:.3f}: {fit.verdict}"
        )
        provenance[f"{table}.{key}"] = said[f"{table}.{key}"] = text
        intervals[f"{table}.{key}"] = [round(low, 4), round(high, 4)]
    shape = facts["limiter"].get("shape")
    if shape:
        world.setdefault("limits", {})["algorithm"] = shape
        limiter = facts["limiter"]
        text = f"calibrated from {limiter['evidence']['run']} on {stamp}: {limiter['why']}"
        provenance["limits.algorithm"] = said["limits.algorithm"] = text
    world["provenance"], world["intervals"] = provenance, intervals
    return world, said


def _with_comments(text: str, said: dict[str, str], base: Path, runs: list[str]) -> str:
    """_with_comments puts each calibrated key's provenance above it, and a header."""
    lines, table = [], ""
    for line in text.splitlines():
        if line.startswith("["):
            table = line.strip("[]")
        key = f"{table}.{line.split(' = ', 1)[0].strip(chr(34))}" if " = " in line else ""
        if key in said and table != "provenance":
            lines.append(f"# {said[key]}")
        lines.append(line)
    header = [
        f"# Calibrated by `edgebench calibrate` from {', '.join(runs)}; the base world: {base}.",
        "# [provenance] says where each value came from; [intervals] holds each fitted",
        "# median's 90% interval (what `edgebench simulate --sensitivity` tries).",
        "",
    ]
    return "\n".join([*header, *lines]) + "\n"


def summary_lines(report: dict) -> list[str]:
    """summary_lines are the fits in a few lines, each with its samples and verdict."""
    lines = [f"calibrated from {len(report['runs'])} run(s): {', '.join(report['runs'])}"]
    for name, fit in report["fits"].items():
        if fit["median"] is None:
            lines.append(f"  {name}: {fit['n']} samples: {fit['verdict']}")
            continue
        low, high = fit["interval_90"]["median"]
        lines.append(
            f"  {name}: median {fit['median']:.4g} (90%: {low:.4g}-{high:.4g}), sigma "
            f"{fit['sigma']:.3g}, {fit['n']} samples, KS {fit['ks']:.3f}: {fit['verdict']}"
        )
    limiter = report["limiter"]
    lines.append(f"  limiter: {limiter.get('shape') or 'not told'}: {limiter['why']}")
    if report["share_422"] is not None:
        lines.append(
            f"  422 share {report['share_422']:.2%}; causes {report['causes_422'] or 'none'}"
        )
    return lines
