"""The cyclic garbage collector, tuned once for both request loops (live and simulated).

Each request allocates dozens of short-lived containers: with the default gen-0
threshold (700) the collector ran every few requests and was a top native frame in
py-spy; at 20,000 its collections still paused 1,000/s live runs for a few ms several
times a second (sends over 2 ms late: 71-116 of 12,000; at 200,000: 17-26). A simulated
day keeps the platform's deployments too: with the default thresholds the collector's
passes over them took 13 of 44 us a match. Frozen start-up objects are not rescanned.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

GC_THRESHOLD = 200_000  # young objects between collections


def collect_rarely() -> tuple[int, ...]:
    """collect_rarely freezes what exists now and collects rarely; it returns the thresholds
    it replaced."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *before[1:])
    return before


@contextmanager
def few_collections() -> Iterator[None]:
    """few_collections collects rarely while it lasts, then as before."""
    before = collect_rarely()
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
