"""The run's live metrics for Prometheus, made from its records as `edgebench run` reads them.

    metrics = RunMetrics(scenario, run_name, host)
    metrics.add(record)                  # every record, as Progress reads it
    server = metrics.serve(9646)         # GET http://HOST:9646/metrics while the run is on
    metrics.write(results / "metrics.prom")  # the final figures (node_exporter's textfile format)

Made from the records, the metrics cover every worker of a distributed run (their
records reach the master's folder), and their counters end equal to summary.json's
counts. Every metric carries the run's labels (scenario, run).
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    start_http_server,
    write_to_textfile,
)

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
WAIT_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
QUEUE_WINDOW_S = 5.0
METRICS_FILE = "metrics.prom"
disable_created_metrics()  # no *_created series: a run's counters all start with it


class RunMetrics:
    """RunMetrics keeps the run's metrics in a registry of its own."""

    def __init__(self, scenario, run: str, host: str, clock=time.time) -> None:
        self.registry = CollectorRegistry()
        self.clock = clock
        labels = {"scenario": scenario.name, "run": run}
        self._labels = labels
        names = [*labels]
        registry = self.registry
        Info(
            "edgebench_run",
            "The run: its scenario, rate mode and target.",
            names,
            registry=registry,
        ).labels(**labels).info(
            {"mode": scenario.rate.mode, "host": host, "limit": str(scenario.rate.limit)}
        )
        self.requests = Counter(
            "edgebench_requests",
            "Scheduled starts and retries by endpoint and outcome (a record each; "
            "outcomes dropped, backoff, over_budget and abandoned were never sent).",
            [*names, "endpoint", "outcome"],
            registry=registry,
        )
        self.dropped = Counter(
            "edgebench_dropped_starts",
            "Starts that came due with no user free to send them.",
            names,
            registry=registry,
        ).labels(**labels)
        self.matches = Counter(
            "edgebench_matches",
            "Matches that ended, by how: served, failed or abandoned.",
            [*names, "final"],
            registry=registry,
        )
        self.duration = Histogram(
            "edgebench_request_duration_seconds",
            "Latency of each sent request, from its send to its answer.",
            [*names, "endpoint"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.wait = Histogram(
            "edgebench_player_wait_seconds",
            "Players' wait for each served match, from its due time to its 202.",
            names,
            buckets=WAIT_BUCKETS_S,
            registry=registry,
        ).labels(**labels)
        self.offered = Gauge(
            "edgebench_offered_rate",
            "The schedule's offered rate (starts per second) at the latest record.",
            names,
            registry=registry,
        ).labels(**labels)
        self.limit = Gauge(
            "edgebench_rate_limit", "The API's limit the run respects or exceeds (per second).",
            names, registry=registry,
        ).labels(**labels)  # fmt: skip
        self.limit.set(scenario.rate.limit)
        self.queue = Gauge(
            "edgebench_queue_length",
            f"Matches waiting for the client's limiter: the time average over the last "
            f"{QUEUE_WINDOW_S:g} s, from the waits the records tell (a record is written when "
            "its wait ends).",
            names,
            registry=registry,
        ).labels(**labels)
        self._waits: deque[tuple[float, float]] = deque()  # (record read at, queue seconds)

    def add(self, record: dict) -> None:
        """add counts one record."""
        labels = self._labels
        endpoint, outcome = record.get("endpoint") or "", record.get("outcome") or ""
        self.requests.labels(**labels, endpoint=endpoint, outcome=outcome).inc()
        if outcome == "dropped":
            self.dropped.inc()
        if final := record.get("final"):
            self.matches.labels(**labels, final=final).inc()
        if (latency := record.get("latency_ms")) is not None:
            self.duration.labels(**labels, endpoint=endpoint).observe(latency / 1000)
        if final == "served" and (waited := record.get("latency_sched_ms")) is not None:
            self.wait.observe(max(0.0, waited) / 1000)
        if (rate := record.get("offered_rate")) is not None:
            self.offered.set(rate)
        if queued := record.get("queue_ms"):
            self._waits.append((self.clock(), queued / 1000))

    def tick(self) -> None:
        """tick updates what is a time average: the queue's length."""
        now = self.clock()
        while self._waits and self._waits[0][0] < now - QUEUE_WINDOW_S:
            self._waits.popleft()
        self.queue.set(sum(seconds for _, seconds in self._waits) / QUEUE_WINDOW_S)

    def serve(self, port: int, address: str = "0.0.0.0") -> tuple:
        """serve answers GET /metrics on port (0: a free one) until the process ends."""
        return start_http_server(port, address, registry=self.registry)

    def write(self, path: Path) -> None:
        write_to_textfile(str(path), self.registry)
