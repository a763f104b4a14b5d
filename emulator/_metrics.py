"""Counters and service times the emulator reports at GET /_emulator/metrics."""

from __future__ import annotations

from collections import Counter, defaultdict
from itertools import islice

SERVICE_TIME_WINDOW = 65_536
PERCENTILES = (50, 90, 95, 99)


class Metrics:
    """Metrics counts responses per route and status, and keeps recent service times.

    Service-time percentiles are exact over the last SERVICE_TIME_WINDOW
    requests (nearest-rank), not averaged.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.responses: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.webhooks: Counter[str] = Counter()
        self._service_s = [0.0] * SERVICE_TIME_WINDOW
        self._count = 0

    def record(self, route: str, status: int, service_s: float) -> None:
        self.responses[route][str(status)] += 1
        self._service_s[self._count % SERVICE_TIME_WINDOW] = service_s
        self._count += 1

    def service_time_ms(self) -> dict[str, float | int]:
        """service_time_ms gives p50/p90/p95/p99/max in milliseconds over the window."""
        size = min(self._count, SERVICE_TIME_WINDOW)
        samples = sorted(islice(self._service_s, size))
        summary: dict[str, float | int] = {"window": size}
        for p in PERCENTILES:
            summary[f"p{p}"] = _ms(nearest_rank(samples, p)) if samples else 0.0
        summary["max"] = _ms(samples[-1]) if samples else 0.0
        return summary

    def snapshot(self) -> dict:
        return {
            "responses": {route: dict(codes) for route, codes in self.responses.items()},
            "service_time_ms": self.service_time_ms(),
            "webhooks": dict(self.webhooks),
        }


def nearest_rank(sorted_samples: list[float], percentile: float) -> float:
    """nearest_rank is the smallest sample with at least percentile% of samples at or below it.

    >>> nearest_rank([1, 2, 3, 4], 50), nearest_rank([1, 2, 3, 4], 99)
    (2, 4)
    """
    rank = max(1, -(-len(sorted_samples) * percentile // 100))
    return sorted_samples[int(rank) - 1]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)
