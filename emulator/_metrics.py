"""Counters and service times the emulator reports at GET /_emulator/metrics (JSON) and
GET /metrics (Prometheus)."""

from __future__ import annotations

import itertools
from bisect import bisect_left
from collections import Counter, defaultdict
from itertools import islice

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

SERVICE_TIME_WINDOW = 65_536
PERCENTILES = (50, 90, 95, 99)
SERVICE_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


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
        self.service_buckets = [0] * (len(SERVICE_BUCKETS_S) + 1)  # the last: above them all
        self.service_sum_s = 0.0

    def record(self, route: str, status: int | str, service_s: float) -> None:
        self.responses[route][str(status)] += 1
        self._service_s[self._count % SERVICE_TIME_WINDOW] = service_s
        self._count += 1
        self.service_buckets[bisect_left(SERVICE_BUCKETS_S, service_s)] += 1
        self.service_sum_s += service_s

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


class PrometheusView:
    """PrometheusView is the emulator's metrics in Prometheus' text format, made when scraped.

    platform: what answers active_by_location(), active_by_host() and failures.
    """

    def __init__(self, metrics: Metrics, platform) -> None:
        self.metrics, self.platform = metrics, platform
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def text(self) -> bytes:
        return generate_latest(self.registry)

    def collect(self):
        responses = CounterMetricFamily(
            "edgebench_emulator_requests",
            "Requests answered by the emulator, by route and status.",
            labels=["route", "status"],
        )
        for route, codes in self.metrics.responses.items():
            for status, count in codes.items():
                responses.add_metric([route, status], count)
        yield responses
        yield self._gauge(
            "edgebench_emulator_active_deployments",
            "Deployments holding a server now, by location (city) or private host.",
            [([city, ""], n) for city, n in self.platform.active_by_location().items()]
            + [(["", host], n) for host, n in self.platform.active_by_host().items()],
        )
        failures = CounterMetricFamily(
            "edgebench_emulator_allocation_failures",
            "Deploys answered 422 (no server could be allocated), by cause.",
            labels=["cause"],
        )
        for cause, count in self.platform.failures.items():
            failures.add_metric([cause], count)
        yield failures
        yield self._service_time()

    def _gauge(self, name: str, text: str, rows) -> GaugeMetricFamily:
        gauge = GaugeMetricFamily(name, text, labels=["location", "private_host"])
        for labels, value in rows:
            gauge.add_metric(labels, value)
        return gauge

    def _service_time(self) -> HistogramMetricFamily:
        bounds = [*map(str, SERVICE_BUCKETS_S), "+Inf"]
        counts = itertools.accumulate(self.metrics.service_buckets)
        buckets = list(zip(bounds, counts, strict=True))
        histogram = HistogramMetricFamily(
            "edgebench_emulator_service_seconds", "Time the emulator took to answer a request."
        )
        histogram.add_metric([], buckets, self.metrics.service_sum_s)
        return histogram


def nearest_rank(sorted_samples: list[float], percentile: float) -> float:
    """nearest_rank is the smallest sample with at least percentile% of samples at or below it.

    >>> nearest_rank([1, 2, 3, 4], 50), nearest_rank([1, 2, 3, 4], 99)
    (2, 4)
    """
    rank = max(1, -(-len(sorted_samples) * percentile // 100))
    return sorted_samples[int(rank) - 1]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)
