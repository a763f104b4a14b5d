"""The arrival schedule: when each request of a run is due, as a pure function of time.

An open model: requests are due at fixed times whatever the answers do, the
total across every process and worker being the scenario's rate. Arrival k
(k = 0, 1, ...) is due when the integral of the rate reaches k + 0.5, so a
constant 40/s gives arrivals at 12.5 ms, 37.5 ms, ... and exactly 40 in every
second. Workers share the arrivals by index, so their sum is the schedule,
exactly: in exceed mode worker i of n takes k % n == i; in respect mode the
arrivals follow a repeating pattern of `limit` slots in which worker i owns
`quota(i, n)`, so any `limit` consecutive arrivals hold exactly that many of
each worker's, and each worker can hold its own sends to its quota per window
without ever starving (see edgebench.traffic.guard.SendGuard).

In respect mode without a client queue no `limit + 1` arrivals fall within `1 s + margin`:
an arrival that would is delayed, which caps the rate just under the limit and leaves the
margin for jitter between client and server. With a client queue the arrivals are the
demand's, whatever the limit: the queue holds what the limit cannot send at once.

    schedule = Schedule.from_scenario(scenario)
    for arrival in schedule.arrivals(worker_index=0, worker_count=2):
        ...  # arrival.due_s, arrival.index, arrival.stage, arrival.offered_rate

arrival_blocks() is arrivals() of one worker a block at a time, worked out with numpy
(the simulator's millions): the same positions, times and floats (tested equal).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from edgebench.plan.draws import unit_draw_blocks, unit_draws

if TYPE_CHECKING:
    import numpy as np

    from edgebench.plan._schema import Scenario

WINDOW_S = 1.0
POISSON_KEY = 0x504F4953534F4E  # the arrival stream's key among a seed's draws ("POISSON")
BLOCK_COUNT = 65_536  # arrivals counted at once (count())


@dataclass(frozen=True, slots=True)
class Segment:
    """Segment is a stretch where the rate moves linearly from `rate_start` to `rate_end`."""

    start_s: float
    end_s: float
    rate_start: float
    rate_end: float
    stage: int
    arrivals_before: float  # the integral of the rate up to start_s

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def rate_at(self, t: float) -> float:
        if self.duration_s == 0:
            return self.rate_end
        share = (t - self.start_s) / self.duration_s
        return self.rate_start + (self.rate_end - self.rate_start) * share

    def arrivals_by(self, t: float) -> float:
        """arrivals_by is the integral of the rate from 0 to t (t within the segment)."""
        tau = t - self.start_s
        return self.arrivals_before + (self.rate_start + self.rate_at(t)) / 2 * tau

    def time_of(self, n: float) -> float:
        """time_of solves arrivals_by(t) == n within the segment."""
        due = n - self.arrivals_before
        slope = (self.rate_end - self.rate_start) / self.duration_s if self.duration_s else 0.0
        if abs(slope) < 1e-12:
            return self.start_s + due / self.rate_start
        # r0 * tau + slope / 2 * tau**2 = due, in the form that stays exact when slope is small.
        root = math.sqrt(max(0.0, self.rate_start**2 + 2 * slope * due))
        return self.start_s + 2 * due / (self.rate_start + root)


class Arrival(NamedTuple):
    """Arrival is one scheduled request start (a tuple: one is made per request)."""

    index: int  # type: ignore[assignment]  # the field shadows tuple.index, which none calls
    due_s: float
    stage: int
    offered_rate: float


class Schedule:
    """Schedule turns stages into rates and arrival times."""

    def __init__(
        self,
        segments: list[Segment],
        duration_s: float,
        limit: int | None = None,
        margin_s: float = 0.0,
        demand: list[Segment] | None = None,
        arrivals: str = "uniform",
        tick_s: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.segments = segments
        self.duration_s = duration_s
        self.limit = limit  # None: no limit to hold (exceed mode)
        self.margin_s = margin_s
        self.demand = demand or segments  # the rates asked for, before respect mode's cap
        self.arrivals_kind = arrivals  # uniform, poisson, tick or replay
        self.tick_s = tick_s if arrivals == "tick" else 0.0
        self.seed = seed
        self.replay: list[float] = []  # arrivals = "replay": each match's due time
        # The schedule holds the limit itself, delaying arrivals (respect mode, no client queue).
        self.holds_limit = True
        self._count: int | None = None
        self._starts: list[float] | None = None

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> Schedule:
        rate = scenario.rate
        respect = rate.mode == "respect"
        # A client that queues holds the limit itself: every match the demand forms is due
        # when it forms, and the queue holds what the limit cannot send at once.
        cap = float(rate.limit) if respect and not scenario.queues else math.inf
        replay = [m.t_s / rate.speed for m in scenario.replay]
        if scenario.demand:
            from edgebench.plan.forecast import Forecast

            pieces = fit(Forecast.of(scenario).pieces(rate.factor), scenario.duration_s)
            segments, demand = segments_of(pieces, cap), segments_of(pieces)
        elif replay:
            pieces = fit(replay_pieces(replay), scenario.duration_s)
            segments, demand = segments_of(pieces), segments_of(pieces)
        else:
            stages = [(s.kind, s.duration_s, s.rate * rate.factor) for s in rate.stages]
            segments = build_segments(stages, scenario.duration_s, cap)
            demand = build_segments(stages, scenario.duration_s)
        limit = rate.limit if respect else None
        margin = rate.margin_ms / 1000
        schedule = cls(
            segments, scenario.duration_s, limit, margin, demand, rate.arrivals, rate.tick,
            scenario.seed,
        )  # fmt: skip
        schedule.replay = replay
        # A client that queues holds the limit itself: arrivals are when matches form.
        schedule.holds_limit = not scenario.queues
        return schedule

    def rate_at(self, t: float) -> float:
        """rate_at is the offered rate (requests/s) at elapsed time t."""
        segment = self.segment_at(t)
        return segment.rate_at(t) if segment else 0.0

    def segment_at(self, t: float) -> Segment | None:
        """segment_at is the segment holding run time t (None: outside the run)."""
        if self._starts is None:  # a forecast's schedule is thousands of cells
            self._starts = [segment.start_s for segment in self.segments]
        k = bisect.bisect_right(self._starts, t) - 1
        if k < 0:
            return None
        # Zero-length segments share a start with the next: the one that holds t.
        while k >= 0 and not self.segments[k].start_s <= t < self.segments[k].end_s:
            if self.segments[k].end_s <= t:
                return None
            k -= 1
        return self.segments[k] if k >= 0 else None

    def demand_total(self) -> float:
        """demand_total is how many arrivals the scenario asks for, before any cap."""
        last = self.demand[-1]
        return last.arrivals_by(last.end_s)

    def capped_rate(self) -> float | None:
        """capped_rate is the most respect mode sends per second (None: no cap, exceed mode).

        No `limit + 1` arrivals fall within a window and its margin: limit / (1 s + margin).
        A client's queue needs no margin (it counts from the API's answers): the limit.
        """
        if not self.limit:
            return None
        return self.limit / (WINDOW_S + (self.margin_s if self.holds_limit else 0.0))

    def above_limit_s(self) -> float:
        """above_limit_s is how long the demand asks for more than respect mode sends."""
        cap = self.capped_rate()
        return sum(_time_above(segment, cap) for segment in self.demand) if cap else 0.0

    def demand_note(self) -> str | None:
        """demand_note says, when it is so, that part of the demand will not be sent.

        >>> print(Schedule.from_stages([("hold", 10, 60)], 10, limit=40).demand_note())
        demand above the limit for 10 s (peak 60/s, limit 40/s): capped at 40/s, 200 of 600 \
starts not made
        """
        above = self.above_limit_s()
        if not above or self.limit is None:
            return None
        peak = max(max(s.rate_start, s.rate_end) for s in self.demand)
        asked = round(self.demand_total())
        missing = f"{asked - self.count():,} of {asked:,} starts not made"
        seconds = f"{above:,.0f}" if above >= 1 else f"{above:.2g}"
        if not self.holds_limit:
            return (
                f"demand above the limit for {seconds} s (peak {peak:.3g}/s): the client's "
                f"queue holds what {self.capped_rate():.3g}/s cannot send at once: the run's "
                "queue wait and players' wait show for how long"
            )
        if peak > self.limit:
            return (
                f"demand above the limit for {seconds} s (peak {peak:.3g}/s, limit "
                f"{self.limit}/s): capped at {self.capped_rate():.3g}/s, {missing}"
            )
        return (
            f"demand at the limit for {seconds} s ({peak:.3g}/s): respect mode's margin caps it "
            f"at {self.capped_rate():.3g}/s, {missing}"
        )

    def demand_facts(self) -> dict[str, Any]:
        """demand_facts is what the manifest records of the demand, for the analysis."""
        return {
            "segments": [[s.start_s, s.end_s, s.rate_start, s.rate_end] for s in self.demand],
            "total": round(self.demand_total(), 3),
            "capped_at_per_s": self.capped_rate(),
            "above_limit_s": round(self.above_limit_s(), 3),
            "capped": self.holds_limit and self.limit is not None,  # else a client's queue holds it
        }

    @classmethod
    def from_stages(
        cls, stages: list[tuple[str, float, float]], duration_s: float, limit: int | None = None
    ) -> Schedule:
        """from_stages is a schedule of (kind, seconds, rate) stages, respecting `limit` if set."""
        cap = float(limit) if limit else math.inf
        segments = build_segments(stages, duration_s, cap)
        return cls(segments, duration_s, limit, 0.0, build_segments(stages, duration_s))

    def count(self) -> int:
        """count is how many arrivals the run has, all workers, the limit held; worked out
        once (a day's forecast is millions of arrivals, and a check asks twice)."""
        if self._count is None:
            if self._in_blocks():  # numpy's blocks: a tenth of the time one by one takes
                self._count = sum(len(due) for _, due, _, _ in self._due_blocks(BLOCK_COUNT))
            else:
                self._count = sum(1 for _ in self._all_arrivals())
        return self._count

    def arrivals(self, worker_index: int = 0, worker_count: int = 1) -> Iterator[Arrival]:
        """arrivals yields this worker's share of the run's arrivals, in time order."""
        slots = owner_pattern(self.limit or worker_count, worker_count)
        period = len(slots)
        for index, due, segment in self._all_arrivals():
            if slots[index % period] == worker_index:
                yield Arrival(index, due, segment.stage, segment.rate_at(due))

    def arrival_blocks(self, size: int) -> Iterator[list[Arrival]]:
        """arrival_blocks are arrivals() of a single worker, `size` at a time, each block
        worked out with numpy: the same positions on the rate's integral (the same Poisson
        draws, summed in the same order), the same inversion to times, the same floats.

        A schedule that holds the limit, spacing arrivals one after another (respect mode without a
        client's queue) or a replay is taken one by one from arrivals() itself.
        """
        if not self._in_blocks():
            arrivals = self.arrivals()
            while block := list(itertools.islice(arrivals, size)):
                yield block
            return
        stages = [s.stage for s in self.segments if s.duration_s > 0]
        for index, due, rate, which in self._due_blocks(size):
            rows = zip(
                range(index, index + len(due)), due.tolist(),
                [stages[n] for n in which.tolist()], rate.tolist(),
                strict=True,
            )  # fmt: skip
            yield list(map(Arrival._make, rows))

    def due_blocks(self, size: int) -> Iterator[Any]:
        """due_blocks are the due times (run seconds, numpy arrays) of arrival_blocks, without
        the arrivals: what a count of the schedule needs of its millions."""
        import numpy as np

        if not self._in_blocks():
            for block in self.arrival_blocks(size):
                yield np.fromiter((a.due_s for a in block), np.float64, len(block))
            return
        for _, due, _, _ in self._due_blocks(size):
            yield due

    def _in_blocks(self) -> bool:
        """_in_blocks says whether numpy may work the arrivals out a block at a time: not a
        replay, nor a schedule that holds the limit by spacing arrivals one after another."""
        return not (self.replay or (self.limit is not None and self.holds_limit))

    def _due_blocks(self, size: int) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        """_due_blocks are (first index, due times, rates, segment numbers) of up to `size`
        arrivals at a time, none empty."""
        import numpy as np

        segments = [s for s in self.segments if s.duration_s > 0]
        totals = np.array([s.arrivals_by(s.end_s) for s in segments])
        table = _segment_table(segments)
        index = 0
        for positions in self._position_blocks(size):
            which = np.searchsorted(totals, positions, side="left")
            kept = which < len(segments)  # past the last segment's total: the schedule is over
            count = int(kept.sum())
            due, rate = _times_of(table, which[:count], positions[:count])
            if self.tick_s:
                due = np.ceil(due / self.tick_s - 1e-9) * self.tick_s
            over = np.flatnonzero(due >= self.duration_s)
            end = int(over[0]) if len(over) else len(due)
            if end:
                yield index, due[:end], rate[:end], which[:end]
            index += end
            if end < len(positions):
                return

    def quota(self, worker_index: int, worker_count: int) -> int | None:
        """quota is how many starts this worker may make in any window (None: no limit)."""
        return share_of(self.limit, worker_index, worker_count) if self.limit else None

    def _all_arrivals(self) -> Iterator[tuple[int, float, Segment]]:
        """_all_arrivals yields (index, due, segment) of every arrival, the limit held.

        One generator for both (a layer per arrival showed in the generator's profile).
        """
        recent: deque[float] = deque(maxlen=self.limit or 1)
        span = WINDOW_S + self.margin_s + 1e-9  # a nanosecond past: rounding cannot squeeze one in
        formed = self._replayed() if self.replay else self._formed()
        holds = self.limit is not None and self.holds_limit
        for index, (due, segment) in enumerate(formed):
            if holds and len(recent) == self.limit:
                due = max(due, recent[0] + span)
            if due >= self.duration_s:
                return
            recent.append(due)
            yield index, due, segment

    def _formed(self) -> Iterator[tuple[float, Segment]]:
        """_formed yields when each arrival forms (tick: when it is released), and its segment."""
        positions, tick = self._positions(), self.tick_s
        n = next(positions)
        for segment in self.segments:
            total = segment.arrivals_by(segment.end_s)
            while n <= total and segment.duration_s > 0:
                due = max(segment.start_s, segment.time_of(n))
                if tick:  # released with the matches formed since the last tick
                    due = math.ceil(due / tick - 1e-9) * tick
                yield due, segment
                n = next(positions)

    def _replayed(self) -> Iterator[tuple[float, Segment]]:
        """_replayed yields each logged match's due time, and the segment it falls in."""
        segments, k = self.segments, 0
        for due in self.replay:
            while k + 1 < len(segments) and due >= segments[k].end_s:
                k += 1
            yield due, segments[k]

    def _positions(self) -> Iterator[float]:
        """_positions are where arrivals fall on the integral of the rate, in order.

        Uniform: k + 0.5, so a constant rate gives evenly spaced arrivals. Poisson (and
        tick, whose matches form at random moments): the sums of Exp(1) draws from the
        seed, which makes a non-homogeneous Poisson process of the rate (time change).
        """
        if self.arrivals_kind == "uniform":
            return itertools.count(0.5)
        draws = unit_draws(self.seed, POISSON_KEY)
        return itertools.accumulate(-math.log(1.0 - u) for u in draws)

    def _position_blocks(self, size: int) -> Iterator[np.ndarray]:
        """_position_blocks are _positions() a block at a time."""
        import numpy as np

        if self.arrivals_kind == "uniform":
            for first in itertools.count(0, size):
                yield np.arange(first, first + size, dtype=np.float64) + 0.5
        total = 0.0
        for units in unit_draw_blocks(self.seed, POISSON_KEY, size):
            gaps = np.array([-math.log(1.0 - u) for u in units.tolist()])  # math.log: the same
            gaps[0] += total
            positions = np.cumsum(gaps)  # in order, as itertools.accumulate adds
            total = float(positions[-1])
            yield positions


def _segment_table(segments: list[Segment]) -> dict[str, np.ndarray]:
    """_segment_table are the segments' numbers as arrays, for Segment.time_of on many
    arrivals of many segments at once (each number worked out as Segment's own)."""
    import numpy as np

    slopes = [(s.rate_end - s.rate_start) / s.duration_s for s in segments]
    return {
        "start": np.array([s.start_s for s in segments]),
        "duration": np.array([s.duration_s for s in segments]),
        "rate_start": np.array([s.rate_start for s in segments]),
        "rate_end": np.array([s.rate_end for s in segments]),
        "before": np.array([s.arrivals_before for s in segments]),
        "slope": np.array(slopes),
        "square": np.array([s.rate_start**2 for s in segments]),
    }


def _times_of(
    table: dict[str, np.ndarray], which: np.ndarray, positions: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """_times_of is Segment.time_of (floored at the start) and rate_at for arrivals of many
    segments (`which` of each): the same operations, so the same floats."""
    import numpy as np

    start, rs, slope = table["start"][which], table["rate_start"][which], table["slope"][which]
    due = positions - table["before"][which]
    flat = np.abs(slope) < 1e-12
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.sqrt(np.maximum(0.0, table["square"][which] + 2 * slope * due))
        t = np.where(flat, start + due / rs, start + 2 * due / (rs + root))
    t = np.maximum(start, t)
    share = (t - start) / table["duration"][which]
    return t, rs + (table["rate_end"][which] - rs) * share


def _time_above(segment: Segment, level: float) -> float:
    """_time_above is how long a segment's rate is above level (it moves linearly)."""
    low, high = sorted((segment.rate_start, segment.rate_end))
    if high <= level:
        return 0.0
    if low >= level:
        return segment.duration_s
    return segment.duration_s * (high - level) / (high - low)


def owner_pattern(slots: int, workers: int) -> list[int]:
    """owner_pattern spreads `slots` among workers as evenly as they divide, interleaved.

    >>> owner_pattern(8, 3)
    [0, 1, 2, 0, 1, 2, 0, 1]
    >>> owner_pattern(5, 2)
    [0, 1, 0, 1, 0]
    """
    return [slot % workers for slot in range(slots)]


def share_of(limit: int, worker_index: int, worker_count: int) -> int:
    """share_of is worker i's part of a per-window limit; the parts add up to the limit.

    >>> [share_of(40, i, 3) for i in range(3)]
    [14, 13, 13]
    """
    return owner_pattern(limit, worker_count).count(worker_index)


Piece = tuple[float, float, float, float, int]  # start, end, rate at start, at end, stage


def build_segments(
    stages: Sequence[tuple[str, float, float]], duration_s: float, cap: float = math.inf
) -> list[Segment]:
    """build_segments lays stages end to end, cut or held to fill duration_s.

    ramp goes linearly from the level before it to its rate; step and hold stay at
    their rate; spike stays at its rate, and the stage after it starts again from
    the level before the spike. Rates above cap are held at cap.
    """
    pieces: list[Piece] = []
    level, start = 0.0, 0.0
    for index, (kind, length, rate) in enumerate(stages):
        end = min(start + length, duration_s)
        if end <= start:
            break
        begin = level if kind == "ramp" else rate
        begin, finish = _ramp_part(begin, rate, start, end, start + length)
        pieces.append((start, end, begin, finish, index))
        level = level if kind == "spike" else rate
        start = end
    if start < duration_s:
        pieces.append((start, duration_s, level, level, len(stages) - 1))
    return segments_of(pieces, cap)


def replay_pieces(dues: list[float]) -> list[Piece]:
    """replay_pieces are a log's matches per second, as pieces of constant rate.

    >>> replay_pieces([0.2, 0.5, 1.5])
    [(0, 1, 2, 2, 0), (1, 2, 1, 1, 1)]
    """
    seconds = int(dues[-1]) + 1
    counts = [0] * seconds
    for due in dues:
        counts[int(due)] += 1
    return [(k, k + 1, count, count, k) for k, count in enumerate(counts)]


def fit(pieces: list[Piece], duration_s: float) -> list[Piece]:
    """fit cuts pieces at duration_s, or holds the last rate until it.

    >>> fit([(0, 10, 0, 10, 0)], 5), fit([(0, 10, 0, 10, 0)], 12)[-1]
    ([(0, 5, 0, 5.0, 0)], (10, 12, 10, 10, 0))
    """
    fitted = []
    for start, end, r0, r1, stage in pieces:
        if start >= duration_s:
            break
        if end > duration_s:
            r1, end = r0 + (r1 - r0) * (duration_s - start) / (end - start), duration_s
        fitted.append((start, end, r0, r1, stage))
    last = fitted[-1]
    if last[1] < duration_s:
        fitted.append((last[1], duration_s, last[3], last[3], last[4]))
    return fitted


def segments_of(pieces: list[Piece], cap: float = math.inf) -> list[Segment]:
    """segments_of turns linear pieces of rate into segments, rates above cap held at cap.

    A piece that crosses the cap is split where it does, so the capped rate follows the
    demand exactly up to the cap and no further.

    >>> capped = segments_of([(0, 10, 0, 80, 0)], 40)
    >>> [(s.start_s, s.end_s, s.rate_start, s.rate_end) for s in capped]
    [(0, 5.0, 0, 40), (5.0, 10, 40, 40)]
    """
    segments: list[Segment] = []
    integral = 0.0
    for start, end, rate_start, rate_end, stage in pieces:
        for a, b, u, v in _split_at(start, end, rate_start, rate_end, cap):
            segment = Segment(a, b, min(u, cap), min(v, cap), stage, integral)
            segments.append(segment)
            integral = segment.arrivals_by(b)
    return segments


def _split_at(
    start: float, end: float, r0: float, r1: float, level: float
) -> list[tuple[float, float, float, float]]:
    """_split_at cuts a linear piece where its rate crosses level (if it does)."""
    if (r0 - level) * (r1 - level) >= 0 or math.isinf(level):
        return [(start, end, r0, r1)]
    at = start + (level - r0) / (r1 - r0) * (end - start)
    return [(start, at, r0, level), (at, end, level, r1)]


def _ramp_part(
    begin: float, rate: float, start: float, end: float, full_end: float
) -> tuple[float, float]:
    """_ramp_part is a stage's start and end rate, when the run cuts it at `end`."""
    if full_end == start:
        return begin, rate
    return begin, begin + (rate - begin) * (end - start) / (full_end - start)
