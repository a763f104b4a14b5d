"""Demand from a launch forecast: concurrent players over time become match starts per second.

By Little's law (../shared/notes/capacity-planning.md), with a share s of the concurrent
players (CCU) in matches of p players (the mean of `[players]`) lasting L seconds on
average, matches start at

    rate(t) = s x CCU(t) / (p x L)   per second,  and   servers held = s x CCU(t) / p.

The CCU curve is piecewise linear between its points, so the rate is too: each stretch
between two points becomes one piece of the schedule. `window` runs a slice of it.

    forecast = Forecast.of(scenario)
    forecast.pieces()            # the schedule's (start, end, rate, rate, stage) pieces
    forecast.plan(limit, cap)    # the table and the peak, the queue in front of the limit
"""

from __future__ import annotations

import bisect
import csv
import itertools
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from edgebench._errors import ScenarioError

if TYPE_CHECKING:
    from edgebench.plan._schema import Scenario

PLAN_ROWS = 24  # rows of the plan's table, evenly over the forecast (plus its points)
QUEUE_STEPS = 20_000  # steps of the fluid queue's integration over the run


@dataclass(frozen=True)
class Forecast:
    """Forecast is the CCU curve (seconds from its start), per region when it has columns."""

    times: tuple[float, ...]
    ccu: tuple[float, ...]
    regions: dict[str, tuple[float, ...]]  # region -> its players at each time ({} when none)
    matches_per_player_s: float  # s / (p x L): match starts per second per concurrent player
    servers_per_player: float  # s / p: servers held per concurrent player
    window: tuple[float, float] | None = None
    origin: datetime | None = None  # the clock time of forecast time 0 (ISO times), else None

    @classmethod
    def of(cls, scenario: Scenario) -> Forecast:
        """of is the scenario's [demand] as a forecast (its points are already parsed)."""
        demand = scenario.demand
        if demand is None:
            raise ValueError(f"{scenario.source}: no [demand] to forecast from")
        sizes, weights = (
            scenario.players.sizes,
            scenario.players.weights or [1] * len(scenario.players.sizes),
        )
        mean_players = sum(s * w for s, w in zip(sizes, weights, strict=True)) / sum(weights)
        length = demand.mean_match_length_s
        return cls(
            times=tuple(t for t, _ in demand.ccu),
            ccu=tuple(n for _, n in demand.ccu),
            regions={k: tuple(v) for k, v in demand.region_ccu.items()},
            matches_per_player_s=demand.share_in_matches / (mean_players * length),
            servers_per_player=demand.share_in_matches / mean_players,
            window=(demand.window[0], demand.window[-1]) if demand.window else None,
            origin=datetime.fromisoformat(demand.origin) if demand.origin else None,
        )

    def clock(self, t: float, tz: tzinfo = UTC) -> str:
        """clock is forecast time t as a reader wants it: a clock time ("20:00 UTC") when the
        forecast gave ISO times, else time from its start ("2:30:00").

        >>> ten = datetime(2026, 12, 5, 10, tzinfo=UTC)
        >>> Forecast((0.0,), (1.0,), {}, 1.0, 1.0, origin=ten).clock(36000)
        '20:00 UTC'
        """
        if self.origin is None:
            return elapsed(t)
        moment = (self.origin + timedelta(seconds=t)).astimezone(tz)
        first_day = self.origin.astimezone(tz).date()
        day = "" if moment.date() == first_day else moment.strftime("%b %d ")
        return f"{day}{moment:%H:%M} {moment.tzname()}"

    @property
    def span(self) -> tuple[float, float]:
        """span is the stretch the run covers, in forecast time: the window, or all of it."""
        return self.window or (self.times[0], self.times[-1])

    def ccu_at(self, t: float) -> float:
        """ccu_at is the forecast's players at forecast time t (linear between points)."""
        return _interpolate(self.times, self.ccu, t)

    def rate_at(self, t: float) -> float:
        return self.matches_per_player_s * self.ccu_at(t)

    def pieces(self, factor: float = 1.0) -> list[tuple[float, float, float, float, int]]:
        """pieces are the schedule's linear pieces of rate, in run time (0: the span's start)."""
        start, end = self.span
        cuts = sorted({start, end, *(t for t in self.times if start < t < end)})
        k = self.matches_per_player_s * factor
        return [
            (a - start, b - start, k * self.ccu_at(a), k * self.ccu_at(b), self._stage(a))
            for a, b in itertools.pairwise(cuts)
        ]

    def region_shares_at(self, t: float) -> dict[str, float] | None:
        """region_shares_at are the regions' shares of the players at run time t (None: fixed)."""
        if not self.regions:
            return None
        at = self.span[0] + t
        times = self.times
        k = bisect.bisect_left(times, at)  # one search for every region: each arrival asks
        if k == 0 or k == len(times) or times[k] == times[k - 1]:
            players = {name: _interpolate(times, v, at) for name, v in self.regions.items()}
        else:
            u = (at - times[k - 1]) / (times[k] - times[k - 1])
            players = {name: v[k - 1] + (v[k] - v[k - 1]) * u for name, v in self.regions.items()}
        total = sum(players.values())
        return {name: n / total for name, n in players.items()} if total > 0 else None

    def _stage(self, t: float) -> int:
        """_stage is the index of the forecast's stretch that starts at or before t."""
        return max(0, sum(1 for point in self.times if point <= t) - 1)


def elapsed(seconds: float) -> str:
    """elapsed is a time from the start as h:mm:ss.

    >>> elapsed(9000.0)
    '2:30:00'
    """
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _interpolate(times: tuple[float, ...], values: tuple[float, ...], t: float) -> float:
    """_interpolate is the piecewise-linear value at t, held flat outside the points.

    >>> _interpolate((0, 10), (0, 100), 2.5), _interpolate((0, 10), (0, 100), 20)
    (25.0, 100)
    """
    if t <= times[0]:
        return values[0]
    k = bisect.bisect_left(times, t)  # every arrival of a day asks this: no linear scan
    if k == len(times):
        return values[-1]
    t0, t1, v0, v1 = times[k - 1], times[k], values[k - 1], values[k]
    return v0 + (v1 - v0) * (t - t0) / (t1 - t0) if t1 > t0 else v1


@dataclass(frozen=True)
class PlanRow:
    t_s: float  # forecast time
    ccu: float
    rate: float  # match starts per second, before any cap
    servers: dict[str, float]  # servers held, per region (or "all")


@dataclass(frozen=True)
class Plan:
    """Plan is what a forecast asks of the API and the platform, before any traffic."""

    rows: list[PlanRow]
    peak_rate: float
    peak_at_s: float
    above_limit_s: float
    cap: float | None  # the most the client sends per second (None: no cap)
    queue_peak: float  # matches waiting in a first-in-first-out queue in front of the cap
    queue_peak_at_s: float
    queue_wait_peak_s: float  # how long the last of them waits
    servers_at_start: float  # servers held when the run's span starts (a window starts full)
    limit: float = 40.0
    queue: list[tuple[float, float]] = field(default_factory=list)  # (forecast time, waiting)


def plan(forecast: Forecast, limit: float, cap: float | None, factor: float = 1.0) -> Plan:
    """plan tabulates the whole forecast (its rates times the run's factor) and follows a
    FIFO queue in front of the cap over it.

    The whole day, not only a run's window: the queue a peak hour meets was built before.
    """
    start, end = forecast.times[0], forecast.times[-1]
    times = sorted({*(start + (end - start) * k / PLAN_ROWS for k in range(PLAN_ROWS + 1))}
                   | {t for t in forecast.times if start <= t <= end})  # fmt: skip
    rows = [_row(forecast, t, factor) for t in times]
    peak = max(rows, key=lambda row: row.rate)
    queue, queue_peak, queue_at, above = 0.0, 0.0, start, 0.0
    dt, curve = (end - start) / QUEUE_STEPS, []
    for step in range(QUEUE_STEPS):
        t = start + (step + 0.5) * dt
        rate = forecast.rate_at(t) * factor
        above += dt if rate > limit else 0.0
        if cap is not None:
            queue = max(0.0, queue + (rate - cap) * dt)
            if queue > queue_peak:
                queue_peak, queue_at = queue, t + dt / 2
        if step % (QUEUE_STEPS // 400) == 0:
            curve.append((t, queue))
    exact_peak = max(
        (forecast.rate_at(t) * factor, t)
        for t in (start, end, *forecast.times)
        if start <= t <= end
    )
    return Plan(
        rows=rows,
        peak_rate=max(peak.rate, exact_peak[0]),
        peak_at_s=exact_peak[1] if exact_peak[0] >= peak.rate else peak.t_s,
        above_limit_s=above,
        cap=cap,
        queue_peak=queue_peak,
        queue_peak_at_s=queue_at,
        queue_wait_peak_s=queue_peak / cap if cap else 0.0,
        servers_at_start=forecast.servers_per_player * forecast.ccu_at(forecast.span[0]),
        limit=limit,
        queue=curve,
    )


def _row(forecast: Forecast, t: float, factor: float) -> PlanRow:
    ccu = forecast.ccu_at(t) * factor
    servers = forecast.servers_per_player * ccu
    shares = forecast.region_shares_at(t - forecast.span[0])
    by_region = {n: servers * share for n, share in shares.items()} if shares else {"all": servers}
    return PlanRow(t, ccu, forecast.rate_at(t) * factor, by_region)


# Reading the points ------------------------------------------------------------------


def parse_time(value: object, origin: datetime | None = None) -> tuple[float, datetime | None]:
    """parse_time reads a forecast time: seconds, a duration ("2h30m") or ISO 8601.

    An ISO time counts from the first ISO time seen (origin); it returns (seconds, origin).

    >>> parse_time("1h30m")[0], parse_time(90)[0]
    (5400.0, 90.0)
    >>> first = parse_time("2026-12-01T18:00:00Z")
    >>> parse_time("2026-12-01T19:00:00Z", first[1])[0]
    3600.0
    """
    from edgebench.plan.scenario import parse_duration

    if isinstance(value, str) and "T" in value:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        origin = origin or moment
        return (moment - origin).total_seconds(), origin
    if isinstance(value, str):
        try:
            return float(value), origin
        except ValueError:
            pass
    return parse_duration(value), origin


def read_ccu_file(
    path: Path, source: Path
) -> tuple[list[tuple[float, float]], dict[str, list[float]], datetime | None]:
    """read_ccu_file reads `t,ccu[,region...]`; ScenarioError names the file, line and field."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
            columns = list(rows[0]) if rows else []
    except OSError as exc:
        raise ScenarioError(
            [f"{source}: demand.ccu_file: cannot read {path} ({exc.strerror}); give a CSV file"]
        ) from None
    if "t" not in columns or "ccu" not in columns:
        raise ScenarioError(
            [f"{path}: line 1: the columns must start t,ccu (then one per region); found {columns}"]
        )
    points: list[tuple[float, float]] = []
    regions: dict[str, list[float]] = {c: [] for c in columns if c not in ("t", "ccu")}
    origin = None
    for line, row in enumerate(rows, start=2):
        try:
            t, origin = parse_time(row["t"].strip(), origin)
            points.append((t, _players(row["ccu"])))
            for region in regions:
                regions[region].append(_players(row[region]))
        except (ValueError, TypeError, AttributeError) as exc:
            field = next((k for k, v in row.items() if not _readable(k, v)), "t")
            raise ScenarioError([f"{path}: line {line}: {field}: {exc}; fix the value"]) from None
    return points, regions, origin


def _players(text: str | None) -> float:
    if text is None:
        raise ValueError("missing: give a count of players (0 or more)")
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{text!r} is not a count of players (0 or more)")
    return value


def _readable(column: str, value: str | None) -> bool:
    if column == "t":
        try:
            parse_time((value or "").strip())
        except (ValueError, AttributeError):
            return False
        return True
    try:
        _players(value)
    except (ValueError, TypeError):
        return False
    return True
