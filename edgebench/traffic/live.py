"""Live numbers for Locust's web UI: per endpoint, offered vs accepted, outcome shares, readiness.

Each traffic process counts into a LiveCounts; what it counted since its last
report travels to the master with Locust's own worker reports (or is taken
directly in a single process), and a LiveBoard adds up every worker's and turns
the totals into the rows of the web UI's "Edgegap deploys" tab.

    counts.count(endpoint, outcome)          # every scheduled start, sent or not
    board.merge(counts.take())                # on the master, per worker report
    board.rows(now)                           # the tab's table
    board.series                              # the tab's live charts, a point per merge
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict, deque
from itertools import chain

from checks.outcomes import shares

RATE_WINDOW_S = 10.0
TTR_SAMPLES = 10_000
SERIES_POINTS = 3_600  # the live charts' last hour at a point a second
COLUMNS = [
    ("endpoint", "Endpoint"),
    ("offered", "Offered /s"),
    ("accepted", "Accepted /s"),
    ("share_202", "202"),
    ("share_422", "422"),
    ("share_429", "429"),
    ("share_error", "Errors"),
    ("dropped", "Dropped starts"),
    ("ttr_p50", "Time to ready p50"),
    ("ttr_p95", "Time to ready p95"),
]
TOTAL = "All endpoints"


class LiveCounts:
    """LiveCounts is one process's tally since its last report."""

    def __init__(self) -> None:
        self._outcomes: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._ready_s: list[tuple[str, float]] = []
        self._sent_at: dict[str, tuple[str, float]] = {}
        self._waits_s: list[float] = []
        self.queued = 0  # attempts waiting for the client's limiter now

    def served(self, wait_s: float) -> None:
        """served notes a served match's players' wait, from its due time to its 202."""
        self._waits_s.append(wait_s)

    def count(self, endpoint: str, outcome: str) -> None:
        """count tallies one scheduled start by its outcome, sent or not."""
        self._outcomes[endpoint][outcome] += 1

    def accepted(self, endpoint: str, request_id: str, sent: float) -> None:
        """accepted notes when a deployment was asked for, to time its READY event."""
        self._sent_at[request_id] = (endpoint, sent)

    def awaiting(self) -> int:
        """awaiting counts accepted deployments whose first ready or error event has not come."""
        return len(self._sent_at)

    def event(self, record: dict) -> None:
        """event takes an events-file record; a first READY gives a time to ready."""
        if record.get("event") == "terminated":
            return
        accepted = self._sent_at.pop(record.get("request_id") or "", None)
        if accepted is not None and record.get("event") == "ready":
            endpoint, sent = accepted
            self._ready_s.append((endpoint, record["t_received"] - sent))

    def take(self) -> dict:
        """take is the tally since the last take (a worker report's payload), and resets it."""
        report = {
            "outcomes": {e: dict(c) for e, c in self._outcomes.items()},
            "ready_s": self._ready_s,
            "waits_s": self._waits_s,
            "queued": self.queued,
        }
        self._outcomes = defaultdict(Counter)
        self._ready_s, self._waits_s = [], []
        return report


class CountedEvents:
    """CountedEvents writes each events-file record and counts it live (a RecordWriter's add)."""

    def __init__(self, writer, counts: LiveCounts) -> None:
        self.writer, self.counts = writer, counts

    def add(self, record: dict) -> None:
        self.writer.add(record)
        self.counts.event(record)


class LiveBoard:
    """LiveBoard adds up every process's reports: totals, recent rates, times to ready."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.outcomes: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._ready_s: defaultdict[str, deque[float]] = defaultdict(
            lambda: deque(maxlen=TTR_SAMPLES)
        )
        self._history: deque[tuple[float, dict[str, tuple[int, int]], Counter[str]]] = deque()
        # (reported at, that report's waits of served matches, sorted): the window's
        # percentiles sort their concatenation, which runs of sorted values make cheap (a
        # 1,000/s run's 10,000 waits, sorted one by one, held a process for 2 ms a second).
        self._waits: deque[tuple[float, list[float]]] = deque()
        self._queued: dict[str, int] = {}  # each process's attempts waiting for its limiter
        self.series: deque[dict] = deque(maxlen=SERIES_POINTS)
        self.report_url = ""

    def merge(self, report: dict | None, now: float, source: str = "") -> None:
        """merge adds a report from LiveCounts.take (from process `source`) and notes the
        totals at `now`, and the point they make on the live charts."""
        if report:
            for endpoint, counts in report.get("outcomes", {}).items():
                self.outcomes[endpoint].update(counts)
            for endpoint, seconds in report.get("ready_s", []):
                self._ready_s[endpoint].append(seconds)
            if waits := report.get("waits_s"):
                self._waits.append((now, sorted(waits)))
            self._queued[source] = report.get("queued", 0)
        totals = {e: (sum(c.values()), c["accepted"]) for e, c in self.outcomes.items()}
        self._history.append((now, totals, sum(self.outcomes.values(), Counter())))
        while len(self._history) > 2 and self._history[1][0] <= now - RATE_WINDOW_S:
            self._history.popleft()
        while self._waits and self._waits[0][0] <= now - RATE_WINDOW_S:
            self._waits.popleft()
        self.series.append(self._point(now))

    def _point(self, now: float) -> dict:
        """_point is the charts' figures at `now`: rates, shares and waits over the last
        RATE_WINDOW_S, the queue now."""
        offered, accepted = self._rates(sorted(self.outcomes))
        (_, _, before), (_, _, after) = self._history[0], self._history[-1]
        recent = shares(after - before)
        waits = sorted(chain.from_iterable(chunk for _, chunk in self._waits))
        return {
            "t": round(now, 3),
            "offered": round(offered, 3),
            "accepted": round(accepted, 3),
            **{name: None if share is None else round(share, 4) for name, share in recent.items()},
            "wait_p50": _rank(waits, 50),
            "wait_p95": _rank(waits, 95),
            "queue": sum(self._queued.values()),
        }

    def rows(self) -> list[dict]:
        """rows are the tab's table: one per endpoint, then the total."""
        endpoints = sorted(self.outcomes)
        rows = [self._row(e, self.outcomes[e], self._ready_s[e], [e]) for e in endpoints]
        if len(endpoints) > 1:
            everything = sum(self.outcomes.values(), Counter())
            ready = [s for e in endpoints for s in self._ready_s[e]]
            rows.append(self._row(TOTAL, everything, ready, endpoints))
        if self.report_url:
            rows.append({"endpoint": f"Report of the last run: {self.report_url}"})
        return rows

    def _row(self, name: str, outcomes: Counter, ready, endpoints: list[str]) -> dict:
        offered, accepted = self._rates(endpoints)
        ordered = sorted(ready)
        return {
            "endpoint": name,
            "offered": f"{offered:.1f}",
            "accepted": f"{accepted:.1f}",
            **{
                key: "-" if share is None else f"{share:.1%}"
                for key, share in shares(outcomes).items()
            },
            "dropped": str(outcomes["dropped"]),
            "ttr_p50": _seconds(ordered, 50),
            "ttr_p95": _seconds(ordered, 95),
        }

    def _rates(self, endpoints: list[str]) -> tuple[float, float]:
        """_rates are starts/s and 202s/s over the last RATE_WINDOW_S of reports."""
        if len(self._history) < 2:
            return 0.0, 0.0
        (then, old, _), (now, new, _) = self._history[0], self._history[-1]
        span = max(now - then, 1e-9)
        starts = sum(new.get(e, (0, 0))[0] - old.get(e, (0, 0))[0] for e in endpoints)
        accepted = sum(new.get(e, (0, 0))[1] - old.get(e, (0, 0))[1] for e in endpoints)
        return starts / span, accepted / span


def _rank(ordered: list[float], percentile: int) -> float | None:
    """_rank is the nearest-rank percentile of sorted values (None: no values)."""
    if not ordered:
        return None
    return round(ordered[max(1, math.ceil(len(ordered) * percentile / 100)) - 1], 4)


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.1%}"


def _seconds(ordered: list[float], percentile: int) -> str:
    value = _rank(ordered, percentile)
    return "-" if value is None else f"{value:.2f} s"
