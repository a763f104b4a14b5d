"""Rate limiters, one per (organisation, endpoint group), in the shapes a real API might use.

Edgegap publishes its limit (40 deploys a second per organisation), not its algorithm; a
world picks one (`[limits] algorithm`, emulator._world.LimiterShape):

- "sliding-window" (the default, strict): in any window [t, t + window) at most `limit`
  requests are accepted, whatever the alignment;
- "fixed-window": at most `limit` in each window [k, k + 1) x window, so up to twice the
  limit can pass within a second that straddles a boundary;
- "token-bucket": a bucket of `burst` tokens (default: the limit) refilled at `limit` a
  second; a burst passes at once, then the rate.

A request over the limit is refused and not counted, so a client that keeps to the limit
in every sliding second is refused by none of them. Times are compared to the microsecond
(RESOLUTION_S), so a client pacing at exactly the limit is not refused over a rounding.
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


class FixedWindowLimiter:
    """FixedWindowLimiter counts the accepted requests of each key in the current window.

    >>> now = [0.9]
    >>> limiter = FixedWindowLimiter(2, clock=lambda: now[0])
    >>> limiter.acquire("t"), limiter.acquire("t"), round(limiter.acquire("t"), 6)
    (0.0, 0.0, 0.1)
    >>> now[0] = 1.0
    >>> limiter.acquire("t"), limiter.acquire("t")
    (0.0, 0.0)
    """

    def __init__(
        self, limit: int, window_s: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window_s, self._clock = limit, window_s, clock
        self._counts: dict[object, tuple[int, int]] = {}  # key -> (window number, accepted)

    def acquire(self, key: object) -> float:
        now = self._clock()
        window = math.floor(now / self.window_s + RESOLUTION_S)
        number, accepted = self._counts.get(key, (window, 0))
        if number != window:
            accepted = 0
        if accepted < self.limit:
            self._counts[key] = (window, accepted + 1)
            return 0.0
        return max(RESOLUTION_S, (window + 1) * self.window_s - now)

    def reset(self) -> None:
        self._counts.clear()


class TokenBucketLimiter:
    """TokenBucketLimiter holds `burst` tokens per key, refilled at `limit` a second.

    >>> now = [0.0]
    >>> limiter = TokenBucketLimiter(2, burst=3, clock=lambda: now[0])
    >>> [limiter.acquire("t") for _ in range(4)]
    [0.0, 0.0, 0.0, 0.5]
    >>> now[0] = 0.5
    >>> limiter.acquire("t")
    0.0
    """

    def __init__(
        self, limit: int, burst: int | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.burst, self._clock = limit, burst or limit, clock
        self._buckets: dict[object, tuple[float, float]] = {}  # key -> (tokens, when)

    def acquire(self, key: object) -> float:
        now = self._clock()
        tokens, then = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.limit)
        if tokens >= 1.0 - RESOLUTION_S:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.limit

    def reset(self) -> None:
        self._buckets.clear()


ALGORITHMS = ("sliding-window", "fixed-window", "token-bucket")


def make_limiter(algorithm: str, limit: int, burst: int | None, clock: Callable[[], float]):
    """make_limiter is a limiter of the shape named (one of ALGORITHMS)."""
    if algorithm == "fixed-window":
        return FixedWindowLimiter(limit, clock=clock)
    if algorithm == "token-bucket":
        return TokenBucketLimiter(limit, burst, clock=clock)
    return SlidingWindowLimiter(limit, clock=clock)


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

    def __init__(
        self,
        limits: RateLimits,
        clock: Callable[[], float] = time.monotonic,
        algorithm: str = "sliding-window",
        burst: int | None = None,
    ) -> None:
        self.limits = limits
        # The deploy groups take the world's shape; the others stay strict windows.
        self._limiters = {
            group: make_limiter(algorithm if group in DEPLOY_GROUPS else "", limit, burst, clock)
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
