"""Starts: this process's scheduled starts, dealt to the free users of each endpoint.

A free user pulls its endpoint's next start and sleeps until it is due: no
dispatcher wakes for each arrival and hands it over (that hand-over cost a
quarter of the generator's time). A start still waiting when a strictly later
start of its endpoint is already due found no free user at its time: it is
dropped, as k6 counts dropped_iterations, and the user takes the latest due start
instead. Starts due at the same moment (a tick's batch) are sent one after another.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from collections.abc import Callable, Iterator
from typing import NamedTuple

from edgebench.plan.schedule import Arrival


class Start(NamedTuple):
    """Start is one arrival with its due time (unix seconds), endpoint and split generation."""

    arrival: Arrival
    due: float
    endpoint: str
    generation: int = 0


class Starts:
    """Starts splits one time-ordered stream of arrivals by endpoint, lazily.

    starts = Starts(schedule.arrivals(i, n), epoch, plan.endpoint)
    start, dropped = starts.take(DEPLOY, now)   # None once the schedule is over
    starts.give_back(start)                     # a user stopped before sending it
    """

    def __init__(
        self, arrivals: Iterator[Arrival], epoch: float, endpoint_of: Callable[[int], str]
    ) -> None:
        self._arrivals = arrivals
        self._epoch = epoch
        self._endpoint_of = endpoint_of
        self._pending: dict[str, deque[Start]] = {}
        self._returned: dict[str, list[tuple[int, Start]]] = {}
        self._cutoffs = [math.inf]  # per generation: its starts are due before this

    def take(self, endpoint: str, now: float) -> tuple[Start | None, list[Start]]:
        """take is the endpoint's next start to send, and the overdue starts it passed over."""
        dropped = []
        start = self._pop(endpoint)
        while start is not None and start.due <= now:
            later = self._peek(endpoint)
            # Passed over only by a strictly later start already due: starts due together
            # (a matchmaker's tick) are a burst to send, not a slot that was missed.
            if later is None or later.due > now or later.due == start.due:
                break
            dropped.append(start)
            start = self._pop(endpoint)
        return start, dropped

    def mine(self, start: Start) -> bool:
        """mine is whether a taken start is still this process's to send (see switch)."""
        return start.due < self._cutoffs[start.generation]

    def switch(self, at: float, arrivals: Iterator[Arrival]) -> None:
        """switch hands every start due from `at` on to a new share of the schedule.

        Starts due before `at` stay as they were; later ones, drawn or held by a user
        already, are no longer this process's (mine() says so) and go unrecorded:
        the worker that owns them now records them.
        """
        self._cutoffs[-1] = at
        self._cutoffs.append(math.inf)
        for endpoint, pending in self._pending.items():
            self._pending[endpoint] = deque(s for s in pending if s.due < at)
        for endpoint, returned in self._returned.items():
            self._returned[endpoint] = [(i, s) for i, s in returned if s.due < at]
            heapq.heapify(self._returned[endpoint])
        before = itertools.takewhile(lambda a: self._epoch + a.due_s < at, self._arrivals)
        self._arrivals = itertools.chain(before, arrivals)

    def give_back(self, start: Start) -> None:
        """give_back puts back a taken start; it is the next one of its endpoint again."""
        if not self.mine(start):
            return
        returned = self._returned.setdefault(start.endpoint, [])
        heapq.heappush(returned, (start.arrival.index, start))

    def overdue(self, now: float) -> Iterator[Start]:
        """overdue yields, and removes, every start due by now that nobody took (run's end)."""
        for arrival in self._arrivals:
            if self._epoch + arrival.due_s > now:
                break
            self._queue(self._start(arrival))
        for endpoint in {*self._pending, *self._returned}:
            while (start := self._peek(endpoint)) is not None and start.due <= now:
                yield self._pop(endpoint) or start  # the start peeked at, taken

    def _peek(self, endpoint: str) -> Start | None:
        returned = self._returned.get(endpoint)
        if returned:
            return returned[0][1]
        pending = self._pending_of(endpoint)
        return pending[0] if pending else None

    def _pop(self, endpoint: str) -> Start | None:
        returned = self._returned.get(endpoint)
        if returned:
            return heapq.heappop(returned)[1]
        pending = self._pending_of(endpoint)
        return pending.popleft() if pending else None

    def _pending_of(self, endpoint: str) -> deque[Start]:
        """_pending_of is endpoint's queue, drawing arrivals until it has one (or none are left)."""
        pending = self._queue_of(endpoint)
        while not pending:
            arrival = next(self._arrivals, None)
            if arrival is None:
                break
            self._queue(self._start(arrival))
        return pending

    def _queue(self, start: Start) -> None:
        self._queue_of(start.endpoint).append(start)

    def _queue_of(self, endpoint: str) -> deque[Start]:
        pending = self._pending.get(endpoint)
        if pending is None:  # not setdefault: it would build a deque for every arrival
            pending = self._pending[endpoint] = deque()
        return pending

    def _start(self, arrival: Arrival) -> Start:
        endpoint = self._endpoint_of(arrival.index)
        return Start(arrival, self._epoch + arrival.due_s, endpoint, len(self._cutoffs) - 1)
