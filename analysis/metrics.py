"""The numbers of a run: counts, shares, rates and exact latency percentiles.

Percentiles are exact over the samples (nearest rank), never averaged.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import orjson
import pandas as pd

from analysis.cost import cost
from analysis.held import held_over_time, held_vs_forecast
from analysis.load import Run
from checks.outcomes import NOT_SENT

PERCENTILES = (50, 90, 95, 99)


def percentiles(values: pd.Series) -> dict[str, float | None]:
    """percentiles is p50/p90/p95/p99/max by nearest rank (None when there are no values).

    >>> percentiles(pd.Series([4.0, 1.0, 3.0, 2.0]))
    {'p50': 2.0, 'p90': 4.0, 'p95': 4.0, 'p99': 4.0, 'max': 4.0}
    """
    samples = values.to_numpy(dtype=float, na_value=np.nan)  # no index copied, as dropna() does
    samples = samples[~np.isnan(samples)]
    summary: dict[str, float | None]
    if samples.size == 0:
        summary = {f"p{p}": None for p in PERCENTILES}
        return summary | {"max": None}
    # A partial sort around the ranks wanted: a full sort of a million samples cost more.
    ranks = [max(1, math.ceil(samples.size * p / 100)) - 1 for p in PERCENTILES]
    chosen = np.partition(samples, [*ranks, samples.size - 1])
    summary = {f"p{p}": round(float(chosen[r]), 3) for p, r in zip(PERCENTILES, ranks, strict=True)}
    summary["max"] = round(float(chosen[-1]), 3)
    return summary


def wait_percentiles(waits: pd.Series, unserved: int) -> dict[str, float | None]:
    """wait_percentiles are the players' wait percentiles over every match: a served match by
    its wait, an unserved one (failed, abandoned) as never. A percentile (or the max) that
    falls among the unserved is None: never.

    >>> wait_percentiles(pd.Series([3.0, 1.0, 2.0]), unserved=1)
    {'p50': 2.0, 'p90': None, 'p95': None, 'p99': None, 'max': None}
    >>> wait_percentiles(pd.Series([1.0, 2.0]), unserved=0) == percentiles(pd.Series([1.0, 2.0]))
    True
    """
    served = waits.to_numpy(dtype=float, na_value=np.nan)
    served = np.sort(served[~np.isnan(served)])
    total = served.size + unserved
    summary: dict[str, float | None] = {}
    for p in (*PERCENTILES, 100):
        rank = max(1, math.ceil(total * p / 100)) - 1
        key = "max" if p == 100 else f"p{p}"
        summary[key] = round(float(served[rank]), 3) if total and rank < served.size else None
    return summary


def held(run: Run) -> pd.DataFrame:
    """held is analysis.held's frame of the servers held against the forecast's, made once."""
    if "held" not in run.derived:
        run.derived["held"] = held_over_time(run)
    frame: pd.DataFrame = run.derived["held"]
    return frame


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
            "peak_sent_rate_per_s": _peak_rate(requests, "t_send"),
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
            "warm_start": run.manifest.get("warm_start"),  # None: a run from before warm starts
            "time_to_ready_s": percentiles(time_to_ready(run)),
            "skipped_lines": run.skipped_lines,
            "foreign_files": run.foreign_files,
            "webhook_callbacks": run.callbacks,
        }
    )
    summary |= _capacity(run)
    summary |= matches(run, summary.get("capped_starts") or 0)
    summary["explanation_422"] = explain_422(summary)
    summary["by_endpoint"] = _breakdown(requests, "endpoint")
    summary["by_region"] = _breakdown(requests, "region")
    summary["placement"] = placement(requests)
    summary["held_vs_forecast"] = held_vs_forecast(held(run), run)
    summary["completeness"] = completeness(run, summary)
    summary["cost"] = cost(run, summary)
    summary["sensitivity"] = _sensitivity(run)
    return summary


def _sensitivity(run: Run) -> dict | None:
    """_sensitivity is the folder's sensitivity.json (`simulate --sensitivity`), when there."""
    path = run.folder / "sensitivity.json"
    try:
        facts = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return facts if isinstance(facts, dict) else None


FLEET_DEPLOY = "POST /v2/private-fleets/deployments"
CLOUD = "cloud"
PLACEMENT_BINS = 48  # the placement's time series: at most this many steps (a minute at least)


def placement(requests: pd.DataFrame) -> dict | None:
    """placement is where accepted deployments went, by region: on a private host or in the
    cloud, and the share of fleet deploys that overflowed (None: no record says where)."""
    if "host" not in requests or requests["host"].isna().all():
        return None
    # The columns it reads, then the rows: a mask over the whole frame copies every column.
    columns = requests[["t_sched", "endpoint", "region", "location", "host"]]
    accepted = columns[_is(requests["outcome"], "accepted")]
    if accepted.empty or accepted["host"].isna().all():
        return None
    regions = {
        str(region): _placed(rows)
        for region, rows in accepted.groupby(
            accepted["region"].astype(object).fillna("(none)"), sort=True
        )
    }
    return {"by_region": regions, "whole_run": _placed(accepted), "over_time": _over_time(accepted)}


def _placed(rows: pd.DataFrame) -> dict:
    host = rows["host"].astype(object)
    cloud, unknown = host.eq(CLOUD), host.isna()
    fleet = rows["endpoint"].astype(object).eq(FLEET_DEPLOY) & ~unknown
    fleet_cloud, fleet_known = int((cloud & fleet).sum()), int(fleet.sum())
    locations = rows["location"].astype(object).dropna().value_counts()
    return {
        "accepted": len(rows),
        "private": int((~cloud & ~unknown).sum()),
        "cloud": int(cloud.sum()),
        "unknown": int(unknown.sum()),
        "fleet_deploys": fleet_known,
        "share_overflow": round(fleet_cloud / fleet_known, 6) if fleet_known else None,
        "locations": {str(city): int(n) for city, n in locations.head(8).items()},
    }


def _over_time(accepted: pd.DataFrame) -> list[dict]:
    """_over_time is the accepted deployments per step of the run: private and cloud, by region."""
    t = accepted["t_sched"].to_numpy(dtype=float)
    start = float(t.min())
    step = max(60.0, math.ceil((float(t.max()) - start) / PLACEMENT_BINS / 60) * 60)
    frame = pd.DataFrame(
        {
            "t_s": ((t - start) // step * step).round(3),
            "region": accepted["region"].astype(object).fillna("(none)").to_numpy(),
            "cloud": accepted["host"].astype(object).eq(CLOUD).to_numpy(),
            "known": accepted["host"].notna().to_numpy(),
        }
    )
    frame = frame[frame["known"]]
    grouped = frame.groupby(["t_s", "region"], sort=True)["cloud"].agg(["size", "sum"])
    return [
        {"t_s": t_s, "region": region, "private": int(n - c), "cloud": int(c)}
        for (t_s, region), (n, c) in grouped.iterrows()
    ]


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


def matches(run: Run, capped: int = 0) -> dict:
    """matches is what became of the matches (arrivals): served, failed or abandoned, the
    attempts each took, the time attempts waited for the limiter, and the players' wait.
    `capped` are the demand's matches respect mode's cap never sent: matches with no server
    too (`matches.capped`), whose players wait for ever.

    A match is a record's `match` (its arrival); its fate is on its last attempt. The
    players' wait runs from when the match was due to its deployment's first ready event,
    or, when the run measured no readiness, to its 202 (`player_wait_to` says which); a
    match that got no server (failed, abandoned) counts as a wait that never ends.
    """
    requests = run.requests
    if requests.empty:
        unknown = _unrecorded(requests, 0, run.manifest)
        fates = {"served": 0, "failed": 0, "abandoned": 0, "unknown": unknown}
        return {
            "matches": {"total": unknown, "recorded": 0, **fates, "unserved": unknown}
            | ({"share_unserved": 1.0} if unknown else {}),
            "unrecorded_starts": unknown,
        }
    order = attempts_of(run)
    last_rows = order.rows[order.last]
    fates = _fates(requests, last_rows)
    sizes = np.diff(np.append(np.flatnonzero(order.first), len(order.rows)))
    waits, to = player_waits(run)
    tally = {fate: int(fates.get(fate, 0)) for fate in ("served", "failed", "abandoned")}
    # A due start with no record is a match of unknown fate: not served, as far as anyone knows.
    unknown = _unrecorded(requests, len(last_rows), run.manifest)
    unserved = tally["failed"] + tally["abandoned"] + unknown + capped
    total = len(last_rows) + unknown + capped
    return {
        "matches": {
            "total": total,
            "recorded": len(last_rows),
            **tally,
            "unknown": unknown,
            "capped": capped,
            "unserved": unserved,
            "share_unserved": round(unserved / total, 6),
        },
        "unrecorded_starts": unknown,
        "attempts_per_match": {"mean": round(float(sizes.mean()), 4), "max": int(sizes.max())},
        "queue_wait_ms": percentiles(requests["queue_ms"]),
        # Every match counts: one that never got a server (or whose fate is unknown) waited
        # for ever as far as the records tell.
        "player_wait_s": wait_percentiles(waits["wait_s"], unserved),
        "player_wait_to": to,
    }


INCOMPLETE_SHARE = 0.001  # lost records above this share of the due starts: INCOMPLETE


def completeness(run: Run, summary: dict) -> dict:
    """completeness says whether the records are the whole run: its schedule ran to its end
    (the manifest's `schedule_completed`; a run from before it was recorded is taken as
    whole) and no more than INCOMPLETE_SHARE of the due starts lack a record or lie in an
    unreadable line. `reason` says what is missing (None: complete)."""
    manifest = run.manifest
    scenario = manifest.get("scenario") or {}
    matches_seen = (summary.get("matches") or {}).get("recorded", 0)
    unrecorded = int(summary.get("unrecorded_starts") or 0)
    due = matches_seen + unrecorded
    lost = unrecorded + run.skipped_requests
    cut = manifest.get("schedule_completed") is False and not manifest.get("aborted")
    reasons = []
    if cut:
        ran = _ran_s(manifest)
        duration = scenario.get("duration_s")
        scheduled = scenario.get("expected_requests")
        reasons.append(
            f"the run stopped at {hms(ran)}"
            + (f" of its {hms(duration)}" if duration else "")
            + f"; {matches_seen:,} of its {scheduled:,} scheduled starts recorded"
            if scheduled is not None and ran is not None
            else "the run stopped before its schedule ended"
        )
    if due and lost > INCOMPLETE_SHARE * due:
        reasons.append(_lost_text(unrecorded, run.skipped_requests, due))
    return {
        "complete": not reasons,
        "schedule_completed": manifest.get("schedule_completed"),
        "due": due,
        "recorded": matches_seen,
        "unrecorded": unrecorded,
        "unreadable_lines": run.skipped_requests,
        "ran_s": _ran_s(manifest),
        "reason": "; ".join(reasons) or None,
    }


def _lost_text(unrecorded: int, unreadable: int, due: int) -> str:
    """_lost_text says which records are missing: starts with none, lines unreadable."""
    lines = f"{unreadable:,} unreadable record line{'s' * (unreadable != 1)}"
    if not unrecorded:
        return f"{lines} (of {due:,} due starts; a start's fate may be lost with it)"
    extra = f"; {lines}" if unreadable else ""
    return (
        f"{unrecorded:,} of the {due:,} due starts have no record ({unrecorded / due:.1%}{extra})"
    )


def _ran_s(manifest: dict) -> float | None:
    """_ran_s is how long the run ran: its end less its epoch (None: not recorded)."""
    ended, epoch = manifest.get("ended_at"), manifest.get("epoch")
    return None if ended is None or epoch is None else round(float(ended) - float(epoch), 3)


def hms(seconds: float) -> str:
    """hms is a run time as h:mm:ss."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _unrecorded(requests: pd.DataFrame, matches_seen: int, manifest: dict) -> int:
    """_unrecorded counts the scheduled starts that have no record at all: arrivals are
    numbered 0, 1, 2, ... over the whole run, so a gap is a start lost (due while a dead or
    cut-off worker still owned it, or its records never reached the folder). Below the last
    recorded start the numbers tell; past it only a run that ran its whole schedule
    (the manifest's `schedule_completed`) knows how many were due: `expected_requests`."""
    match = (
        requests["match"].to_numpy(dtype="int64", na_value=-1)
        if "match" in requests
        else np.full(len(requests), -1)
    )
    known = match >= 0
    due = int(match.max()) + 1 if known.any() else 0
    if manifest.get("schedule_completed"):
        due = max(due, int(manifest.get("scenario", {}).get("expected_requests") or 0))
    return max(0, due - (matches_seen - int((~known).sum())))


ATTEMPTS = 1 << 16  # more attempts than any client makes: match x ATTEMPTS + attempt sorts


class MatchOrder(NamedTuple):
    """MatchOrder is the records' positions ordered by match then attempt, and which of them
    open and close a match."""

    rows: np.ndarray
    first: np.ndarray  # over rows: a match's first attempt
    last: np.ndarray  # over rows: a match's last attempt (where its fate is)


def attempts_of(run: Run) -> MatchOrder:
    """attempts_of orders the run's attempts by match, once (the summary and the curves use it)."""
    if "attempts" not in run.derived:
        run.derived["attempts"] = _match_order(run.requests)
    return run.derived["attempts"]


def _match_order(requests: pd.DataFrame) -> MatchOrder:
    """_match_order sorts by one int64 key, match then attempt (a lexsort of two float keys
    held four arrays of the run's length at once: half a GB at 10 million records)."""
    match = requests["match"].to_numpy(dtype="int64", na_value=-1)
    missing = match < 0
    if missing.all():  # a log from before matches: each record a match of its own
        rows = np.arange(len(match))
        every = np.ones(len(match), dtype=bool)
        return MatchOrder(rows, every, every)
    match[missing] = match.max() + 1 + np.flatnonzero(missing)
    attempt = requests["attempt"].to_numpy(dtype="int64", na_value=1).clip(0, ATTEMPTS - 1)
    rows = np.argsort(match * ATTEMPTS + attempt, kind="stable")
    ordered = match[rows]
    change = ordered[1:] != ordered[:-1]
    return MatchOrder(rows, np.append(True, change), np.append(change, True))


def _fates(requests: pd.DataFrame, rows: np.ndarray) -> dict[str, int]:
    """_fates counts the fates on the given (last) attempts; a log without them: by the answer.

    On the categories' codes: taking rows of a Series copies its index too (80 MB a
    column at 10 million records)."""
    final = requests["final"].array
    codes = final.codes[rows]
    tally = np.bincount(codes[codes >= 0], minlength=len(final.categories))
    fates = {str(name): int(n) for name, n in zip(final.categories, tally, strict=True)}
    unknown = codes < 0
    if unknown.any():
        served = int(_is(requests["outcome"], "accepted")[rows][unknown].sum())
        fates["served"] = fates.get("served", 0) + served
        fates["failed"] = fates.get("failed", 0) + int(unknown.sum()) - served
    return fates


def _is(column: pd.Series, value: str) -> np.ndarray:
    """_is marks the rows of a categorical column that hold value (from its codes)."""
    categories = column.array.categories
    if value not in categories:
        return np.zeros(len(column), dtype=bool)
    return column.array.codes == categories.get_loc(value)


def player_waits(run: Run) -> tuple[pd.DataFrame, str]:
    """player_waits is, per served match, when it was due (t_due) and the players' wait in
    seconds to its first ready event (or to its 202: the second value says which)."""
    if run.requests.empty:
        return pd.DataFrame(columns=["t_due", "wait_s"]), "accepted"
    if "player_waits" not in run.derived:
        run.derived["player_waits"] = _player_waits(run, attempts_of(run))
    return run.derived["player_waits"]


def served_waits(run: Run, order: MatchOrder) -> tuple[np.ndarray, np.ndarray]:
    """served_waits are the served matches' waits (due to ready, else to accepted) and which
    of the run's matches (in `order`) they are: a mask over its matches."""
    requests = run.requests
    last_rows = order.rows[order.last]
    served = np.asarray(_is(requests["outcome"], "accepted"))[last_rows]
    frame, _ = player_waits(run)
    if len(frame) == served.sum():
        return frame["wait_s"].to_numpy(dtype=float), served
    # Ready for some only: the served matches whose readiness is known.
    ids = requests["request_id"].to_numpy(dtype=object)[last_rows]
    ready = run.events[run.events["event"] == "ready"]
    known = np.isin(ids, ready["request_id"].astype(object).to_numpy()) & served
    return frame["wait_s"].to_numpy(dtype=float), known


def _player_waits(run: Run, order: MatchOrder) -> tuple[pd.DataFrame, str]:
    requests = run.requests
    last_rows = order.rows[order.last]
    served = _is(requests["outcome"], "accepted")[last_rows]  # a 202 ends it
    rows = last_rows[served]
    t_due = requests["t_sched"].to_numpy(dtype=float)[order.rows[order.first][served]]
    ready = run.events[run.events["event"] == "ready"] if not run.events.empty else None
    if ready is not None and not ready.empty and "request_id" in requests:
        first = ready.groupby("request_id", observed=True)["t_received"].min()
        ids = pd.Series(requests["request_id"].iloc[rows].to_numpy(dtype=object))
        at = ids.map(first).to_numpy(dtype=float)
        known = ~np.isnan(at)
        frame = {"t_due": t_due[known], "wait_s": at[known] - t_due[known]}
        return pd.DataFrame(frame, copy=False), "ready"
    # In place, one array at a time: each is the length of the run's served matches.
    wait = requests["latency_ms"].to_numpy(dtype=float, na_value=np.nan)[rows]
    wait /= 1000
    wait += requests["t_send"].to_numpy(dtype=float)[rows]
    wait -= t_due
    return pd.DataFrame({"t_due": t_due, "wait_s": wait}, copy=False), "accepted"


COVERAGE_CAUSES = ("out_of_range", "no_cached_location", "unlocatable_users")


def _capacity(run: Run) -> dict:
    """_capacity is why 422s came (by cause) and, with the emulator's readings, how full it was."""
    requests = run.requests
    refused = requests[requests["outcome"] == "allocation_failure"]
    causes = counts(refused["cause"].astype(object).fillna("unknown")) if len(refused) else {}
    summary: dict[str, Any] = {
        "allocation_failure_causes": {str(k): int(v) for k, v in dict(causes).items()}
    }
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
    # Readings from before the fleet fields have none (NA): no fleet deploys to tell of.
    private, cloud = (
        0 if pd.isna(v := last.get(k)) else int(v) for k in ("fleet_private", "fleet_cloud")
    )
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
    """_after_warmup is the latencies of starts due after the warm-up, and the warm-up applied.

    Only the two latency columns are filtered: copying every column of a million records
    cost a sixth of the summary.
    """
    latencies = requests[["latency_ms", "latency_sched_ms"]]
    times = requests["t_sched"]
    if requests.empty or _span_s(requests) <= 2 * warmup_s:
        return latencies, 0.0
    return latencies[(times >= times.min() + warmup_s).to_numpy()], warmup_s


def _peak_rate(requests: pd.DataFrame, column: str = "t_sched") -> float | None:
    """_peak_rate is the most starts in one second (from the first): by their due time, or
    (column t_send) the most sent in one second, what the API's limit counts."""
    times = requests[column].dropna()
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
    """_breakdown is each value of a few-valued column's requests, outcomes and latency.

    From the categories' codes, a value at a time: a group-by copied every column it
    grouped (a GB at 10 million records)."""
    groups = {}
    values, outcome = requests[column].array, requests["outcome"].array
    latency = requests["latency_ms"].to_numpy(dtype=float, na_value=np.nan)
    for code, key in enumerate(values.categories):
        rows = values.codes == code
        if not rows.any():
            continue
        outcomes = _tally(outcome, rows)
        groups[str(key)] = {
            "requests": int(rows.sum()),
            "sent": int(sum(v for k, v in outcomes.items() if k not in NOT_SENT)),
            **outcome_shares(outcomes),
            "latency_ms": percentiles(pd.Series(latency[rows], copy=False)),
        }
    return groups


def _tally(column: pd.Categorical, rows: np.ndarray) -> pd.Series:
    """_tally is counts() of a categorical column's chosen rows, from its codes."""
    codes = column.codes[rows]
    tally = np.bincount(codes[codes >= 0], minlength=len(column.categories))
    counted = pd.Series(tally, index=pd.Index(column.categories, dtype=object))
    counted = counted.sort_values(ascending=False, kind="stable")
    return counted[counted > 0]
