"""Real Locust processes against the emulator on a free loopback port."""

import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from edgebench.records import read_records

from .conftest import free_port
from .test_server import EmulatorProcess

LOCUST = [
    sys.executable,
    "-m",
    "locust",
    "-f",
    "locustfiles/edgegap.py",
    "--headless",
    "--only-summary",
]


def scenario_file(tmp_path: Path, mode: str, seconds: int, rate: float, **extra: str) -> Path:
    lines = "\n".join(f"{key} = {value}" for key, value in extra.items())
    path = tmp_path / f"{mode}.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            name = "{mode}-test"
            seed = 9
            [target]
            application = "my-game"
            version = "1.0.0"
            [rate]
            mode = "{mode}"
            {lines}
            stages = [{{ kind = "hold", duration = "{seconds}s", rate = {rate} }}]
            [[regions]]
            name = "world"
            countries = ["US", "BR", "DE", "JP"]
            """
        )
    )
    return path


@pytest.fixture
def emulator():
    """emulator is `edgebench emulator` in its own process, as a run uses it."""
    with EmulatorProcess("--time-scale", "30") as url:
        yield SimpleNamespace(url=url)


def target_args(url: str, scenario: Path, results: Path) -> list[str]:
    """target_args are the locustfile's host, scenario and results folder options."""
    return ["--host", url, "--scenario", str(scenario), "--results-dir", str(results)]


def run_locust(server, scenario: Path, results: Path, *args: str, timeout: float = 120):
    command = [*LOCUST, *target_args(server.url, scenario, results), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def load(results: Path, pattern: str = "requests-*.jsonl") -> list[dict]:
    records = []
    for path in sorted(results.glob(pattern)):
        records.extend(read_records(path)[0])
    return records


def most_in_any_second(times: list[float]) -> int:
    times = sorted(times)
    return max(sum(1 for u in times[i : i + 100] if u < t + 1.0) for i, t in enumerate(times))


def test_respect_mode_with_two_processes_never_gets_a_429(emulator, tmp_path):
    scenario = scenario_file(tmp_path, "respect", 20, 40)
    result = run_locust(emulator, scenario, tmp_path / "run", "--processes", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    records = load(tmp_path / "run")
    outcomes = Counter(r["outcome"] for r in records)
    assert outcomes["rate_limited"] == 0
    assert outcomes["accepted"] / 20 >= 0.95 * 40
    assert {r["worker"] for r in records} == {"w0", "w1"}
    assert sorted(r["index"] for r in records) == list(range(len(records)))
    assert most_in_any_second([r["t_send"] for r in records if r["t_send"]]) <= 40


def test_exceed_mode_offers_the_factor_and_the_limiter_refuses_the_excess(emulator, tmp_path):
    scenario = scenario_file(tmp_path, "exceed", 10, 40, factor="1.5")
    result = run_locust(emulator, scenario, tmp_path / "run")
    assert result.returncode == 1  # Locust's exit code when requests failed: the 429s
    records = load(tmp_path / "run")
    sent = [r["t_send"] for r in records if r["t_send"]]
    assert len(sent) / 10 == pytest.approx(60, rel=0.03)
    shares = Counter(r["outcome"] for r in records)
    assert shares["rate_limited"] / len(records) == pytest.approx(1 / 3, abs=0.05)
    assert all(r["latency_sched_ms"] >= r["latency_ms"] for r in records if r["t_send"])


def test_ctrl_c_mid_run_leaves_a_complete_readable_results_folder(emulator, tmp_path):
    scenario = scenario_file(tmp_path, "respect", 30, 20)
    results = tmp_path / "run"
    command = [*LOCUST, *target_args(emulator.url, scenario, results)]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    time.sleep(6)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr[-2000:]
    records, skipped = read_records(results / "requests-w0.jsonl")
    assert skipped == 0
    assert 40 <= len(records) < 600
    manifest = (results / "manifest.json").read_text()
    assert '"ended_at"' in manifest
    assert '"token_set": false' in manifest


def test_webhooks_record_when_each_deployment_became_ready(emulator, tmp_path):
    scenario = scenario_file(tmp_path, "respect", 5, 10)
    scenario.write_text(scenario.read_text() + "\n[requests]\nwebhooks = true\n")
    result = run_locust(emulator, scenario, tmp_path / "run")
    assert result.returncode == 0, result.stderr[-2000:]
    requests = {r["request_id"]: r for r in load(tmp_path / "run") if r["request_id"]}
    ready = [w for w in load(tmp_path / "run", "events-*.jsonl") if w["event"] == "ready"]
    assert len(ready) >= 0.9 * len(requests)
    for callback in ready:
        request = requests[callback["request_id"]]
        # 1.5 to 3 s of platform time to boot, at 30x: well under a second of wall time.
        assert 0 < callback["t_received"] - request["t_send"] < 2


def test_a_public_webhook_url_sends_every_workers_callbacks_to_worker_0(emulator, tmp_path):
    port = free_port()
    scenario = scenario_file(tmp_path, "respect", 5, 10)
    public = f"http://127.0.0.1:{port}"  # a tunnel's address; here the tunnel is the identity
    extra = f'webhooks = true\nwebhook_public_url = "{public}/"\nwebhook_port = {port}\n'
    scenario.write_text(scenario.read_text() + "\n[requests]\n" + extra)
    result = run_locust(emulator, scenario, tmp_path / "run", "--processes", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    sent = load(tmp_path / "run")
    assert {r["worker"] for r in sent} == {"w0", "w1"}
    assert [p.name for p in (tmp_path / "run").glob("events-*.jsonl")] == ["events-w0.jsonl"]
    ready = {e["request_id"] for e in load(tmp_path / "run", "events-*.jsonl")}
    from_w1 = {r["request_id"] for r in sent if r["worker"] == "w1" and r["request_id"]}
    assert len(from_w1 & ready) >= 0.9 * len(from_w1) > 0


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("http://10.0.0.7:8080", "load traffic goes only to loopback addresses"),
        ("https://api.edgegap.com", "load traffic goes only to loopback addresses"),
    ],
)
def test_non_loopback_hosts_are_refused_before_any_traffic(tmp_path, host, message):
    scenario = scenario_file(tmp_path, "respect", 5, 5)
    command = [*LOCUST, *target_args(host, scenario, tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("requests-*"))


def test_a_bad_scenario_stops_locust_with_one_line_per_problem(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("name = 'x'\n[rate]\nmode = 'wild'\n")
    command = [*LOCUST, "--host", "http://127.0.0.1:9", "--scenario", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert any("rate.mode" in line for line in errors)
    assert "Traceback" not in result.stderr


def test_status_polling_measures_time_to_ready_within_the_status_limit(emulator, tmp_path):
    scenario = scenario_file(tmp_path, "respect", 5, 8)
    requests = '\n[requests]\npoll_status = true\npoll_interval = "0.2s"\nstatus_limit = 20\n'
    scenario.write_text(scenario.read_text() + requests)
    result = run_locust(emulator, scenario, tmp_path / "run")
    assert result.returncode == 0, result.stderr[-2000:]
    accepted = [r for r in load(tmp_path / "run") if r["outcome"] == "accepted"]
    events = load(tmp_path / "run", "events-*.jsonl")
    assert {e["source"] for e in events} == {"poll"}
    assert len({e["request_id"] for e in events if e["event"] == "ready"}) >= 0.8 * len(accepted)


def test_respect_mode_honours_retry_after_when_a_429_comes_anyway(tmp_path):
    # The API's real limit is lower than the scenario believes: 429s come, and then pauses.
    with EmulatorProcess("--rate-limit", "10") as url:
        scenario = scenario_file(tmp_path, "respect", 6, 20)
        result = run_locust(SimpleNamespace(url=url), scenario, tmp_path / "run")
    assert result.returncode == 1
    outcomes = Counter(r["outcome"] for r in load(tmp_path / "run"))
    assert outcomes["rate_limited"] >= 1
    assert outcomes["backoff"] >= 20  # starts due during the Retry-After pauses, not sent
    assert outcomes["accepted"] <= 10 * 6 + 10


def start_distributed(emulator, scenario: Path, results: Path, workers: int = 2):
    """start_distributed is a Locust master and its worker processes, as separate processes."""
    port = str(free_port())
    master = subprocess.Popen(
        [
            *LOCUST,
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            port,
            "--expect-workers",
            str(workers),
            *target_args(emulator.url, scenario, results),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    worker = [*LOCUST[:6], "--worker", "--master-host", "127.0.0.1", "--master-port", port]
    started = [
        subprocess.Popen(worker, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    return master, started


def test_a_master_and_two_worker_processes_share_one_schedule(emulator, tmp_path):
    scenario = scenario_file(tmp_path, "respect", 10, 20)
    results = tmp_path / "run"
    master, workers = start_distributed(emulator, scenario, results)
    _, stderr = master.communicate(timeout=90)
    for process in workers:
        process.wait(timeout=30)
    assert master.returncode == 0, stderr[-2000:]
    records = load(results)
    assert {r["worker"] for r in records} == {"w0", "w1"}
    assert sorted(r["index"] for r in records) == list(range(len(records)))
    assert abs(len(records) - 10 * 20 / 1.015) <= 3  # respect mode's margin at the limit
    assert Counter(r["outcome"] for r in records)["accepted"] == len(records)


def test_a_killed_worker_loses_about_a_second_and_the_rest_take_its_share(emulator, tmp_path):
    scenario = scenario_file(tmp_path, "exceed", 20, 20)
    results = tmp_path / "run"
    master, (survivor, victim) = start_distributed(emulator, scenario, results)
    time.sleep(8)
    victim.kill()
    killed_at = time.time()
    victim.wait(timeout=10)
    _, stderr = master.communicate(timeout=90)
    survivor.wait(timeout=30)
    assert "schedule is shared out afresh" in stderr
    records = load(results)
    victims = [r for r in records if r["worker"] == "w1"]
    # Its records were flushed at least every second until it died.
    assert max(r["t_sched"] for r in victims) > killed_at - 2.5
    # Once the master noticed (about 3 s) and the new split began (1 s later), the survivor
    # sends the whole schedule: every start from then on, once each.
    epoch = min(r["t_sched"] for r in records) - 0.025
    later = sorted(r["index"] for r in records if r["t_sched"] > killed_at + 6)
    assert later == list(range(later[0], later[0] + len(later)))
    assert abs(len(later) - 20 * (epoch + 20 - killed_at - 6)) <= 3
    analysed = subprocess.run(
        [sys.executable, "-m", "edgebench.cli", "analyze", str(results)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert analysed.returncode == 0, analysed.stderr


def test_injected_faults_are_classified_and_the_schedule_holds(tmp_path):
    faults = ["--fault-error-share", "0.1", "--fault-drop-share", "0.05"]
    faults += ["--fault-latency-ms", "40"]
    with EmulatorProcess("--time-scale", "30", *faults) as url:
        scenario = scenario_file(tmp_path, "exceed", 10, 30)
        result = run_locust(SimpleNamespace(url=url), scenario, tmp_path / "run")
    assert result.returncode == 1  # Locust's code when requests failed: the injected ones
    records = load(tmp_path / "run")
    shares = Counter(r["outcome"] for r in records)
    assert len(records) == pytest.approx(300, abs=3)  # every start, on schedule
    sent = len(records) - shares["dropped"]
    assert shares["server_error"] / sent == pytest.approx(0.1, abs=0.05)
    assert shares["transport_error"] / sent == pytest.approx(0.05, abs=0.04)
    assert shares["accepted"] / sent == pytest.approx(0.85, abs=0.07)
    latency = sorted(r["latency_ms"] for r in records if r["outcome"] == "accepted")
    assert latency[len(latency) // 2] > 10  # the injected latency shows
    assert "server error (500)" in result.stdout + result.stderr
