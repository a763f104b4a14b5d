"""A distributed run across hosts of its own: the emulator, the master and two workers each in
a network namespace (tests/netns.py), joined by a bridge whose links the tests cut.

Every address is inside namespaces the test created; the target is not loopback, so the
real API's rules apply (a token, a budget, cleanup), as on Kubernetes. They are in the
second group of live tests, beside the first on the other worker (Makefile): the rates are
low and every wait is for a condition.
"""

import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import httpx
import orjson
import pytest

from .conftest import AUTH, TOKEN
from .netns import Network, unavailable
from .test_traffic import load, most_in_any_second, scenario_file, wait_for

pytestmark = pytest.mark.xdist_group("live2")

EDGEBENCH = [sys.executable, "-m", "edgebench.cli"]
ENV = os.environ | {"EDGEGAP_API_TOKEN": TOKEN}
EMULATOR_PORT = 8787
DEPLOY = "POST /v2/deployments"
HEARTBEAT_TIMEOUT_S = 3  # Locust's master: 3 heartbeats a second apart missed


@pytest.fixture(scope="module")
def network():
    if why := unavailable():
        pytest.skip(f"no network namespaces here: {why}")
    with Network(["emu", "master", "w1", "w2"]) as net:
        address = net.address("emu")
        emulator = start_emulator(net, address, EMULATOR_PORT)
        try:
            yield SimpleNamespace(
                net=net, url=f"http://{address}:{EMULATOR_PORT}", ports=iter(range(5600, 5700))
            )
        finally:
            emulator.send_signal(signal.SIGINT)
            emulator.communicate(timeout=10)
            emulator.stdout.close()
            emulator.stderr.close()


@pytest.fixture
def lab(network):
    """lab is the network with its emulator reset, as a run finds it."""
    network.net.inside("master", httpx.post, f"{network.url}/_emulator/reset").raise_for_status()
    return network


def start_emulator(net: Network, address: str, port: int) -> subprocess.Popen:
    command = [*EDGEBENCH, "emulator", "--listen", address, "--port", str(port)]
    command += ["--time-scale", "30"]
    emulator = net.popen("emu", command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = emulator.stdout.readline().strip()
    assert url == f"http://{address}:{port}", emulator.stderr.read()
    return emulator


def emulator_get(lab, path: str) -> dict:
    answer = lab.net.inside("master", httpx.get, f"{lab.url}{path}", headers=AUTH, timeout=10)
    return answer.raise_for_status().json()


def deploy_answers(lab) -> Counter:
    """deploy_answers is the emulator's count of POST /v2/deployments answers by status."""
    responses = emulator_get(lab, "/_emulator/metrics")["responses"]
    return Counter(responses.get(DEPLOY, {}))


def start_master(lab, scenario: Path, results: Path, *options: str) -> tuple[subprocess.Popen, int]:
    port = next(lab.ports)
    command = [
        *EDGEBENCH,
        "run",
        str(scenario),
        "--host",
        lab.url,
        "--master",
        "--expect-workers",
        "2",
        "--master-bind-host",
        lab.net.address("master"),
        "--master-bind-port",
        str(port),
        "--results-dir",
        str(results),
        "--no-plots",
        *options,
    ]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    return lab.net.popen("master", command, env=ENV, **pipes), port


def start_workers(lab, port: int, logs: Path) -> dict[str, subprocess.Popen]:
    """start_workers is one `edgebench worker` on each worker host (each a session of its own),
    each logging to logs/HOST.log."""
    command = [
        *EDGEBENCH,
        "worker",
        "--master-host",
        lab.net.address("master"),
        "--master-port",
        str(port),
    ]
    workers = {}
    for host in ("w1", "w2"):
        with (logs / f"{host}.log").open("w") as log:
            workers[host] = lab.net.popen(
                host,
                command,
                env=ENV,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
    return workers


def running(lab, results: Path) -> list[dict]:
    """running are the run's deployments (by its tag) still ready at the emulator."""
    tag = orjson.loads((results / "manifest.json").read_bytes())["run_tag"]
    listed = emulator_get(lab, "/v1/deployments")["data"]
    return [d for d in listed if tag in d["tags"] and d["ready"]]


def sent(records: list[dict]) -> list[dict]:
    return [r for r in records if r["t_send"] is not None]


def finish(master: subprocess.Popen, workers: dict[str, subprocess.Popen]) -> str:
    _, stderr = master.communicate(timeout=120)
    for worker in workers.values():
        worker.wait(timeout=30)
    return stderr


def test_a_respect_run_across_two_worker_hosts_holds_the_limit_and_records_every_start(
    lab, tmp_path
):
    scenario = scenario_file(tmp_path, "respect", 12, 40)  # 480 starts at the limit
    checks = tmp_path / "checks.toml"
    checks.write_text('checks = ["share_429 == 0"]\n')
    results = tmp_path / "run"
    # Cleanup stops at 5/s: for a thousand deployments, minutes (the master-kill test has it).
    rules = ["--max-deployments", "2000", "--no-cleanup", "--thresholds", str(checks)]
    master, port = start_master(lab, scenario, results, *rules)
    workers = start_workers(lab, port, tmp_path)
    stderr = finish(master, workers)
    assert master.returncode == 0, stderr[-3000:]
    records = load(results)
    manifest = orjson.loads((results / "manifest.json").read_bytes())
    summary = orjson.loads((results / "summary.json").read_bytes())
    # Every scheduled start recorded, once, in the one folder on the master.
    assert sorted(r["match"] for r in records) == list(
        range(manifest["scenario"]["expected_requests"])
    )
    assert summary["unrecorded_starts"] == 0
    assert manifest["schedule_completed"]
    assert {r["worker"] for r in records} == {"w0", "w1"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checks.toml",
        "respect.toml",
        "run",
        "w1.log",
        "w2.log",
    ]
    # At most 40 sends in any second, and the emulator refused none of them.
    assert most_in_any_second([r["t_send"] for r in sent(records)]) <= 40
    answers = deploy_answers(lab)
    assert answers["429"] == 0
    assert sum(answers.values()) == len(sent(records))
    assert answers["202"] == sum(r["outcome"] == "accepted" for r in records) > 400


def test_a_worker_cut_off_for_10_s_loses_only_its_starts_and_the_rules_hold(lab, tmp_path):
    seconds, budget = 18, 580  # about 710 starts: the budget runs out near the end
    scenario = scenario_file(tmp_path, "respect", seconds, 40)
    results = tmp_path / "run"
    master, port = start_master(
        lab, scenario, results, "--max-deployments", str(budget), "--no-cleanup"
    )
    workers = start_workers(lab, port, tmp_path)
    # Cut once both workers' records arrive (a few seconds in), restored 10 s later.
    wait_for(lambda: {r["worker"] for r in load(results)} == {"w0", "w1"}, every=0.2)
    wait_for(lambda: len(load(results)) >= 120, every=0.2)
    lab.net.cut("w2")
    cut_at = time.time()
    wait_for(lambda: workers["w2"].poll() is not None, timeout=10)  # it lost its master: quit
    quit_after = time.time() - cut_at
    time.sleep(max(0.0, cut_at + 10 - time.time()))  # the partition lasts 10 s, whatever it did
    lab.net.restore("w2")
    stderr = finish(master, workers)
    assert master.returncode == 3, stderr[-3000:]  # INCOMPLETE: the cut worker's lost starts
    assert "INCOMPLETE: " in stderr + (results / "report.html").read_text()
    assert quit_after < HEARTBEAT_TIMEOUT_S + 3
    records = load(results)
    by_worker = {w: [r for r in records if r["worker"] == w] for w in ("w0", "w1")}
    cut = min(by_worker, key=lambda w: max(r["t_sched"] for r in by_worker[w]))
    survivor = next(w for w in by_worker if w != cut)
    # The master noticed within its heartbeat timeout (3 missed, a second apart: 3 to 4 s
    # after the cut) and shared the schedule out afresh at its next tick (1 s), 1 s ahead:
    # from then the survivor sends every start, once each, to the end.
    mine = sorted(r["match"] for r in by_worker[survivor])
    first_whole = next(
        m for m, after in itertools.pairwise(mine) if after == m + 1 and m > mine[0] + 2
    )
    assert mine[mine.index(first_whole) :] == list(range(first_whole, mine[-1] + 1))
    resplit_at = next(r["t_sched"] for r in by_worker[survivor] if r["match"] == first_whole)
    assert resplit_at - cut_at < HEARTBEAT_TIMEOUT_S + 1 + 1 + 1
    # No start sent twice; the lost ones counted, to the last start of the run.
    matches = [r["match"] for r in records]
    assert len(matches) == len(set(matches))
    manifest = orjson.loads((results / "manifest.json").read_bytes())
    summary = orjson.loads((results / "summary.json").read_bytes())
    expected = manifest["scenario"]["expected_requests"]
    assert summary["unrecorded_starts"] == expected - len(matches) > 0
    # Every send the emulator saw is recorded, or was the cut worker's last unshipped second.
    answers = deploy_answers(lab)
    assert (
        len(sent(records))
        <= sum(answers.values())
        <= len(sent(records)) + summary["unrecorded_starts"]
    )
    # The limit and the budget held throughout.
    assert answers["429"] == 0
    assert most_in_any_second([r["t_send"] for r in sent(records)]) <= 40
    assert emulator_get(lab, "/_emulator/metrics")["deployments_created"] <= budget
    assert Counter(r["outcome"] for r in records)["over_budget"] > 0


def test_a_master_killed_outright_leaves_no_load_and_cleanup_leaves_nothing(lab, tmp_path):
    scenario = scenario_file(tmp_path, "respect", 30, 10)  # would send for 30 s
    results = tmp_path / "run"
    master, port = start_master(lab, scenario, results, "--max-deployments", "300")
    workers = start_workers(lab, port, tmp_path)
    wait_for(lambda: {r["worker"] for r in load(results)} == {"w0", "w1"}, every=0.2)
    lab.net.kill_all("master")  # the master's host died: `edgebench run` and its Locust master
    killed_at = time.monotonic()
    master.communicate(timeout=30)
    for worker in workers.values():
        worker.wait(timeout=15)
    # The workers noticed their master was gone and quit: no load left behind.
    assert time.monotonic() - killed_at < 5
    sent_then = sum(deploy_answers(lab).values())
    # Nobody ran the run's cleanup: `edgebench cleanup` stops what it created, by its records
    # and then by its tag (what the dead master never heard of).
    cleaned = lab.net.run("master", [*EDGEBENCH, "cleanup", str(results)], env=ENV)
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert "stopped" in cleaned.stdout
    assert running(lab, results) == []
    assert sum(deploy_answers(lab).values()) == sent_then  # and nothing was sent since


def test_an_emulator_restarted_mid_run_shows_as_errors_and_the_run_ends_on_time(network, tmp_path):
    port, seconds = 8788, 8
    url = f"http://{network.net.address('emu')}:{port}"
    emulator = start_emulator(network.net, network.net.address("emu"), port)
    scenario = scenario_file(tmp_path, "respect", seconds, 20)
    results = tmp_path / "run"
    command = [*EDGEBENCH, "run", str(scenario), "--host", url, "--results-dir", str(results)]
    rules = ["--max-deployments", "1000", "--no-cleanup", "--no-plots"]
    started = time.monotonic()
    run = network.net.popen(
        "master",
        [*command, *rules],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(load(results)) >= 40, every=0.2)
        emulator.kill()  # gone outright, then back on the same address
        emulator.communicate(timeout=10)
        wait_for(lambda: any(r["outcome"] == "transport_error" for r in load(results)), every=0.2)
        emulator = start_emulator(network.net, network.net.address("emu"), port)
        _, stderr = run.communicate(timeout=60)
    finally:
        emulator.kill()
        emulator.communicate(timeout=10)
    assert time.monotonic() - started < seconds + 15  # on time: no hang on the dead host
    assert run.returncode in (0, 1), stderr[-3000:]
    assert "Traceback" not in stderr
    records = load(results)
    manifest = orjson.loads((results / "manifest.json").read_bytes())
    assert sorted(r["match"] for r in records) == list(
        range(manifest["scenario"]["expected_requests"])
    )
    outcomes = Counter(r["outcome"] for r in records)
    assert outcomes["transport_error"] > 0, outcomes
    restarted = max(r["t_sched"] for r in records if r["outcome"] == "transport_error")
    assert any(r["outcome"] == "accepted" and r["t_sched"] > restarted for r in records)
    summary = orjson.loads((results / "summary.json").read_bytes())
    assert summary["outcome_counts"]["transport_error"] == outcomes["transport_error"]


@pytest.fixture
def small_disk(tmp_path):
    """small_disk is a tmpfs of 64 MB the test mounts (and unmounts, whatever happens)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def fill(disk: Path) -> Path:
    """fill writes a file until disk has no byte left: another writer took the space."""
    filler = disk / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(bytes(1 << 20))
                handle.flush()
        except OSError:
            pass
    return filler


def test_a_disk_that_fills_mid_run_stops_it_in_one_line_and_keeps_its_records(
    lab, small_disk, tmp_path
):
    scenario = scenario_file(tmp_path, "respect", 30, 10)
    results = small_disk / "run"
    command = [*EDGEBENCH, "run", str(scenario), "--host", lab.url, "--results-dir", str(results)]
    rules = ["--max-deployments", "300", "--no-plots"]  # and cleanup: on for this host
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    run = lab.net.popen("master", [*command, *rules], env=ENV, **pipes)
    wait_for(lambda: len(load(results)) >= 10, every=0.2)  # few: cleanup stops 5 a second
    filler = fill(small_disk)
    sent_when_full = sum(deploy_answers(lab).values())
    _, stderr = run.communicate(timeout=90)
    assert run.returncode == 2, stderr[-3000:]
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert errors == [
        f"Error: {results}: no space left on device: the run stopped sending; the records "
        f"written until then are kept; free some space, then `edgebench analyze {results}`"
    ]
    # Stopped at once: the next flush (within a second) failed, at 10 sends a second.
    assert sum(deploy_answers(lab).values()) - sent_when_full <= 20
    # What it created is stopped, those whose records the disk never took too (by tag).
    assert "cleanup: " in stderr
    assert "cleanup.json not written: No space left on device" in stderr
    assert running(lab, results) == []
    # Every record it could write is kept, and reads once there is room for the report.
    kept = load(results)
    filler.unlink()
    analyzed = subprocess.run(
        [*EDGEBENCH, "analyze", str(results), "--no-plots"], capture_output=True, text=True
    )
    assert analyzed.returncode in (1, 3), analyzed.stderr[-2000:]  # never a pass: it stopped
    assert "FAIL" in analyzed.stdout or "INCOMPLETE: " in analyzed.stdout
    summary = orjson.loads((results / "summary.json").read_bytes())
    assert summary["requests_total"] == len(kept) >= 10
