"""Per-window series: what happened in each slice of the run (default one second).

Windows are aligned to the first scheduled start. Percentiles are exact for the
samples in each window (nearest rank), never averaged across windows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.metrics import NOT_SENT, percentiles

OUTCOME_ORDER = (
    "accepted",
    "allocation_failure",
    "rate_limited",
    "bad_request",
    "unauthorized",
    "client_error",
    "server_error",
    "transport_error",
    "dropped",
    "backoff",
)


def window_of(requests: pd.DataFrame, window_s: float) -> pd.Series:
    """window_of is each start's window number, from its scheduled time."""
    start = requests["t_sched"].min()
    return np.floor((requests["t_sched"] - start) / window_s).astype(int)


def throughput(requests: pd.DataFrame, window_s: float = 1.0) -> pd.DataFrame:
    """throughput is per window, per second: offered, sent, accepted, and each outcome."""
    if requests.empty:
        return pd.DataFrame(columns=["t_s", "offered_per_s", "sent_per_s", "accepted_per_s"])
    windows = window_of(requests, window_s)
    counts = pd.crosstab(windows, requests["outcome"]).reindex(
        columns=[o for o in OUTCOME_ORDER if o in set(requests["outcome"])], fill_value=0
    )
    full = range(int(windows.max()) + 1)
    counts = counts.reindex(full, fill_value=0)
    sent = counts.drop(columns=[c for c in NOT_SENT if c in counts], errors="ignore").sum(axis=1)
    series = pd.DataFrame(
        {
            "t_s": np.asarray(full) * window_s,
            "offered_per_s": counts.sum(axis=1) / window_s,
            "sent_per_s": sent / window_s,
            "accepted_per_s": counts.get("accepted", 0) / window_s,
        }
    )
    return pd.concat([series, counts / window_s], axis=1)


def latency(requests: pd.DataFrame, window_s: float = 1.0) -> pd.DataFrame:
    """latency is per window: exact p50/p95/p99 from send and from schedule."""
    sent = requests.dropna(subset=["latency_ms"])
    if sent.empty:
        return pd.DataFrame(columns=["t_s"])
    rows = []
    for window, group in sent.groupby(window_of(sent, window_s)):
        send, schedule = percentiles(group["latency_ms"]), percentiles(group["latency_sched_ms"])
        rows.append(
            {"t_s": window * window_s}
            | {f"send_{k}": send[k] for k in ("p50", "p95", "p99")}
            | {f"schedule_{k}": schedule[k] for k in ("p50", "p95", "p99")}
        )
    return pd.DataFrame(rows)
