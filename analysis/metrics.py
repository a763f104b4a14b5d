"""The numbers of a run: counts, shares, rates and exact latency percentiles.

Percentiles are exact over the samples (nearest rank), never averaged.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.load import Run

PERCENTILES = (50, 90, 95, 99)
NOT_SENT = ("dropped", "backoff", "over_budget", "abandoned")  # outcomes of starts never sent


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


WARMUP_S = 5.0


def summarize(run: Run, warmup_s: float = WARMUP_S) -> dict:
    """summarize is summary.json's content for a run.

    The headline latency percentiles leave out the starts due in the first warmup_s
    seconds (connections opening, first imports: a p95 spike of about 40 ms in the first
    3-6 s of every run here); `latency_ms.whole_run` keeps them. A run no longer than
    twice the warm-up keeps every start.
    """
    requests = run.requests
    steady, warmup_s = _after_warmup(requests, warmup_s)
    summary = (
        _totals(requests, run.manifest.get("epoch"))
        | _demand(run)
        | {
            "peak_offered_rate_per_s": _peak_rate(requests),
            "warmup_s": warmup_s,
            "latency_ms": {
                "from_send": percentiles(steady["latency_ms"]),
                "from_schedule": percentiles(steady["latency_sched_ms"]),
                "whole_run": {
                    "from_send": percentiles(requests["latency_ms"]),
                    "from_schedule": percentiles(requests["latency_sched_ms"]),
                },
            },
            "time_scale": (run.manifest.get("emulator") or {}).get("time_scale"),
            "time_to_ready_s": percentiles(time_to_ready(run)),
            "skipped_lines": run.skipped_lines,
            "foreign_files": run.foreign_files,
            "webhook_callbacks": run.callbacks,
        }
    )
    summary |= _capacity(run)
    summary |= matches(run)
    summary["explanation_422"] = explain_422(summary)
    summary["by_endpoint"] = _breakdown(requests, "endpoint")
    summary["by_region"] = _breakdown(requests, "region")
    return summary


def _totals(requests: pd.DataFrame, epoch: float | None = None) -> dict:
    statuses = counts(requests["status"].dropna()).rename(index=str)
    span = _span_s(requests, epoch)
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


def matches(run: Run) -> dict:
    """matches is what became of the matches (arrivals): served, failed or abandoned, the
    attempts each took, the time attempts waited for the limiter, and the players' wait.

    A match is a record's `match` (its arrival); its fate is on its last attempt. The
    players' wait runs from when the match was due to its deployment's first ready event,
    or, when the run measured no readiness, to its 202 (`player_wait_to` says which).
    """
    requests = run.requests
    if requests.empty:
        return {"matches": {"total": 0, "served": 0, "failed": 0, "abandoned": 0}}
    frame = attempts_of(run)
    last = frame.groupby("match", sort=False).tail(1)
    fates = last["fate"].value_counts()
    per_match = frame.groupby("match", sort=False).size()
    waits, to = _player_waits(run, frame)
    waits = waits["wait_s"]
    return {
        "matches": {
            "total": len(last),
            **{fate: int(fates.get(fate, 0)) for fate in ("served", "failed", "abandoned")},
        },
        "attempts_per_match": {
            "mean": round(float(per_match.mean()), 4),
            "max": int(per_match.max()),
        },
        "queue_wait_ms": percentiles(frame["queue_ms"]),
        "player_wait_s": percentiles(waits),
        "player_wait_to": to,
    }


def attempts_of(run: Run) -> pd.DataFrame:
    """attempts_of is the run's attempts by match, made once (the summary and the curves use it)."""
    if run.attempts is None:
        run.attempts = _attempts(run.requests)
    return run.attempts


def _attempts(requests: pd.DataFrame) -> pd.DataFrame:
    """_attempts is each record's match, attempt and fate, filled in for logs that lack them."""
    match = requests["match"].astype("float64")
    fallback = pd.Series(np.arange(len(requests)), index=requests.index, dtype="float64")
    attempt = requests["attempt"].astype("float64").fillna(1)
    fate = requests["final"].astype(object)
    guessed = np.where(requests["outcome"].astype(object) == "accepted", "served", "failed")
    frame = pd.DataFrame(
        {
            "match": match.fillna(fallback - len(requests)).to_numpy(),  # old logs: one each
            "attempt": attempt.to_numpy(),
            "fate": np.where(fate.isna(), guessed, fate),
            "queue_ms": requests["queue_ms"].to_numpy(),
            "t_sched": requests["t_sched"].to_numpy(),
            "t_send": requests["t_send"].to_numpy(),
            "latency_ms": requests["latency_ms"].to_numpy(),
            "outcome": requests["outcome"].astype(object).to_numpy(),
            "request_id": requests["request_id"].to_numpy() if "request_id" in requests else None,
        }
    )
    return frame.sort_values(["match", "attempt"], kind="stable")


def player_waits(run: Run) -> tuple[pd.DataFrame, str]:
    """player_waits is, per served match, when it was due (t_due) and the players' wait in
    seconds to its first ready event (or to its 202: the second value says which)."""
    if run.requests.empty:
        return pd.DataFrame(columns=["t_due", "wait_s"]), "accepted"
    return _player_waits(run, attempts_of(run))


def _player_waits(run: Run, frame: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    due = frame.groupby("match", sort=False)["t_sched"].min()
    served = frame[frame["outcome"] == "accepted"].drop_duplicates("match")
    ready = run.events[run.events["event"] == "ready"] if not run.events.empty else None
    if ready is not None and not ready.empty and served["request_id"].notna().any():
        first = ready.groupby("request_id", observed=True)["t_received"].min()
        at = served.set_index("request_id")["match"]
        joined = pd.concat([at, first], axis=1, join="inner")
        t_due = due.loc[joined["match"]].to_numpy()
        waits = joined["t_received"].to_numpy() - t_due
        return pd.DataFrame({"t_due": t_due, "wait_s": waits}), "ready"
    t_due = due.loc[served["match"]].to_numpy()
    waits = (served["t_send"] + served["latency_ms"] / 1000).to_numpy() - t_due
    return pd.DataFrame({"t_due": t_due, "wait_s": waits.astype(float)}), "accepted"


COVERAGE_CAUSES = ("out_of_range", "no_cached_location", "unlocatable_users")


def _capacity(run: Run) -> dict:
    """_capacity is why 422s came (by cause) and, with the emulator's readings, how full it was."""
    requests = run.requests
    refused = requests[requests["outcome"] == "allocation_failure"]
    causes = counts(refused["cause"].astype(object).fillna("unknown")) if len(refused) else {}
    summary = {"allocation_failure_causes": {str(k): int(v) for k, v in dict(causes).items()}}
    world = (run.manifest.get("emulator") or {}).get("world") or {}
    readings = run.emulator.dropna(subset=["holding_capacity"]).sort_values("t")
    if not readings.empty:
        capacity = (world.get("capacity") or 0) + (world.get("private_capacity") or 0)
        first = float(refused["t_sched"].min()) if len(refused) else None
        before = readings[readings["t"] <= first] if first is not None else readings.iloc[:0]
        summary["occupancy"] = {
            "capacity": capacity or None,
            "peak_holding": int(readings["holding_capacity"].max()),
            "first_422_s": round(first - float(requests["t_sched"].min()), 3) if first else None,
            "holding_at_first_422": int(before["holding_capacity"].iloc[-1])
            if len(before)
            else None,
        }
        summary["fleet"] = _fleet(readings)
    return summary


def _fleet(readings: pd.DataFrame) -> dict | None:
    """_fleet is where fleet deploys went: private hosts, or overflow to the cloud (None: none)."""
    last = readings.iloc[-1]
    private, cloud = (int(last.get(k) or 0) for k in ("fleet_private", "fleet_cloud"))
    if private + cloud == 0:
        return None
    return {
        "placed_private": private,
        "placed_cloud": cloud,
        "overflow_share": round(cloud / (private + cloud), 6),
    }


def explain_422(summary: dict) -> str | None:
    """explain_422 says in a sentence what the run's 422s come from, and what would help.

    >>> explain_422({"allocation_failure_causes": {"out_of_range": 3, "no_capacity": 1}})
    '3 of 4 422s are out_of_range: a matter of region coverage (locations within reach of \
the players, cached images, addresses that locate), not of capacity'
    """
    causes = summary.get("allocation_failure_causes") or {}
    if not causes:
        return None
    total = sum(causes.values())
    top, count = max(causes.items(), key=lambda item: item[1])
    if top in COVERAGE_CAUSES:
        return (
            f"{count} of {total} 422s are {top}: a matter of region coverage (locations within "
            "reach of the players, cached images, addresses that locate), not of capacity"
        )
    occupancy = summary.get("occupancy") or {}
    held, capacity = occupancy.get("holding_at_first_422"), occupancy.get("capacity")
    if held is None or not capacity:
        return f"{count} of {total} 422s are {top}"
    if held >= 0.95 * capacity:
        return (
            f"422s began {occupancy['first_422_s']:.3g} s in, with {held} of {capacity} slots "
            "held: the world filled up with matches (their length and the time they run), "
            "not the request rate; more capacity or shorter matches would help"
        )
    return (
        f"422s ({top}) began with {held} of {capacity} slots held: the locations near the "
        "players filled up while others had room; capacity where the players are would help"
    )


def _after_warmup(requests: pd.DataFrame, warmup_s: float) -> tuple[pd.DataFrame, float]:
    """_after_warmup is the starts due after the warm-up, and the warm-up actually applied."""
    times = requests["t_sched"]
    if requests.empty or _span_s(requests) <= 2 * warmup_s:
        return requests, 0.0
    return requests[times >= times.min() + warmup_s], warmup_s


def _peak_rate(requests: pd.DataFrame) -> float | None:
    """_peak_rate is the most starts due in one second (from the first start): starts/s."""
    times = requests["t_sched"].dropna()
    if times.empty:
        return None
    return float(np.bincount(np.floor(times - times.min()).astype(int)).max())


def demand_by(segments: list[list[float]], t: float) -> float:
    """demand_by is how many starts the demand asked for by schedule time t (manifest's segments).

    Each segment is [start_s, end_s, rate_start, rate_end], the rate moving linearly.

    >>> demand_by([[0, 10, 0, 10], [10, 20, 10, 10]], 15)
    100.0
    """
    total = 0.0
    for start, end, rate_start, rate_end in segments:
        if t <= start:
            break
        tau = min(t, end) - start
        slope = (rate_end - rate_start) / (end - start) if end > start else 0.0
        total += rate_start * tau + slope * tau * tau / 2
    return total


def _demand(run: Run) -> dict:
    """_demand is the demand before respect mode's cap, and the starts the cap left out.

    Counted over the run's span (from the schedule's time zero to the last start), so a
    stopped run is compared with the demand of the time it ran. None when the manifest
    does not record the demand; no capped starts when the demand never passed the cap.
    """
    demand, epoch = run.manifest.get("demand") or {}, run.manifest.get("epoch")
    firsts = run.requests[run.requests["attempt"].fillna(1) == 1]  # a match each, not retries
    times = firsts["t_sched"].dropna()
    span = _span_s(firsts, epoch)
    if not demand.get("segments") or epoch is None or not span:
        return dict.fromkeys(
            ("demand_total", "demand_rate_per_s", "capped_starts", "share_capped")
        ) | {"demand_above_limit_s": demand.get("above_limit_s")}
    total = len(times)
    end = span
    asked = math.floor(demand_by(demand["segments"], end) + 1e-3)  # unix-time rounding
    capped = demand.get("above_limit_s") and demand.get("capped", True)
    asked = max(asked, total) if capped else total
    return {
        "demand_total": asked,
        "demand_rate_per_s": round(asked / span, 3),
        "capped_starts": asked - total,
        "share_capped": round((asked - total) / asked, 6) if asked else None,
        "demand_above_limit_s": demand.get("above_limit_s"),
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


def _span_s(requests: pd.DataFrame, epoch: float | None = None) -> float:
    """_span_s is the run's length: from the schedule's time zero (epoch, when known) or the
    first start, to the last start plus half a mean interval (one without an epoch).

    From the epoch, a matchmaker's tick counts the seconds its first batch was forming.
    """
    times = requests["t_sched"].dropna()
    if len(times) < 2:
        return 0.0
    first, last = float(times.min()), float(times.max())
    interval = (last - first) / (len(times) - 1)
    if epoch is not None and first >= epoch:
        return last - epoch + interval / 2
    return last - first + interval


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
