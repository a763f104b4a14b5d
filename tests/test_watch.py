"""Watched checks: a run stops itself when one holds over its window.

The window logic runs in-process on made-up records; one real run against the emulator
gets an injected 5xx burst and must stop within the window plus a second.
"""

import subprocess
import sys
import textwrap
import time

import httpx
import orjson
import pytest

from checks import ThresholdError, parse_watch
from edgebench.plan.scenario import load_scenario
from edgebench.realapi.safety import decide
from edgebench.runner.run import watches_for
from edgebench.runner.watch import Watcher, window_value

from .test_server import EmulatorProcess
from .test_traffic import wait_for

# Started processes and servers, timed: one after another, in the second group of live
# tests (the first runs on the other worker: Makefile).
pytestmark = pytest.mark.xdist_group("live2")

EDGEBENCH = [sys.executable, "-m", "edgebench.cli"]


def sends(start: float, seconds: float, rate: float, outcome: str, latency: float = 2.0):
    return [
        {"t_send": start + k / rate, "outcome": outcome, "latency_ms": latency}
        for k in range(int(seconds * rate))
    ]


def test_a_watch_holds_only_over_a_whole_window_of_enough_sends():
    watcher = Watcher([parse_watch("abort if share_error > 0.5 for 3s")])
    for record in sends(0.0, 2.5, 20, "server_error"):
        watcher.add(record)
    assert watcher.breached() is None  # every send failed, but the run is younger than 3 s
    for record in sends(2.5, 1.0, 20, "server_error"):
        watcher.add(record)
    assert watcher.breached().text == "share_error > 0.5 for 3s"
    assert watcher.breaches[0][1] == pytest.approx(3.45)


def test_a_watch_without_the_breach_never_holds_and_a_report_only_watch_does_not_abort():
    aborting = parse_watch("abort if share_error > 0.5 for 3s")
    noting = parse_watch({"check": "p95_ms > 100", "for": "2s", "abort": False})
    watcher = Watcher([aborting, noting])
    healthy = sends(0.0, 10, 20, "accepted") + sends(10.0, 10, 20, "accepted", latency=500)
    for second in range(20):
        for record in healthy[second * 20 : (second + 1) * 20]:
            watcher.add(record)
        assert watcher.breached() is None
    assert [w for w, _ in watcher.breaches] == [noting]  # seen once, reported, not aborted on


def test_window_values_are_shares_of_the_sends_and_latency_percentiles():
    window = [(0.0, "accepted", 1.0), (0.1, "rate_limited", 2.0), (0.2, "transport_error", 3.0)]
    assert window_value("share_429", window) == pytest.approx(1 / 3)
    assert window_value("share_error", window) == pytest.approx(1 / 3)
    assert window_value("p50_ms", window) == 2.0


def test_against_a_remote_host_an_abort_on_errors_is_on_by_default(monkeypatch):
    monkeypatch.setenv("EDGEGAP_API_TOKEN", "not-a-real-token")
    scenario = load_scenario("scenarios/smoke.toml")
    remote = decide("https://api.edgegap.com", "respect", None, None, False)
    local = decide("http://127.0.0.1:1", "respect", None, None, False)
    assert [w.text for w in watches_for(scenario, remote)] == ["share_error > 0.5 for 10s"]
    assert watches_for(scenario, local) == []


@pytest.mark.parametrize(
    ("item", "says"),
    [
        ("abort if share_error > 0.5", "not a watched check"),
        ({"check": "share_429 > 0", "for": "soon"}, "not a duration"),
        ({"check": "ttr_p50_s > 3", "for": "5s"}, "cannot be watched live"),
        ({"check": "share_429 > 0", "for": "5s", "stop": True}, "check, for and abort"),
    ],
)
def test_bad_watches_say_what_to_write(item, says):
    with pytest.raises(ThresholdError, match=says):
        parse_watch(item)


def test_a_run_stops_itself_within_the_window_of_an_injected_5xx_burst(tmp_path):
    # 30 requests/s; once 20 were accepted, every answer is a 500: the watch must stop the
    # run within its 2 s window plus a second, long before the scenario's 40 s.
    scenario = tmp_path / "burst.toml"
    scenario.write_text(
        textwrap.dedent(
            """
            name = "burst"
            seed = 4
            thresholds = ["share_429 == 0", "abort if share_error > 0.5 for 2s"]
            [target]
            application = "my-game"
            version = "1.0.0"
            [rate]
            mode = "exceed"
            stages = [{ kind = "hold", duration = "40s", rate = 30 }]
            [[regions]]
            name = "europe"
            countries = ["DE", "FR"]
            """
        )
    )
    results = tmp_path / "run"
    with EmulatorProcess("--time-scale", "30") as url:
        command = [*EDGEBENCH, "run", str(scenario), "--host", url, "--no-plots"]
        run = subprocess.Popen(
            [*command, "--results-dir", str(results)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        metrics = f"{url}/_emulator/metrics"
        wait_for(
            lambda: (
                httpx.get(metrics).json()["responses"].get("POST /v2/deployments", {}).get("202", 0)
                > 20
            )
        )
        httpx.post(f"{url}/_emulator/faults", json={"error_share": 1.0})
        burst = time.time()
        out, err = run.communicate(timeout=60)
    assert run.returncode == 1, err[-3000:]
    assert "FAIL: aborted: share_error > 0.5 for 2s at" in out
    manifest = orjson.loads((results / "manifest.json").read_bytes())
    assert burst < manifest["aborted"]["at"] <= burst + 2 + 1
    assert manifest["ended_at"] - burst < 2 + 1 + 5  # stopped, not run to its 40 s
    assert "aborted: share_error &gt; 0.5 for 2s" in (results / "report.html").read_text()
