"""Demand from a launch forecast: concurrent players over time become match starts per second.

With a share s of the concurrent players (CCU) in matches of p players (the mean of
`[players]`), the forecast holds M(t) / p = s x CCU(t) / p matches (servers) in progress
(Little's law). The starts that keep it there solve the renewal equation
(edgebench.plan.renewal), per region: in steady state they are Little's s x CCU / (p x L);
while players pour in they are about (M / L + dM/dt) / p, an opening wave at once; when
players leave faster than matches end, none. The solution's cells (a second to a few) become
the schedule's pieces; `window` runs a slice of it.

    forecast = Forecast.of(scenario)
    forecast.pieces()            # the schedule's (start, end, rate, rate, stage) pieces
    forecast.plan(limit, cap)    # the table and the peak, the queue in front of the limit
"""

from __future__ import annotations

import bisect
import csv
import functools
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from edgebench._errors import ScenarioError
from edgebench.plan.renewal import Length, Renewal
from edgebench.plan.times import parse_time

if TYPE_CHECKING:
    import numpy as np

    from edgebench.plan._schema import Scenario

PLAN_ROWS = 24  # rows of the plan's table, evenly over the forecast (plus its points)
CURVE_POINTS = 2_000  # the most points of the plan's curves (cells averaged together)
PEAK_S = 60.0  # the peak of starts is the busiest minute's


@dataclass(frozen=True)
class Forecast:
    """Forecast is the CCU curve (seconds from its start), per region when it has columns."""

    times: tuple[float, ...]
    ccu: tuple[float, ...]
    regions: dict[str, tuple[float, ...]]  # region -> its players at each time ({} when none)
    matches_per_player_s: float  # s / (p x L): Little's starts a second per concurrent player
    servers_per_player: float  # s / p: servers held per concurrent player
    window: tuple[float, float] | None = None
    origin: datetime | None = None  # the clock time of forecast time 0 (ISO times), else None
    length: Length | None = None  # the match length's law (None: fixed at its mean)

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
            length=Length.of(demand.lifetime()),
        )

    @property
    def renewal(self) -> Renewal:
        """renewal is the starts that hold the forecast's matches in progress, per region
        (solved once for a forecast, whichever Forecast object asks)."""
        length = self.length or Length("fixed", self.servers_per_player / self.matches_per_player_s)
        regions = tuple((name, tuple(v)) for name, v in self.regions.items())
        return _solved(self.times, self.ccu, regions, self.servers_per_player, length)

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
        """rate_at is the match starts a second at forecast time t (the renewal's)."""
        return self.renewal.rate_at(t)

    def matches_at(self, t: float) -> float:
        """matches_at is the forecast's matches in progress at forecast time t: s x CCU / p."""
        return self.servers_per_player * self.ccu_at(t)

    def pieces(self, factor: float = 1.0) -> list[tuple[float, float, float, float, int]]:
        """pieces are the schedule's pieces of rate, in run time (0: the span's start): the
        renewal's cells within the span, a constant rate each (equal neighbours joined)."""
        start, end = self.span
        solution = self.renewal
        first, last = solution.cell(start), solution.cell(math.nextafter(end, -math.inf))
        rates = (solution.total[first : last + 1] * factor).tolist()
        pieces: list[tuple[float, float, float, float, int]] = []
        for k, rate in enumerate(rates, start=first):
            a = max(start, solution.start + k * solution.dt)
            b = min(end, solution.start + (k + 1) * solution.dt)
            stage = self._stage(a)
            if pieces and pieces[-1][2] == rate and pieces[-1][4] == stage:
                pieces[-1] = (pieces[-1][0], b - start, rate, rate, stage)
            elif b > a:
                pieces.append((a - start, b - start, rate, rate, stage))
        if end > solution.end:  # past the grid (rounding): the last rate
            rate = pieces[-1][2] if pieces else 0.0
            pieces.append((solution.end - start, end - start, rate, rate, self._stage(end)))
        return pieces

    def region_shares_at(self, t: float) -> dict[str, float] | None:
        """region_shares_at are the regions' shares of the starts at run time t (None: the
        forecast has no region columns, or no start then)."""
        if not self.regions:
            return None
        import numpy as np

        names = list(self.renewal.names)
        [row] = self.start_shares(np.array([t]), names).tolist()
        return dict(zip(names, row, strict=True)) if sum(row) > 0 else None

    def start_shares(self, t: np.ndarray, names: list[str]) -> np.ndarray:
        """start_shares are region_shares_at for many run times: a row each, a column for
        each of `names` (0 for a name the forecast has no column of; a row of 0 where no
        match starts)."""
        import numpy as np

        solution = self.renewal
        index = self.share_rows(t)
        rows = solution.starts[np.minimum(index, len(solution.starts) - 1)]
        rows[index == len(solution.starts)] = solution.steady  # the rows _start_rows has
        return self._shares(rows, names)

    def share_rows(self, t: np.ndarray) -> np.ndarray:
        """share_rows are the rows of share_table for run times t: each one's cell, and past
        the table's cells the row before the forecast (its steady state)."""
        import numpy as np

        solution = self.renewal
        at = self.span[0] + t
        return np.where(at < solution.start, len(solution.starts), solution.cells(at))

    def share_table(self, names: list[str]) -> np.ndarray:
        """share_table is each cell's shares of the starts by region (a column for each of
        `names`: 0 for a name the forecast has no column of; a row of 0 where no match
        starts), then a last row for before the forecast: worked out once for a run."""
        return self._shares(self._start_rows(), names)

    def _start_rows(self) -> np.ndarray:
        """_start_rows are the renewal's starts by region, cell by cell, then the steady row."""
        import numpy as np

        solution = self.renewal
        rows: np.ndarray = np.vstack([solution.starts, solution.steady])
        return rows

    def _shares(self, rows: np.ndarray, names: list[str]) -> np.ndarray:
        """_shares are rows of starts by region as each row's shares, a column a name."""
        import numpy as np

        columns = {name: k for k, name in enumerate(self.renewal.names)}
        zeros = np.zeros(len(rows))
        starts = np.stack([rows[:, columns[n]] if n in columns else zeros for n in names], axis=1)
        total = starts.sum(axis=1, keepdims=True)
        shares: np.ndarray = np.divide(starts, total, out=np.zeros_like(starts), where=total > 0)
        return shares

    def _stage(self, t: float) -> int:
        """_stage is the index of the forecast's stretch that starts at or before t."""
        return max(0, bisect.bisect_right(self.times, t) - 1)


@functools.lru_cache(maxsize=8)
def _solved(
    times: tuple[float, ...],
    ccu: tuple[float, ...],
    regions: tuple[tuple[str, tuple[float, ...]], ...],
    per_player: float,
    length: Length,
) -> Renewal:
    """_solved is the renewal of the forecast's matches in progress: a column a region (each
    its share of the CCU), else one ("all")."""
    import numpy as np

    matches = np.array(ccu) * per_player
    if not regions:
        return Renewal.of(times, {"all": matches}, length)
    players = np.array([values for _, values in regions])
    total = players.sum(axis=0)
    shares = np.divide(players, total, out=np.zeros_like(players), where=total > 0)
    columns = {name: matches * share for (name, _), share in zip(regions, shares, strict=True)}
    return Renewal.of(times, columns, length)


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
    peak_rate: float  # the busiest minute's starts a second
    peak_at_s: float  # that minute's start (forecast time)
    above_limit_s: float
    cap: float | None  # the most the client sends per second (None: no cap)
    queue_peak: float  # matches waiting in a first-in-first-out queue in front of the cap
    queue_peak_at_s: float
    queue_wait_peak_s: float  # how long the last of them waits
    servers_at_start: float  # servers held when the run's span starts (a window starts full)
    limit: float = 40.0
    queue: list[tuple[float, float]] = field(default_factory=list)  # (forecast time, waiting)
    queue_title: str = "A first-in-first-out queue in front of the limit (no one leaving it)"
    # (forecast time, starts a second, Little's starts a second, matches wanted, held)
    curve: list[tuple[float, float, float, float, float]] = field(default_factory=list)
    excess: list[tuple[float, float, float]] = field(default_factory=list)  # Renewal.excess


def plan(forecast: Forecast, limit: float, cap: float | None, factor: float = 1.0) -> Plan:
    """plan tabulates the whole forecast (its rates times the run's factor) and follows a
    FIFO queue in front of the cap over it, cell by cell of the renewal's solution.

    The whole day, not only a run's window: the queue a peak hour meets was built before.
    """
    import numpy as np

    solution = forecast.renewal
    start, end = forecast.times[0], forecast.times[-1]
    times = sorted({*(start + (end - start) * k / PLAN_ROWS for k in range(PLAN_ROWS + 1))}
                   | {t for t in forecast.times if start <= t <= end})  # fmt: skip
    rates, dt = solution.total * factor, solution.dt
    cells = solution.start + dt * np.arange(len(rates))
    per_minute = max(1, round(PEAK_S / dt))
    minutes = _averaged(rates, per_minute)
    busiest = int(np.argmax(minutes))
    waiting = _fluid_queue(rates, cap, dt)
    peak_cell = int(np.argmax(waiting)) if len(waiting) else 0
    queue_peak = float(waiting[peak_cell]) if len(waiting) else 0.0
    return Plan(
        rows=[_row(forecast, t, factor) for t in times],
        peak_rate=float(minutes[busiest]),
        peak_at_s=float(solution.start + busiest * per_minute * dt),
        above_limit_s=float((rates > limit).sum() * dt),
        cap=cap,
        queue_peak=queue_peak,
        queue_peak_at_s=float(cells[peak_cell] + dt) if queue_peak else start,
        queue_wait_peak_s=queue_peak / cap if cap else 0.0,
        servers_at_start=solution.in_progress_at(forecast.span[0]) * factor,
        limit=limit,
        queue=_thinned(cells + dt, waiting),
        curve=_curve(forecast, factor),
        excess=[(a, b, most * factor) for a, b, most in solution.excess()],
    )


def _fluid_queue(rates: np.ndarray, cap: float | None, dt: float) -> np.ndarray:
    """_fluid_queue is the matches waiting at each cell's end in front of the cap (Lindley:
    the running sum of demand less the cap, less its lowest point so far)."""
    import numpy as np

    if cap is None:
        return np.zeros(len(rates))
    total = np.cumsum((rates - cap) * dt)
    return total - np.minimum(np.minimum.accumulate(total), 0.0)


def _averaged(values: np.ndarray, size: int) -> np.ndarray:
    """_averaged are the means of consecutive blocks of `size` values (the last may be short)."""
    import numpy as np

    edges = np.arange(0, len(values), size)
    return np.add.reduceat(values, edges) / np.diff(np.append(edges, len(values)))


def _thinned(times: np.ndarray, values: np.ndarray) -> list[tuple[float, float]]:
    """_thinned keeps at most CURVE_POINTS points of a curve, each block's highest."""
    import numpy as np

    size = max(1, math.ceil(len(values) / CURVE_POINTS))
    edges = np.arange(0, len(values), size)
    return list(
        zip(times[edges].tolist(), np.maximum.reduceat(values, edges).tolist(), strict=True)
    )


def _curve(forecast: Forecast, factor: float) -> list[tuple[float, float, float, float, float]]:
    """_curve is the plan's picture: per block of cells, its time, the starts a second (the
    renewal's and Little's), the forecast's matches in progress and the solution's."""
    import numpy as np

    solution = forecast.renewal
    size = max(1, math.ceil(len(solution.starts) / CURVE_POINTS))
    starts = _averaged(solution.total, size) * factor
    at = solution.start + solution.dt * np.arange(0, len(solution.starts), size)
    little = np.array([forecast.ccu_at(t) for t in at.tolist()]) * forecast.matches_per_player_s
    wanted = solution.wanted.sum(axis=1)[: len(solution.starts) : size] * factor
    held = solution.held.sum(axis=1)[: len(solution.starts) : size] * factor
    columns = (at, starts, little * factor, wanted, held)
    return list(zip(*(c.tolist() for c in columns), strict=True))


def _row(forecast: Forecast, t: float, factor: float) -> PlanRow:
    ccu = forecast.ccu_at(t) * factor
    servers = forecast.servers_per_player * ccu
    by_region = {n: servers * share for n, share in _player_shares(forecast, t).items()}
    return PlanRow(t, ccu, forecast.rate_at(t) * factor, by_region)


def _player_shares(forecast: Forecast, t: float) -> dict[str, float]:
    """_player_shares are the regions' shares of the players at forecast time t ({"all": 1}
    without region columns; every region 0 when none has players)."""
    if not forecast.regions:
        return {"all": 1.0}
    players = {name: _interpolate(forecast.times, v, t) for name, v in forecast.regions.items()}
    total = sum(players.values())
    return {name: n / total if total > 0 else 0.0 for name, n in players.items()}


# Reading the points ------------------------------------------------------------------


def read_ccu_file(
    path: Path, source: Path
) -> tuple[list[tuple[float, float]], dict[str, list[float]], datetime | None]:
    """read_ccu_file reads `t,ccu[,region...]`; ScenarioError names the file, line and field.

    Times must increase, row after row, and there must be two rows at least; the region
    columns, where there are, may not add up to more than `ccu` (beyond rounding)."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            columns = list(reader.fieldnames or [])
    except OSError as exc:
        raise ScenarioError(
            [f"{source}: demand.ccu_file: cannot read {path} ({exc.strerror}); give a CSV file"]
        ) from None
    if "t" not in columns or "ccu" not in columns:
        raise ScenarioError(
            [f"{path}: line 1: the columns must start t,ccu (then one per region); found {columns}"]
        )
    if len(rows) < 2:
        count = f"{len(rows)} row{'s' * (len(rows) != 1)}"
        raise ScenarioError(
            [f"{path}: {count}: a forecast needs at least two (t,ccu at its start and its end)"]
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
        if len(points) > 1 and points[-1][0] <= points[-2][0]:
            before = rows[line - 3]["t"].strip()  # the row above (line 2 is the first row)
            raise ScenarioError(
                [
                    f"{path}: line {line}: t: {row['t'].strip()} is not after {before}; times "
                    "must increase row after row"
                ]
            )
        _check_sum(path, line, row, regions)
    return points, regions, origin


ROUNDING = 0.001  # the regions may add up to this share over ccu (rounded columns)


def _check_sum(path: Path, line: int, row: dict[str, str], regions: dict[str, list[float]]) -> None:
    """_check_sum names a row whose regions add up to more than its ccu, beyond rounding."""
    if not regions:
        return
    total = sum(values[-1] for values in regions.values())
    ccu = float(row["ccu"])
    if total > ccu + max(1.0, ROUNDING * ccu):
        names = " + ".join(regions)
        raise ScenarioError(
            [
                f"{path}: line {line}: {names} = {total:g} is more than ccu {ccu:g}; the "
                "regions' players are a split of ccu: fix the row"
            ]
        )


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
