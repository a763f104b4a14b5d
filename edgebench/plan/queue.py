"""The client's queue, planned from the run's own schedule: no traffic, a second at a time.

A client that queues (respect mode with a [client] queue) sends at most `quota` matches
in each window of the limit, first in first out; a match waits until its turn, or leaves
after `max_wait_s` (abandoned). Walked over the schedule's arrivals (the same draws a run
makes, so a tick's batch is the batch the run will release), window by window:

    walk = queue_walk(schedule, quota=40, max_wait_s=30.0)
    walk.peak_waiting, walk.longest_wait_s, walk.abandoned

What it leaves out: retries (a respect-mode client meets no 429 to retry) and the answers'
latency (milliseconds), so it agrees with a simulation of the same scenario to a few
percent (tests/test_forecast.py).
"""

from __future__ import annotations

import math
from collections import deque
from typing import NamedTuple

from edgebench.plan.schedule import WINDOW_S, Schedule

BLOCK = 65_536  # arrivals counted at once


class Opening(NamedTuple):
    """Opening is what the queue does to the matches due in a run's first seconds."""

    seconds: float  # how long the opening is
    matches: int
    p99_wait_s: float  # of the sent ones' waits for their turn (whole windows)
    longest_wait_s: float
    abandoned: int


class QueueWalk(NamedTuple):
    """QueueWalk is what the client's queue does over a run."""

    peak_waiting: int  # the most matches waiting at once, after a window's sends
    peak_at_s: float  # when (run time)
    longest_wait_s: float  # the longest a sent match waited for its turn
    abandoned: int  # matches that gave up (max_wait_s)
    opening: Opening | None = None
    waiting: tuple[int, ...] = ()  # the matches waiting after each window's sends (_walk's)


def queue_walk(
    schedule: Schedule, quota: int, max_wait_s: float | None, opening_s: float = 0.0
) -> QueueWalk:
    """queue_walk follows the first-in-first-out queue in front of `quota` sends a window;
    with opening_s, also what it does to the matches due in the run's first opening_s."""
    return _walk(_per_window(schedule), quota, max_wait_s, opening_s)


def lowest_limit(schedule: Schedule, bound_s: float) -> tuple[int, QueueWalk]:
    """lowest_limit is the fewest sends a window (a limit) for which no match of the
    schedule waits longer than bound_s for its turn, and that limit's walk (bisection: a
    higher limit never waits longer)."""
    arrivals = _per_window(schedule)
    low, high = 0, max(1, max(arrivals, default=1))  # the busiest window's: nobody waits
    best = _walk_without_leaving(arrivals, high)
    while high - low > 1:
        middle = (low + high) // 2
        walk = _walk_without_leaving(arrivals, middle)
        if walk.longest_wait_s <= bound_s:
            high, best = middle, walk
        else:
            low = middle
    return high, best


def _walk_without_leaving(arrivals: list[int], quota: int) -> QueueWalk:
    """_walk_without_leaving is _walk when no match gives up, in closed form: the matches
    sent by window w are S(w) = min(S(w-1) + quota, A(w)) (A: those arrived by w, S(-1) =
    0), which is quota w + the least of A(k) - quota k for -1 <= k <= w; a window's last
    match leaves in the first window whose S reaches it (tests/test_advise.py: equal to the
    walk on random windows)."""
    import numpy as np

    arrived = np.cumsum(np.asarray(arrivals, dtype=np.int64))
    if not len(arrived) or arrived[-1] == 0:
        return QueueWalk(0, 0.0, 0.0, 0)
    drain = math.ceil(int(arrived[-1]) / quota) + 1
    arrived = np.concatenate([arrived, np.full(drain, arrived[-1])])
    windows = np.arange(len(arrived))
    least = np.minimum(np.minimum.accumulate(arrived - quota * windows), quota)  # k = -1: 0
    sent = quota * windows + least
    waiting = arrived - sent
    busy = np.flatnonzero(np.diff(arrived, prepend=0) > 0)  # windows some match arrived in
    leaves = np.searchsorted(sent, arrived[busy], side="left")
    peak = int(np.argmax(waiting))
    longest = float((leaves - busy).max()) * WINDOW_S
    return QueueWalk(int(waiting[peak]), peak * WINDOW_S, longest, 0)


def _walk(
    arrivals: list[int], quota: int, max_wait_s: float | None, opening_s: float = 0.0
) -> QueueWalk:
    waiting: deque[list[float]] = deque()  # [window it entered, matches left of it]
    peak, peak_at, longest, abandoned = 0, 0.0, 0.0, 0
    early = Early(opening_s)
    window = 0
    curve: list[int] = []
    while window < len(arrivals) or waiting:
        now = window * WINDOW_S
        if window < len(arrivals) and arrivals[window]:
            waiting.append([now, arrivals[window]])
        abandoned += _give_up(waiting, now, max_wait_s, early)
        longest = max(longest, _send(waiting, quota, now, early))
        queued = int(sum(count for _, count in waiting))
        curve.append(queued)
        if queued > peak:
            peak, peak_at = queued, now
        window += 1
    opening = early.summary() if opening_s else None
    return QueueWalk(peak, peak_at, longest, abandoned, opening, tuple(curve))


class Early:
    """Early gathers the waits of the matches that entered before `seconds`."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.waits: dict[float, int] = {}  # wait -> matches sent after it
        self.abandoned = 0

    def sent(self, entered: float, now: float, count: int) -> None:
        if entered < self.seconds:
            self.waits[now - entered] = self.waits.get(now - entered, 0) + count

    def gone(self, entered: float, count: int) -> None:
        if entered < self.seconds:
            self.abandoned += count

    def summary(self) -> Opening:
        ordered = sorted(self.waits.items())
        sent = sum(count for _, count in ordered)
        rank, p99 = math.ceil(0.99 * sent), 0.0
        for wait, count in ordered:
            p99, rank = wait, rank - count
            if rank <= 0:
                break
        longest = ordered[-1][0] if ordered else 0.0
        return Opening(self.seconds, sent + self.abandoned, p99, longest, self.abandoned)


def _per_window(schedule: Schedule) -> list[int]:
    """_per_window counts the schedule's arrivals due in each window of the limit."""
    import numpy as np

    counts = np.zeros(0, dtype=np.int64)
    for due in schedule.due_blocks(BLOCK):
        windows = np.floor(due / WINDOW_S + 1e-9).astype(np.int64)
        tally = np.bincount(windows)
        if len(tally) > len(counts):
            counts = np.concatenate([counts, np.zeros(len(tally) - len(counts), np.int64)])
        counts[: len(tally)] += tally
    return counts.tolist()


def _give_up(
    waiting: deque[list[float]], now: float, max_wait_s: float | None, early: Early
) -> int:
    """_give_up takes out the matches that waited past max_wait_s by now."""
    gone = 0
    while waiting and max_wait_s is not None and now - waiting[0][0] > max_wait_s:
        entered, count = waiting.popleft()
        early.gone(entered, int(count))
        gone += int(count)
    return gone


def _send(waiting: deque[list[float]], quota: int, now: float, early: Early) -> float:
    """_send takes this window's turns from the head of the queue; the longest wait sent."""
    left, longest = quota, 0.0
    while waiting and left:
        entered, count = waiting[0]
        sent = min(left, count)
        left -= int(sent)
        longest = max(longest, now - entered)
        early.sent(entered, now, int(sent))
        if sent == count:
            waiting.popleft()
        else:
            waiting[0][1] = count - sent
    return longest
