"""The numbers of a run: counts, shares, rates and exact latency percentiles.

Percentiles are exact over the samples (nearest rank), never averaged.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.load import Run

PERCENTILES = (50, 90, 95, 99)
NOT_SENT = ("dropped", "backoff", "over_budget")  # outcomes of starts never sent


def percentiles(values: pd.Series) -> dict[str, float | None]:
    """percentiles is p50/p90/p95/p99/max by nearest rank (None when there are no values).

    >>> percentiles(pd.Series([4.0, 1.0, 3.0, 2.0]))
    {'p50': 2.0, 'p90': 4.0, 'p95': 4.0, 'p99': 4.0, 'max': 4.0}
    """
    samples = np.sort(values.dropna().to_numpy(dtype=float))
    if samples.size == 0:
        return {f"p{p}": None for p in PERCENTILES} | {"max": None}
    summary = {}
    for p in PERCENTILES:
        rank = max(1, math.ceil(samples.size * p / 100))
        summary[f"p{p}"] = round(float(samples[rank - 1]), 3)
    summary["max"] = round(float(samples[-1]), 3)
    return summary


def counts(values: pd.Series) -> pd.Series:
    """counts is how often each value occurs, most first, leaving out categories never seen."""
    tally = values.value_counts()
    return tally[tally > 0]


def summarize(run: Run) -> dict:
    """summarize is summary.json's content for a run."""
    requests = run.requests
    summary = _totals(requests) | {
        "latency_ms": {
            "from_send": percentiles(requests["latency_ms"]),
            "from_schedule": percentiles(requests["latency_sched_ms"]),
        },
        "time_to_ready_s": percentiles(time_to_ready(run)),
        "skipped_lines": run.skipped_lines,
        "webhook_callbacks": run.callbacks,
    }
    summary["by_endpoint"] = _breakdown(requests, "endpoint")
    summary["by_region"] = _breakdown(requests, "region")
    return summary


def _totals(requests: pd.DataFrame) -> dict:
    statuses = counts(requests["status"].dropna()).rename(index=str)
    span = _span_s(requests)
    outcomes = counts(requests["outcome"])
    total = len(requests)
    return {
        "requests_total": total,
        "requests_sent": int(statuses.sum()),
        "status_counts": {
            ("transport_error" if k == "0" else str(k)): int(v) for k, v in sorted(statuses.items())
        },
        "outcome_counts": {str(k): int(v) for k, v in outcomes.items()},
        **outcome_shares(outcomes),
        "dropped_starts": int(outcomes.get("dropped", 0)),
        "duration_s": round(span, 3),
        "offered_rate_per_s": round(total / span, 3) if span else None,
        "accepted_rate_per_s": round(int(outcomes.get("accepted", 0)) / span, 3) if span else None,
    }


def outcome_shares(outcomes: pd.Series) -> dict[str, dict[str, float]]:
    """outcome_shares are the outcomes' shares, each named by its denominator.

    shares_of_sent: each outcome of a sent request over the requests sent (what share_202,
    share_422, ... and the report give); shares_of_starts: every outcome, the unsent ones
    too (dropped, backoff, over_budget), over all scheduled starts.

    >>> outcome_shares(pd.Series({"accepted": 3, "rate_limited": 1, "dropped": 4}))
    {'shares_of_sent': {'accepted': 0.75, 'rate_limited': 0.25}, \
'shares_of_starts': {'accepted': 0.375, 'rate_limited': 0.125, 'dropped': 0.5}}
    """
    sent = {str(k): int(v) for k, v in outcomes.items() if k not in NOT_SENT}
    sent_total, total = sum(sent.values()), int(outcomes.sum())
    return {
        "shares_of_sent": {k: round(v / sent_total, 6) for k, v in sent.items()},
        "shares_of_starts": {str(k): round(int(v) / total, 6) for k, v in outcomes.items()},
    }


def _span_s(requests: pd.DataFrame) -> float:
    """_span_s is the run's length: first to last scheduled start, plus one mean interval."""
    times = requests["t_sched"].dropna()
    if len(times) < 2:
        return 0.0
    first, last = float(times.min()), float(times.max())
    return (last - first) * len(times) / (len(times) - 1)


def time_to_ready(run: Run) -> pd.Series:
    """time_to_ready is, per deployment with a `ready` event, seconds from send to ready."""
    ready = run.events[run.events["event"] == "ready"]
    if ready.empty:
        return pd.Series(dtype=float)
    first_ready = ready.groupby("request_id")["t_received"].min()
    requests = run.requests[["request_id", "t_send"]]
    sent = requests.dropna(subset=["request_id"]).set_index("request_id")["t_send"]
    joined = pd.concat([sent, first_ready], axis=1, join="inner")
    return (joined["t_received"] - joined["t_send"]).astype(float)


def _breakdown(requests: pd.DataFrame, column: str) -> dict:
    groups = {}
    needed = requests[[column, "outcome", "latency_ms"]].dropna(subset=[column])
    for key, group in needed.groupby(column, observed=True):
        outcomes = counts(group["outcome"])
        groups[str(key)] = {
            "requests": len(group),
            "sent": int(sum(v for k, v in outcomes.items() if k not in NOT_SENT)),
            **outcome_shares(outcomes),
            "latency_ms": percentiles(group["latency_ms"]),
        }
    return groups
