"""How many Locust users a process needs: the pool follows the rate, nobody picks -u."""

from __future__ import annotations

import math

MIN_USERS_PER_CLASS = 4  # per process: a user held by the send guard is not idle
# Past this many users per process an overloaded target only queues more: starts are
# dropped (and counted) instead, as an open model should.
MAX_USERS_PER_PROCESS = 256


def pool_size(rate: float, latency_s: float, shares: list[float], processes: int = 1) -> int:
    """pool_size is how many users keep up with `rate` starts/s at `latency_s` each.

    Twice the concurrency Little's law asks for, and enough that every endpoint
    with traffic has MIN_USERS_PER_CLASS users in every process whatever its share,
    but never more than MAX_USERS_PER_PROCESS in a process.

    >>> pool_size(40, 0.5, [1.0]), pool_size(40, 0.01, [1.0]), pool_size(5, 0.01, [0.8, 0.2], 2)
    (42, 4, 40)
    >>> pool_size(4000, 9.0, [1.0], processes=2)
    512
    """
    needed = math.ceil(rate * max(latency_s, 0.01) * 2) + 2
    smallest = min(share for share in shares if share > 0)
    wanted = max(needed, math.ceil(MIN_USERS_PER_CLASS * processes / smallest))
    return min(wanted, MAX_USERS_PER_PROCESS * processes)


def settle_pool(current: int, wanted: int) -> int:
    """settle_pool grows the pool to `wanted` at once but shrinks it slowly.

    Latency percentiles wobble from second to second; following them both ways
    would start and stop users (each a new client and connection) all run long.

    >>> settle_pool(10, 30), settle_pool(30, 28), settle_pool(30, 10), settle_pool(0, 5)
    (30, 30, 27, 5)
    """
    if wanted >= current or wanted >= current * 0.8:
        return max(current, wanted)
    return max(wanted, math.floor(current * 0.9))
