"""Thresholds: a run's pass/fail verdict for CI, from checks like `p95_ms < 800`.

The grammar of a check is in the `checks` package (scenarios use it too):

    checks = parse(["p95_ms < 800", "share_429 == 0", "p95_ms <= baseline * 1.10"])
    results = evaluate(checks, metrics(summary), baseline=metrics(base_summary))
    write_junit(results, "junit.xml")

Checks live in the scenario (`thresholds = [...]`, copied into the manifest) or in
a TOML file passed with --thresholds (`checks = [...]`). METRICS lists the names.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import NamedTuple

from checks import METRICS, OPERATORS, Check, ThresholdError, load_file, parse, parse_one
from checks.outcomes import SHARES, share_of

__all__ = [
    "METRICS",
    "Check",
    "Result",
    "ThresholdError",
    "evaluate",
    "load_file",
    "metrics",
    "parse",
    "parse_one",
    "write_junit",
]


class Result(NamedTuple):
    check: Check
    actual: float | None
    limit: float | None
    passed: bool
    message: str


def metrics(summary: dict) -> dict[str, float | None]:
    """metrics flattens summary.json into the names checks use (shares are of sent requests)."""
    counts, sent = summary["outcome_counts"], summary["requests_sent"]
    total = summary["requests_total"]

    from_send = summary["latency_ms"]["from_send"]
    from_schedule = summary["latency_ms"]["from_schedule"]
    ready = summary["time_to_ready_s"]
    values = {
        "requests_total": total,
        "requests_sent": sent,
        "offered_rate_per_s": summary["offered_rate_per_s"],
        "demand_rate_per_s": summary.get("demand_rate_per_s"),
        "capped_starts": summary.get("capped_starts"),
        "share_capped": summary.get("share_capped"),
        "accepted_rate_per_s": summary["accepted_rate_per_s"],
        "dropped_starts": summary["dropped_starts"],
        **{name: share_of(counts, group, sent) for name, group in SHARES.items()},
        "share_dropped": summary["dropped_starts"] / total if total else None,
        "share_overflow": _overflow(summary),
        **_per_region_overflow(summary),
        **_costs(summary),
        "max_ms": from_send["max"],
        **_match_values(summary),
    }
    for p in (50, 90, 95, 99):
        values[f"p{p}_ms"] = from_send[f"p{p}"]
        values[f"sched_p{p}_ms"] = from_schedule[f"p{p}"]
    for p in (50, 95, 99):
        values[f"ttr_p{p}_s"] = ready[f"p{p}"]
    return values


def _overflow(summary: dict) -> float | None:
    """_overflow is the emulator's count of fleet deploys that went to the cloud, else the
    records' (a run against the real API, whose statuses said where)."""
    told = (summary.get("fleet") or {}).get("overflow_share")
    if told is not None:
        return told
    return ((summary.get("placement") or {}).get("whole_run") or {}).get("share_overflow")


def _per_region_overflow(summary: dict) -> dict[str, float | None]:
    regions = (summary.get("placement") or {}).get("by_region") or {}
    return {f"share_overflow:{name}": placed["share_overflow"] for name, placed in regions.items()}


def _costs(summary: dict) -> dict[str, float | None]:
    cost = summary.get("cost") or {}
    return {"cost_per_match": cost.get("per_match"), "cost_per_day": cost.get("per_day")}


def _match_values(summary: dict) -> dict:
    """_match_values are the checks on matches: abandoned share, retries, the players' wait."""
    matches = summary.get("matches") or {}
    total = matches.get("total") or 0
    wait = summary.get("player_wait_s") or {}
    unserved = matches.get("failed", 0) + matches.get("abandoned", 0)
    return {
        "share_abandoned": matches.get("abandoned", 0) / total if total else None,
        "share_unserved": unserved / total if total else None,
        "amplification": (summary.get("attempts_per_match") or {}).get("mean"),
        **{f"wait_p{p}_s": wait.get(f"p{p}") for p in (50, 95, 99)},
    }


def evaluate(
    checks: list[Check], values: dict, baseline: dict | None = None, baseline_name: str = ""
) -> list[Result]:
    """evaluate judges each check against a run's metrics (and a baseline run's)."""
    return [_judge(check, values, baseline, baseline_name) for check in checks]


def _judge(check: Check, values: dict, baseline: dict | None, baseline_name: str) -> Result:
    actual = values.get(check.metric)
    if check.number is not None:
        limit = check.number
    elif baseline is None:
        return Result(
            check, actual, None, False, f"{check.text}: needs a baseline run (--baseline)"
        )
    elif baseline.get(check.metric) is None:
        message = f"{check.text}: the baseline {baseline_name} has no {check.metric}"
        return Result(check, actual, None, False, message)
    else:
        base = baseline[check.metric]
        limit = base * check.by if check.how == "*" else base + (check.by or 0.0)
    if actual is None:
        return Result(check, None, limit, False, f"{check.text}: this run has no {check.metric}")
    passed = OPERATORS[check.op](actual, limit)
    verdict = "ok" if passed else "FAILED"
    return Result(check, actual, limit, passed, f"{check.text}: {actual:g} vs {limit:g}, {verdict}")


def write_junit(
    results: list[Result], path: Path, suite: str, incomplete: str | None = None
) -> None:
    """write_junit writes one JUnit testcase per check, for CI systems to show; a run whose
    records are not the whole run (incomplete: what is missing) adds a testcase in error."""
    failures = sum(not r.passed for r in results)
    counts = {
        "tests": str(len(results) + bool(incomplete)),
        "failures": str(failures),
        "errors": str(int(bool(incomplete))),
    }
    root = ET.Element("testsuites", counts)
    cases = ET.SubElement(root, "testsuite", {"name": suite, **counts})
    for result in results:
        case = ET.SubElement(cases, "testcase", classname=suite, name=result.check.text)
        if not result.passed:
            ET.SubElement(case, "failure", message=result.message).text = result.message
    if incomplete:
        case = ET.SubElement(cases, "testcase", classname=suite, name="the run's records are whole")
        ET.SubElement(case, "error", message=incomplete).text = f"INCOMPLETE: {incomplete}"
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
