"""Per-window series: what happened in each slice of the run (default one second).

Windows are aligned to the first scheduled start. Percentiles are exact for the
samples in each window (nearest rank), never averaged across windows.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.metrics import demand_by
from checks.outcomes import ERRORS, NOT_SENT

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
    "over_budget",
)


READABLE_WINDOWS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
MOST_WINDOWS = 1500  # points on a curve a page can show apart


def readable_window(span_s: float) -> float:
    """readable_window is the shortest round window that keeps a run's curves to at most
    MOST_WINDOWS points (an 18 h run at one-second windows is a black block).

    >>> readable_window(120), readable_window(18 * 3600)
    (1, 60)
    """
    return next((w for w in READABLE_WINDOWS_S if span_s / w <= MOST_WINDOWS), 3600)


def window_of(requests: pd.DataFrame, window_s: float) -> pd.Series:
    """window_of is each start's window number, from its scheduled time."""
    start = requests["t_sched"].min()
    return np.floor((requests["t_sched"] - start) / window_s).astype(int)


def throughput(
    requests: pd.DataFrame, window_s: float = 1.0, demand: tuple[list, float] | None = None
) -> pd.DataFrame:
    """throughput is per window, per second: what was due (offered_per_s: every start and
    retry, by its due time) and what the API saw (each outcome of a sent request by its
    send time, sent_per_s, accepted_per_s; an unsent start's outcome by its due time).

    With demand (the manifest's demand segments and epoch), also what the demand asked
    for in each window, before respect mode's cap.
    """
    if requests.empty:
        return pd.DataFrame(columns=["t_s", "offered_per_s", "sent_per_s", "accepted_per_s"])
    due = window_of(requests, window_s).to_numpy()
    start = requests["t_sched"].min()
    sent_at = np.floor(
        (requests["t_send"].to_numpy(dtype=float, na_value=np.nan) - start) / window_s
    )
    at = np.where(np.isnan(sent_at), due, np.nan_to_num(sent_at)).astype(int).clip(min=0)
    counts = _counts_per_window(at, requests["outcome"])
    offered = np.bincount(due, minlength=len(counts))
    counts = counts.reindex(range(max(len(counts), len(offered))), fill_value=0)
    sent = counts.drop(columns=[c for c in NOT_SENT if c in counts]).sum(axis=1)
    series = pd.DataFrame(
        {
            "t_s": counts.index.to_numpy() * window_s,
            "offered_per_s": np.pad(offered, (0, len(counts) - len(offered))) / window_s,
            "sent_per_s": sent / window_s,
            "accepted_per_s": counts.get("accepted", 0) / window_s,
        }
    )
    if demand:
        series["demand_per_s"] = _demand_per_window(requests, window_s, len(series), *demand)
    return pd.concat([series, counts / window_s], axis=1)


def _demand_per_window(requests, window_s: float, windows: int, segments, epoch) -> np.ndarray:
    """_demand_per_window is the demand's rate in each window: its integral over the window."""
    first = float(requests["t_sched"].min()) - epoch
    edges = [demand_by(segments, first + k * window_s) for k in range(windows + 1)]
    return np.diff(edges) / window_s


def _counts_per_window(windows: np.ndarray, outcomes: pd.Series) -> pd.DataFrame:
    """_counts_per_window is a windows x outcomes table of counts (every window, seen outcomes)."""
    codes, names = _factorized(outcomes)
    known = codes >= 0
    flat = np.bincount(
        windows[known] * len(names) + codes[known], minlength=(windows.max() + 1) * len(names)
    )
    table = pd.DataFrame(flat.reshape(-1, len(names)), columns=names)
    table = table.loc[:, table.sum(axis=0) > 0]  # a category no record of these has: no column
    return table[
        [o for o in OUTCOME_ORDER if o in table] + [o for o in names if o not in OUTCOME_ORDER]
    ]


def _factorized(values: pd.Series) -> tuple[np.ndarray, list]:
    """_factorized is (codes, -1 for null; names): a categorical's own codes (factorizing ten
    million texts again took a second a call), else pandas' factorize."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(), list(values.cat.categories)
    codes, names = pd.factorize(values.astype(object), use_na_sentinel=True)
    return codes, list(names)


def latency(requests: pd.DataFrame, window_s: float = 1.0) -> pd.DataFrame:
    """latency is per window: exact p50/p95/p99 from send and from schedule."""
    sent = requests[["t_sched", "latency_ms", "latency_sched_ms"]].dropna(subset=["latency_ms"])
    if sent.empty:
        return pd.DataFrame(columns=["t_s"])
    windows = window_of(sent, window_s).to_numpy()
    series = {}
    for source, column in (("send", "latency_ms"), ("schedule", "latency_sched_ms")):
        values = sent[column].to_numpy(dtype=float)
        for key, table in window_percentiles(windows, values, (50, 95, 99)).items():
            series[f"{source}_{key}"] = table
    present = np.unique(windows)
    return pd.DataFrame({"t_s": present * window_s} | {k: v[present] for k, v in series.items()})


def window_percentiles(windows: np.ndarray, values: np.ndarray, ps) -> dict[str, np.ndarray]:
    """window_percentiles is, per window number, each nearest-rank percentile of its values.

    One grouping sort of the window numbers, then a partial sort of each window.

    >>> window_percentiles(np.array([0, 0, 1, 0]), np.array([3.0, 1.0, 7.0, 2.0]), (50,))
    {'p50': array([2., 7.])}
    """
    order = np.argsort(windows, kind="stable")
    ordered, sizes = values[order], np.bincount(windows)
    ends = np.cumsum(sizes)
    result = {f"p{p}": np.full(len(sizes), np.nan) for p in ps}
    for window in np.flatnonzero(sizes):
        size = sizes[window]
        ranks = [max(1, math.ceil(size * p / 100)) - 1 for p in ps]
        chosen = np.partition(ordered[ends[window] - size : ends[window]], ranks)[ranks]
        for p, value in zip(ps, chosen, strict=True):
            result[f"p{p}"][window] = round(float(value), 3)
    return result


SHARE_GROUPS = {
    "accepted (202)": ("accepted",),
    "allocation failure (422)": ("allocation_failure",),
    "rate limited (429)": ("rate_limited",),
    "other": ERRORS,
}


def outcome_shares(requests: pd.DataFrame, window_s: float = 1.0) -> pd.DataFrame:
    """outcome_shares is per window the share of sent requests in each SHARE_GROUPS group."""
    columns = requests[["t_sched", "outcome"]]
    sent = columns[~columns["outcome"].isin(NOT_SENT)]
    if sent.empty:
        return pd.DataFrame(columns=["t_s", "sent", *SHARE_GROUPS])
    tally = _counts_per_window(window_of(sent, window_s).to_numpy(), sent["outcome"])
    tally = tally[tally.sum(axis=1) > 0]
    rows = pd.DataFrame({"t_s": tally.index * window_s, "sent": tally.sum(axis=1)})
    for group, outcomes in SHARE_GROUPS.items():
        present = [o for o in outcomes if o in tally]
        rows[group] = tally[present].sum(axis=1) / rows["sent"] if present else 0.0
    return rows.reset_index(drop=True)


def share_by_offered_rate(requests: pd.DataFrame, outcome: str, bins: int = 20) -> pd.DataFrame:
    """share_by_offered_rate is the share of `outcome` among sent requests per offered rate.

    The offered rate is the schedule's at each start (results/README.md). A scenario of
    steps and holds has few rates: each is its own point, at that rate. A ramp has many:
    they are split into `bins` even bins, each point at the mean rate of its starts.
    """
    columns = requests[["offered_rate", "outcome"]]
    sent = columns[~columns["outcome"].isin(NOT_SENT)].dropna(subset=["offered_rate"])
    if sent.empty:
        return pd.DataFrame(columns=["offered_per_s", "share", "sent"])
    rates = sent["offered_rate"].astype(float).round(3)
    if rates.nunique() > bins:
        low, high = float(rates.min()), float(rates.max())
        width = (high - low) / bins
        group = np.minimum(np.floor((rates - low) / width), bins - 1)
    else:
        group = rates
    hits = (sent["outcome"] == outcome).astype(float)
    grouped = pd.DataFrame({"rate": rates, "hit": hits}).groupby(group.to_numpy())
    table = grouped.agg(offered_per_s=("rate", "mean"), share=("hit", "mean"), sent=("hit", "size"))
    return table.reset_index(drop=True)


def distinct_rates(requests: pd.DataFrame) -> int:
    """distinct_rates is how many offered rates the run's starts were made at."""
    return int(requests["offered_rate"].dropna().round(3).nunique())


def share_over_time(requests: pd.DataFrame, outcome: str, window_s: float = 1.0) -> pd.DataFrame:
    """share_over_time is per window the share of `outcome` among sent requests (t_s, share)."""
    shares = outcome_shares(requests, window_s)
    group = next(g for g, members in SHARE_GROUPS.items() if outcome in members)
    if shares.empty:
        return pd.DataFrame(columns=["t_s", "share", "sent"])
    return pd.DataFrame({"t_s": shares["t_s"], "share": shares[group], "sent": shares["sent"]})


def occupancy_over_time(
    requests: pd.DataFrame, readings: pd.DataFrame, outcome: str, window_s: float = 1.0
) -> pd.DataFrame:
    """occupancy_over_time pairs each window's share of `outcome` with the slots held then.

    readings are the emulator's (t, holding_capacity) samples (emulator-metrics.jsonl):
    each window takes the last reading at or before its end. Deployments in ERROR hold
    no slot, so they are not counted (`active` would count them).
    """
    shares = share_over_time(requests, outcome, window_s)
    if shares.empty or readings.empty:
        return pd.DataFrame(columns=["t_s", "holding", "share", "sent"])
    start = float(requests["t_sched"].min())
    ordered = readings.dropna(subset=["holding_capacity"]).sort_values("t")
    ends = start + shares["t_s"].to_numpy() + window_s
    at = np.searchsorted(ordered["t"].to_numpy(), ends, "right") - 1
    known = at >= 0
    return pd.DataFrame(
        {
            "t_s": shares["t_s"].to_numpy()[known],
            "holding": ordered["holding_capacity"].to_numpy()[at[known]],
            "share": shares["share"].to_numpy()[known],
            "sent": shares["sent"].to_numpy()[known],
        }
    )


def wait_over_time(waits: pd.DataFrame, start: float, window_s: float = 1.0) -> pd.DataFrame:
    """wait_over_time is per window (by when matches were due) the players' wait p50/p95/p99."""
    if waits.empty:
        return pd.DataFrame(columns=["t_s", "p50", "p95", "p99"])
    windows = np.floor((waits["t_due"].to_numpy() - start) / window_s).astype(int)
    windows = np.maximum(windows, 0)
    table = window_percentiles(windows, waits["wait_s"].to_numpy(dtype=float), (50, 95, 99))
    present = np.unique(windows)
    return pd.DataFrame({"t_s": present * window_s} | {k: v[present] for k, v in table.items()})


def queue_length(requests: pd.DataFrame, window_s: float = 1.0) -> pd.DataFrame:
    """queue_length is, at the end of each window, how many attempts waited for the limiter.

    An attempt waits from its send minus its queue_ms until its send; one abandoned waits
    until its queue_ms ran out (from when it was due, or its retry's turn).
    """
    waited = requests[["t_sched", "t_send", "queue_ms"]].dropna(subset=["queue_ms"])
    if waited.empty:
        return pd.DataFrame(columns=["t_s", "waiting"])
    start = float(requests["t_sched"].min())
    leave = waited["t_send"].fillna(waited["t_sched"] + waited["queue_ms"] / 1000).to_numpy()
    enter = np.sort(leave - waited["queue_ms"].to_numpy() / 1000)
    leave = np.sort(leave)
    ends = start + np.arange(1, math.ceil((leave[-1] - start) / window_s) + 2) * window_s
    waiting = np.searchsorted(enter, ends, "right") - np.searchsorted(leave, ends, "right")
    return pd.DataFrame({"t_s": ends - start, "waiting": waiting})
