"""The run's Prometheus metrics from its records, and the Grafana dashboard drawn from them."""

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from edgebench.plan.scenario import load_scenario
from edgebench.runner.metrics import RunMetrics
from emulator._metrics import Metrics, PrometheusView

from .test_run import parsed, totals

# Started processes and servers, timed: one after another, in the first group of live
# tests (the second runs on the other worker: Makefile).
pytestmark = pytest.mark.xdist_group("live")

SENT = {"endpoint": "POST /v2/deployments", "latency_ms": 12.0, "offered_rate": 20.0}


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def metrics(clock=None) -> RunMetrics:
    scenario = load_scenario(Path("scenarios/smoke.toml"))
    return RunMetrics(scenario, "r1", "http://127.0.0.1:9", clock or Clock())


def samples(run: RunMetrics) -> dict:
    return parsed(generate_latest(run.registry).decode())


def test_each_record_counts_once_by_outcome_and_a_match_by_its_end():
    run = metrics()
    run.add(SENT | {"outcome": "rate_limited", "final": None, "latency_sched_ms": 30.0})
    run.add(SENT | {"outcome": "accepted", "final": "served", "latency_sched_ms": 1250.0})
    run.add({"endpoint": "POST /v2/deployments", "outcome": "dropped", "final": "failed"})
    got = samples(run)
    assert totals(got, "edgebench_requests_total", "outcome") == {
        "rate_limited": 1,
        "accepted": 1,
        "dropped": 1,
    }
    assert totals(got, "edgebench_matches_total", "final") == {"served": 1, "failed": 1}
    labels = (("run", "r1"), ("scenario", "smoke"))
    assert got[("edgebench_dropped_starts_total", labels)] == 1
    # The wait is the served match's, from its due time: 1.25 s, in the (1, 2] bucket.
    assert got[("edgebench_player_wait_seconds_count", labels)] == 1
    assert got[("edgebench_player_wait_seconds_bucket", (("le", "1.0"), *labels))] == 0
    assert got[("edgebench_player_wait_seconds_bucket", (("le", "2.0"), *labels))] == 1
    assert (
        got[("edgebench_request_duration_seconds_count", (("endpoint", SENT["endpoint"]), *labels))]
        == 2
    )
    assert got[("edgebench_offered_rate", labels)] == 20


def test_the_queue_length_is_the_time_average_of_the_waits_of_the_last_5_seconds():
    clock = Clock()
    run = metrics(clock)
    for _ in range(10):  # ten waits of 2 s each, told within a second: 4 waiting on average
        run.add(SENT | {"outcome": "accepted", "queue_ms": 2000.0})
    run.tick()
    labels = (("run", "r1"), ("scenario", "smoke"))
    assert samples(run)[("edgebench_queue_length", labels)] == 4
    clock.now += 6  # they fall out of the window
    run.tick()
    assert samples(run)[("edgebench_queue_length", labels)] == 0


def test_every_metric_the_grafana_dashboard_draws_is_one_edgebench_serves():
    platform = SimpleNamespace(
        active_by_location=lambda: {"Paris": 1},
        active_by_host=lambda: {"fleet-mtl-1": 1},
        failures={"no_capacity": 1},
    )
    run = metrics()
    run.add(SENT | {"outcome": "accepted", "final": "served", "latency_sched_ms": 5.0})
    emulator = Metrics()
    emulator.record("POST /v2/deployments", 202, 0.001)
    texts = [
        generate_latest(run.registry).decode(),
        PrometheusView(emulator, platform).text().decode(),
    ]
    served = {
        sample.name
        for text in texts
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    dashboard = json.loads(Path("deploy/grafana/edgebench-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 12
    drawn = {name for expr in exprs for name in re.findall(r"\bedgebench_\w+", expr)}
    assert drawn <= served, drawn - served
    variables = [
        v["query"]["query"]
        for v in dashboard["templating"]["list"]
        if "query" in v and isinstance(v["query"], dict)
    ]
    assert all("edgebench_run_info" in query for query in variables)
