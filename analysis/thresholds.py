"""Thresholds: a run's pass/fail verdict for CI, from checks like `p95_ms < 800`.

A check is `METRIC OP VALUE`, OP one of < <= > >= == !=, VALUE a number or,
against a baseline run, `baseline`, `baseline * 1.1` or `baseline + 50`:

    checks = parse(["p95_ms < 800", "share_429 == 0", "p95_ms <= baseline * 1.10"])
    results = evaluate(checks, metrics(summary), baseline=metrics(base_summary))
    write_junit(results, "junit.xml")

Checks live in the scenario (`thresholds = [...]`, copied into the manifest) or in
a TOML file passed with --thresholds (`checks = [...]`). METRICS lists the names.
"""

from __future__ import annotations

import operator
import re
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import NamedTuple

OPERATORS = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_CHECK = re.compile(
    rf"^\s*(?P<metric>[a-z0-9_]+)\s*(?P<op><=|>=|==|!=|<|>)\s*"
    rf"(?:(?P<number>{_NUMBER})|baseline(?:\s*(?P<how>[*+])\s*(?P<by>{_NUMBER}))?)\s*$"
)

# name -> (what it is, which way is better: -1 lower, +1 higher)
METRICS = {
    "requests_total": ("scheduled starts", 0),
    "requests_sent": ("requests sent", 0),
    "offered_rate_per_s": ("starts per second", 0),
    "accepted_rate_per_s": ("202s per second", 1),
    "dropped_starts": ("starts with no free user", -1),
    "share_202": ("share of sent requests accepted", 1),
    "share_422": ("share of sent requests refused for capacity", -1),
    "share_429": ("share of sent requests rate limited", -1),
    "share_error": ("share of sent requests with other errors", -1),
    "share_dropped": ("share of starts dropped", -1),
    **{f"p{p}_ms": (f"latency p{p} from send, ms", -1) for p in (50, 90, 95, 99)},
    "max_ms": ("latency max from send, ms", -1),
    **{f"sched_p{p}_ms": (f"latency p{p} from schedule, ms", -1) for p in (50, 90, 95, 99)},
    **{f"ttr_p{p}_s": (f"time to ready p{p}, s", -1) for p in (50, 95, 99)},
}
# Every outcome of a sent request other than 202, 422 and 429 (results/README.md).
OTHER_ERRORS = (
    "bad_request",
    "unauthorized",
    "client_error",
    "server_error",
    "transport_error",
    "unexpected_status",
)


class ThresholdError(ValueError):
    """ThresholdError is a check that cannot be read: the message says why and how to fix it."""


class Check(NamedTuple):
    text: str
    metric: str
    op: str
    number: float | None  # None: relative to the baseline
    how: str | None = None  # "*" or "+" with `by`, for a relative check
    by: float | None = None


class Result(NamedTuple):
    check: Check
    actual: float | None
    limit: float | None
    passed: bool
    message: str


def parse(texts: list[str]) -> list[Check]:
    """parse reads each check, or raises ThresholdError naming the first bad one."""
    return [parse_one(text) for text in texts]


def parse_one(text: str) -> Check:
    """parse_one reads one check.

    >>> parse_one("p95_ms <= baseline * 1.1")
    Check(text='p95_ms <= baseline * 1.1', metric='p95_ms', op='<=', number=None, how='*', by=1.1)
    """
    match = _CHECK.match(text) if isinstance(text, str) else None
    if not match:
        raise ThresholdError(
            f"{text!r} is not a check; write METRIC OP VALUE, e.g. 'p95_ms < 800' "
            "or 'p95_ms <= baseline * 1.1'"
        )
    metric = match["metric"]
    if metric not in METRICS:
        raise ThresholdError(f"{text!r}: unknown metric {metric!r}; one of {', '.join(METRICS)}")
    number = float(match["number"]) if match["number"] is not None else None
    by = float(match["by"]) if match["by"] is not None else None
    return Check(text.strip(), metric, match["op"], number, match["how"], by)


def load_file(path: str | Path) -> list[Check]:
    """load_file reads `checks = [...]` from a TOML file."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ThresholdError(f"{path}: cannot read ({exc.strerror}); check the path") from None
    except tomllib.TOMLDecodeError as exc:
        raise ThresholdError(f"{path}: not valid TOML ({exc}); fix the syntax") from None
    checks = document.get("checks")
    if not isinstance(checks, list) or not checks:
        raise ThresholdError(f'{path}: checks: missing; write checks = ["p95_ms < 800", ...]')
    try:
        return parse(checks)
    except ThresholdError as exc:
        raise ThresholdError(f"{path}: checks: {exc}") from None


def metrics(summary: dict) -> dict[str, float | None]:
    """metrics flattens summary.json into the names checks use (shares are of sent requests)."""
    counts, sent = summary["outcome_counts"], summary["requests_sent"]
    total = summary["requests_total"]

    def share(*outcomes: str) -> float | None:
        return sum(counts.get(o, 0) for o in outcomes) / sent if sent else None

    from_send = summary["latency_ms"]["from_send"]
    from_schedule = summary["latency_ms"]["from_schedule"]
    ready = summary["time_to_ready_s"]
    values = {
        "requests_total": total,
        "requests_sent": sent,
        "offered_rate_per_s": summary["offered_rate_per_s"],
        "accepted_rate_per_s": summary["accepted_rate_per_s"],
        "dropped_starts": summary["dropped_starts"],
        "share_202": share("accepted"),
        "share_422": share("allocation_failure"),
        "share_429": share("rate_limited"),
        "share_error": share(*OTHER_ERRORS),
        "share_dropped": summary["dropped_starts"] / total if total else None,
        "max_ms": from_send["max"],
    }
    for p in (50, 90, 95, 99):
        values[f"p{p}_ms"] = from_send[f"p{p}"]
        values[f"sched_p{p}_ms"] = from_schedule[f"p{p}"]
    for p in (50, 95, 99):
        values[f"ttr_p{p}_s"] = ready[f"p{p}"]
    return values


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


def write_junit(results: list[Result], path: Path, suite: str) -> None:
    """write_junit writes one JUnit testcase per check, for CI systems to show."""
    failures = sum(not r.passed for r in results)
    root = ET.Element("testsuites", tests=str(len(results)), failures=str(failures))
    cases = ET.SubElement(
        root, "testsuite", name=suite, tests=str(len(results)), failures=str(failures)
    )
    for result in results:
        case = ET.SubElement(cases, "testcase", classname=suite, name=result.check.text)
        if not result.passed:
            ET.SubElement(case, "failure", message=result.message).text = result.message
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
