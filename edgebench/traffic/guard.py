"""SendGuard: respect mode's hold on a process's sends, counted from the API's answers."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

import gevent
from gevent.event import AsyncResult
from gevent.lock import Semaphore

from edgebench.plan.client import window_opens


class SendGuard:
    """SendGuard holds a process's requests to `quota` in any window of `window_s` at the API.

    The schedule already spaces the arrivals, but the API counts a request when it
    handles it, which may be later than the send (a stalled server handled three
    sends 60 ms late, next to one sent on time, and refused it). So a request may
    go only once the one `quota` requests before it has been answered for
    `window_s`: the API handled it by then (edgebench.plan.client.window_opens, the rule
    the simulation applies too). Requests pass one at a time, in order;
    a held one waits (its latency from the schedule shows the wait).

        with guard.turn() as admitted:      # turn(deadline): False once the match is abandoned
            client.post(...)
    """

    def __init__(self, quota: int, window_s: float, clock=time.time, sleep=gevent.sleep):
        self.window_s = window_s
        self._recent: deque[AsyncResult] = deque(maxlen=max(1, quota))
        self._clock, self._sleep = clock, sleep
        self._order = Semaphore()

    def resized(self, quota: int) -> SendGuard:
        """resized is this guard with another quota, remembering the latest sends."""
        guard = SendGuard(quota, self.window_s, self._clock, self._sleep)
        guard._recent.extend(list(self._recent)[-quota:])
        return guard

    @contextmanager
    def turn(self, deadline: float | None = None) -> Iterator[bool]:
        """turn waits, in order, until the request may go: True, or False past deadline.

        A deadline (unix time) is when the waiting match is abandoned: its players give up.
        """
        answered = AsyncResult()
        admitted = self._admit(answered, deadline)
        try:
            yield admitted
        finally:
            if admitted:
                answered.set(self._clock())

    def _admit(self, answered: AsyncResult, deadline: float | None) -> bool:
        """_admit takes the next place in the window for a request, if it comes by deadline."""
        left = None if deadline is None else max(0.0, deadline - self._clock())
        if not self._order.acquire(timeout=left):
            return False
        try:
            oldest = None
            if len(self._recent) == self._recent.maxlen:
                left = None if deadline is None else max(0.0, deadline - self._clock())
                try:
                    oldest = self._recent[0].get(timeout=left)
                except gevent.Timeout:
                    return False
            now = self._clock()
            send_at = window_opens(now, oldest, self.window_s, deadline)
            if send_at is None:
                self._sleep(max(0.0, deadline - now))  # the players wait, then go
                return False
            if send_at > now:
                self._sleep(send_at - now)
            self._recent.append(answered)
            return True
        finally:
            self._order.release()
