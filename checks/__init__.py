"""The checks grammar: `METRIC OP VALUE`, shared by scenarios (which hold checks) and the analysis.

A check is `METRIC OP VALUE`, OP one of < <= > >= == !=, VALUE a number or,
against a baseline run, `baseline`, `baseline * 1.1` or `baseline + 50` (against the
median of earlier runs, in `edgebench history`: `median`, `median * 1.1`, ...):

    checks = parse(["p95_ms < 800", "share_429 == 0", "p95_ms <= baseline * 1.10"])

Scenario files are checked with it when they load (edgebench.plan.scenario) and the
analysis evaluates the checks (analysis.thresholds); neither room imports the
other for it. It imports nothing but the standard library.
"""

from __future__ import annotations

import operator
import re
import tomllib
from collections.abc import Sequence
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
    rf"^\s*(?P<metric>[a-z0-9_]+(?::[A-Za-z0-9._-]+)?)\s*(?P<op><=|>=|==|!=|<|>)\s*"
    rf"(?:(?P<number>{_NUMBER})|(?P<reference>baseline|median)"
    rf"(?:\s*(?P<how>[*+])\s*(?P<by>{_NUMBER}))?)\s*$"
)

# Metrics of one part of a run, written METRIC:NAME (share_overflow:europe: a scenario region).
PER_REGION = {"share_overflow"}
# name -> (what it is, which way is better: -1 lower, +1 higher)
METRICS = {
    "requests_total": ("scheduled starts", 0),
    "requests_sent": ("requests sent", 0),
    "offered_rate_per_s": ("starts per second", 0),
    "demand_rate_per_s": ("starts per second the scenario asked for, before the cap", 0),
    "capped_starts": ("starts the demand asked for that respect mode's cap left out", -1),
    "share_capped": ("share of the demand's starts left out by the cap", -1),
    "accepted_rate_per_s": ("202s per second", 1),
    "dropped_starts": ("starts with no free user", -1),
    "share_202": ("share of sent requests accepted", 1),
    "share_422": ("share of sent requests refused for capacity", -1),
    "share_429": ("share of sent requests rate limited", -1),
    "share_error": ("share of sent requests with other errors", -1),
    "share_dropped": ("share of starts dropped", -1),
    "share_overflow": ("share of fleet deploys that overflowed to the cloud", -1),
    "cost_per_match": ("what a served match cost ([costs] given)", -1),
    "cost_per_day": ("the run's cost as a day's ([costs] given)", -1),
    "share_abandoned": ("share of matches abandoned in the client's queue", -1),
    "share_unserved": ("share of matches that got no server: failed or abandoned", -1),
    "amplification": ("requests per match: 1 without retries", -1),
    **{
        f"wait_p{p}_s": (f"players' wait from match to server p{p}, s (none: never)", -1)
        for p in (50, 95, 99)
    },
    **{f"p{p}_ms": (f"latency p{p} from send, ms", -1) for p in (50, 90, 95, 99)},
    "max_ms": ("latency max from send, ms", -1),
    **{f"sched_p{p}_ms": (f"latency p{p} from schedule, ms", -1) for p in (50, 90, 95, 99)},
    **{f"ttr_p{p}_s": (f"time to ready p{p}, s", -1) for p in (50, 95, 99)},
}


class ThresholdError(ValueError):
    """ThresholdError is a check that cannot be read: the message says why and how to fix it."""


class Check(NamedTuple):
    text: str
    metric: str
    op: str
    number: float | None  # None: relative to the baseline
    how: str | None = None  # "*" or "+" with `by`, for a relative check
    by: float | None = None
    reference: str | None = None  # a relative check's: "baseline" (a run) or "median" (runs)


def parse(texts: list[str]) -> list[Check]:
    """parse reads each check, or raises ThresholdError naming the first bad one."""
    return [parse_one(text) for text in texts]


def parse_one(text: str) -> Check:
    """parse_one reads one check.

    >>> parse_one("p95_ms <= baseline * 1.1").reference, parse_one("p95_ms < median + 5").by
    ('baseline', 5.0)
    """
    match = _CHECK.match(text) if isinstance(text, str) else None
    if not match:
        raise ThresholdError(
            f"{text!r} is not a check; write METRIC OP VALUE, e.g. 'p95_ms < 800' "
            "or 'p95_ms <= baseline * 1.1'"
        )
    metric = match["metric"]
    base, _, part = metric.partition(":")
    if base not in METRICS:
        raise ThresholdError(f"{text!r}: unknown metric {base!r}; one of {', '.join(METRICS)}")
    if part and base not in PER_REGION:
        raise ThresholdError(
            f"{text!r}: {base} is of the whole run; write it without ':{part}' "
            f"(per region: {', '.join(sorted(PER_REGION))})"
        )
    number = float(match["number"]) if match["number"] is not None else None
    by = float(match["by"]) if match["by"] is not None else None
    return Check(text.strip(), metric, match["op"], number, match["how"], by, match["reference"])


def verdict_checks(
    path: str | Path | None, texts: tuple[str, ...] | list[str] = ()
) -> list[Check] | None:
    """verdict_checks are a command's checks: a --thresholds file's and each --check given,
    together (None: neither given, the scenario's thresholds judge)."""
    if path is None and not texts:
        return None
    return [*(load_file(path) if path is not None else []), *parse(list(texts))]


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


# Watched checks: judged live over a sliding window of the records as they are written.
# Only what a window of sent requests tells can be watched.
WATCHABLE = ("share_202", "share_422", "share_429", "share_error", "p50_ms", "p95_ms", "p99_ms")
_WATCH = re.compile(r"^\s*abort\s+if\s+(?P<check>.+?)\s+for\s+(?P<for>\S+)\s*$")
_DURATION = re.compile(
    r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s?)?$"
)


class Watch(NamedTuple):
    """Watch is a breach to look for during a run: `check` holding over the last `for_s`.

    With abort, the run stops when it holds; without, the breach is only reported.
    """

    text: str
    check: Check
    for_s: float
    abort: bool


def parse_watch(item: object) -> Watch:
    """parse_watch reads `{ check = "share_429 > 0.05", for = "10s", abort = true }` or its
    one-line form `"abort if share_429 > 0.05 for 10s"`.

    >>> parse_watch("abort if share_error > 0.5 for 10s").for_s
    10.0
    """
    if isinstance(item, str):
        match = _WATCH.match(item)
        if not match:
            raise ThresholdError(
                f"{item!r} is not a watched check; write 'abort if METRIC OP VALUE for 10s'"
            )
        text, window, abort = match["check"], match["for"], True
    elif isinstance(item, dict):
        unknown = sorted(set(item) - {"check", "for", "abort"})
        if unknown or "check" not in item or "for" not in item:
            raise ThresholdError(
                f"{item!r}: a watched check has check, for and abort; "
                'write { check = "share_429 > 0.05", for = "10s", abort = true }'
            )
        text, window, abort = item["check"], item["for"], item.get("abort", False)
        if not isinstance(abort, bool):
            raise ThresholdError(f"{item!r}: abort must be true or false")
    else:
        raise ThresholdError(f"{item!r} is neither a check nor a watched check")
    check = parse_one(text)
    if check.metric not in WATCHABLE or check.number is None:
        raise ThresholdError(
            f"{text!r} cannot be watched live; watch one of {', '.join(WATCHABLE)} against a number"
        )
    return Watch(
        f"{check.text} for {_seconds(window, text):g}s", check, _seconds(window, text), abort
    )


def _seconds(value: object, where: str) -> float:
    """_seconds reads a watch's window: a number of seconds or a text like 10s, 1m30s."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(value) if isinstance(value, str) and value else None
        if not match:
            raise ThresholdError(
                f"{where!r}: for {value!r} is not a duration; write e.g. 10s or 1m"
            )
        seconds = sum(float(match[k] or 0) * f for k, f in (("h", 3600), ("m", 60), ("s", 1)))
    if seconds <= 0:
        raise ThresholdError(f"{where!r}: for must be above 0 s")
    return seconds


def split_thresholds(items: Sequence[object]) -> tuple[list[str], list[Watch]]:
    """split_thresholds separates a scenario's end-of-run checks from its watched ones."""
    checks, watches = [], []
    for item in items:
        if isinstance(item, str) and not item.lstrip().startswith("abort if"):
            parse_one(item)
            checks.append(item)
        else:
            watches.append(parse_watch(item))
    return checks, watches
