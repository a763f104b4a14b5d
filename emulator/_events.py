"""A calendar queue of timed events: the cost of an event does not grow with the backlog.

A plain heap costs O(log n) per event, n being every pending event, and a
platform with 10,000 running matches holds 10,000 far-off "match ends" events.
Here events are kept in one-second buckets; only the bucket being worked
through is a heap, so the cost depends on how many events fall in a second,
not on how many are pending.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Any

BUCKET_S = 1.0


class EventQueue:
    """EventQueue hands back items in time order once their time has come.

    >>> queue = EventQueue()
    >>> queue.push(5.0, "b"); queue.push(1.5, "a"); queue.push(900.0, "c")
    >>> list(queue.pop_due(10.0)), queue.next_due()
    (['a', 'b'], 900.0)
    >>> queue.push(950.5, "d"); list(queue.pop_due(950.0)), queue.next_due()
    (['c'], 950.5)
    """

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self._seq = itertools.count()
        self._current: list[tuple[float, int, Any]] = []  # a heap: the bucket being worked
        self._current_bucket = -math.inf
        self._buckets: dict[int, list[tuple[float, int, Any]]] = {}
        self._bucket_order: list[int] = []  # a heap of the later buckets' numbers

    def push(self, due: float, item: Any) -> None:
        event = (due, next(self._seq), item)
        bucket = math.floor(due / BUCKET_S)
        if bucket <= self._current_bucket:
            heapq.heappush(self._current, event)
            return
        events = self._buckets.get(bucket)
        if events is None:
            self._buckets[bucket] = [event]
            heapq.heappush(self._bucket_order, bucket)
        else:
            events.append(event)

    def pop_due(self, now: float):
        """pop_due yields every item due at or before now, earliest first (ties: first pushed)."""
        while True:
            current = self._current
            if current and current[0][0] <= now:
                yield heapq.heappop(current)[2]
            elif not current and self._bucket_order and self._bucket_order[0] * BUCKET_S <= now:
                self._open_next_bucket()
            else:
                return

    def next_due(self) -> float | None:
        """next_due is when the next item may be due: exact, or its bucket's start (earlier)."""
        if self._current:
            return self._current[0][0]
        if self._bucket_order:
            return self._bucket_order[0] * BUCKET_S
        return None

    def _open_next_bucket(self) -> None:
        bucket = heapq.heappop(self._bucket_order)
        self._current = self._buckets.pop(bucket)
        heapq.heapify(self._current)
        self._current_bucket = bucket
