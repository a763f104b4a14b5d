"""First answers before any simulation: private hosts per region from Erlang B.

A region's private hosts are a loss system for its fleet deploys: a match that finds no free
slot overflows to the cloud. With Poisson match starts at `rate` a second, each holding a
server for `held_s` seconds (boot and match: Little's law gives `rate x held_s` servers
busy on average, the offered load A in Erlangs), the share that overflows from c slots is
Erlang B, whatever the distribution of match lengths:

    B(0) = 1,   B(k) = A B(k-1) / (k + A B(k-1))

    slots_for(101.0, 0.05)          # the fewest slots that overflow at most 5%: 105
    hosts_for(101.0, 0.05, 20)      # in hosts of 20 slots: 6

An approximation: arrivals are burstier than Poisson in a matchmaker's ticks, and the rate
moves within an hour; `edgebench advise` confirms it by simulation.
"""

from __future__ import annotations

import math

MOST_SLOTS = 10_000_000  # past this the recursion is not worth walking: no region is that big


def erlang_b(slots: int, load: float) -> float:
    """erlang_b is the share of arrivals that find all `slots` busy under `load` Erlangs.

    >>> round(erlang_b(105, 101.0), 3), round(erlang_b(110, 101.0), 3)
    (0.053, 0.031)
    """
    blocked = 1.0
    for k in range(1, slots + 1):
        blocked = load * blocked / (k + load * blocked)
    return blocked


def slots_for(load: float, overflow: float) -> int:
    """slots_for is the fewest slots whose Erlang B share is at most `overflow`."""
    if load <= 0:
        return 0
    blocked, k = 1.0, 0
    while blocked > overflow and k < MOST_SLOTS:
        k += 1
        blocked = load * blocked / (k + load * blocked)
    return k


def hosts_for(load: float, overflow: float, slots_per_host: int) -> int:
    """hosts_for is slots_for in whole hosts of slots_per_host slots each."""
    return math.ceil(slots_for(load, overflow) / max(1, slots_per_host))
