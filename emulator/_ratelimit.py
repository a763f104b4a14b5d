"""A strict sliding-window rate limiter, one window per (organisation, endpoint group).

Strict means: in any window [t, t + window) at most `limit` requests are
accepted for a key, whatever the alignment. A request over the limit is
refused and not counted, so a client that keeps to the limit is never refused.
Times are compared to the microsecond (RESOLUTION_S), so a client pacing at
exactly the limit is not refused over a floating-point rounding.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

RESOLUTION_S = 1e-6
# The endpoint groups a limit is kept for: the two deploy routes have a group each.
DEPLOY_GROUP, FLEET_DEPLOY_GROUP = "deploy", "fleet-deploy"
DEPLOY_GROUPS = (DEPLOY_GROUP, FLEET_DEPLOY_GROUP)
GROUPS = (*DEPLOY_GROUPS, "status", "list", "stop")


class SlidingWindowLimiter:
    """SlidingWindowLimiter remembers the accepted start times of the last window per key.

    >>> now = [0.0]
    >>> limiter = SlidingWindowLimiter(2, clock=lambda: now[0])
    >>> limiter.acquire("t"), limiter.acquire("t"), limiter.acquire("t")
    (0.0, 0.0, 1.0)
    >>> now[0] = 1.0
    >>> limiter.acquire("t")
    0.0
    """

    def __init__(
        self, limit: int, window_s: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window_s, self._clock = limit, window_s, clock
        self._accepted: dict[object, deque[float]] = {}

    def acquire(self, key: object) -> float:
        """acquire is 0.0 when the request is accepted, else the seconds until one would be."""
        now = self._clock()
        accepted = self._accepted.get(key)
        if accepted is None:
            accepted = self._accepted[key] = deque()
        horizon = now - self.window_s + RESOLUTION_S
        while accepted and accepted[0] <= horizon:
            accepted.popleft()
        if len(accepted) < self.limit:
            accepted.append(now)
            return 0.0
        return accepted[0] - horizon + RESOLUTION_S

    def reset(self) -> None:
        self._accepted.clear()


@dataclass(frozen=True, slots=True)
class RateLimits:
    """RateLimits sets requests per second per organisation for each endpoint group (0 = no
    limit): Edgegap limits an organisation, whichever of its tokens a request carries.

    The two deploy endpoints have a limit each by default, as the spec gives each its
    own 40/s; `shared_deploy_limit` makes them count against one.
    """

    deploy: int = 40
    status: int = 20
    list: int = 10
    stop: int = 0
    shared_deploy_limit: bool = False
    enabled: bool = True

    def group_limit(self, group: str) -> int:
        if not self.enabled:
            return 0
        return getattr(self, "deploy" if group in DEPLOY_GROUPS else group)


class RateLimiter:
    """RateLimiter applies RateLimits: `check(organisation, group)` gives Retry-After or None."""

    def __init__(self, limits: RateLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._limiters = {
            group: SlidingWindowLimiter(limit, clock=clock)
            for group in GROUPS
            if (limit := limits.group_limit(group)) > 0
        }

    def check(self, organisation: str, group: str) -> int | None:
        """check is None when accepted, else whole seconds for the Retry-After header."""
        if group == FLEET_DEPLOY_GROUP and self.limits.shared_deploy_limit:
            group = DEPLOY_GROUP
        limiter = self._limiters.get(group)
        if limiter is None:
            return None
        wait = limiter.acquire(organisation)
        return None if wait == 0.0 else max(1, math.ceil(wait))

    def reset(self) -> None:
        for limiter in self._limiters.values():
            limiter.reset()
