"""`edgebench run` end to end: emulator, Locust processes, analysis, report and exit code.

One real run of each kind (one process, two processes, Ctrl-C once, Ctrl-C twice);
what needs no traffic runs in-process with click's CliRunner.
"""

import itertools
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from edgebench._errors import EdgebenchError
from edgebench.cli import main
from edgebench.plan.overrides import OVERRIDDEN, override_words
from edgebench.plan.scenario import load_scenario
from edgebench.plan.schedule import Schedule
from edgebench.records import read_records
from edgebench.runfolder import check_results_dir

from .conftest import free_port
from .test_server import EmulatorProcess
from .test_traffic import most_in_any_second, wait_for

# Started processes and servers, timed: one after another, in the first group of live
# tests (the second runs on the other worker: Makefile).
pytestmark = pytest.mark.xdist_group("live")

EDGEBENCH = [sys.executable, "-m", "edgebench.cli"]


def edgebench_run(*args: str, timeout: float = 150) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*EDGEBENCH, "run", *args], capture_output=True, text=True, timeout=timeout
    )


def records(folder) -> list[dict]:
    return [r for p in sorted(folder.glob("requests-*.jsonl")) for r in read_records(p)[0]]


def _counted(url: str) -> dict | None:
    try:
        samples = scraped(url)
    except httpx.HTTPError:
        return None  # not serving yet
    return samples if totals(samples, "edgebench_requests_total", "outcome") else None


def parsed(text: str) -> dict[tuple[str, tuple], float]:
    """parsed is metrics text read by Prometheus' own parser: (sample, labels) -> value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scraped(url: str) -> dict[tuple[str, tuple], float]:
    return parsed(httpx.get(url, timeout=5).text)


def totals(samples: dict, name: str, label: str) -> dict[str, float]:
    """totals adds a counter's samples up by one label."""
    added: Counter[str] = Counter()
    for (sample, labels), value in samples.items():
        if sample == name:
            added[dict(labels)[label]] += value
    return {key: value for key, value in added.items() if value}


def test_smoke_runs_end_to_end_against_an_embedded_emulator(tmp_path):
    results, port = tmp_path / "smoke", free_port()
    metrics = f"http://127.0.0.1:{port}/metrics"
    prices = tmp_path / "prices.toml"
    prices.write_text(
        "[costs]\ncloud_vcpu_hour = 0.1\nprivate = { fleet-mtl = { per_hour = 1 } }\n"
    )
    world = tmp_path / "world.toml"
    world.write_bytes(Path("emulator/data/default-world.toml").read_bytes())
    # Every override the class has, set: each must reach the Locust processes, the embedded
    # emulator and the manifest (one added later without a value here fails).
    overrides = {
        "duration": "5s", "world": str(world.resolve()), "seed": 3, "rate_mode": "respect",
        "rate_factor": "3", "limit": 45, "costs": str(prices.resolve()),
    }  # fmt: skip
    assert set(overrides) == set(OVERRIDDEN)
    options = ["--results-dir", str(results), "--metrics-port", str(port)]
    run = subprocess.Popen(
        # Three times the smoke ramp for 5 s: as many requests as 8 s of it, sooner.
        [*EDGEBENCH, "run", "scenarios/smoke.toml", *override_words(overrides), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Scraped mid-run: Prometheus' parser reads it, and it counts the records so far.
    live = wait_for(lambda: _counted(metrics), timeout=60, every=0.2)
    assert run.poll() is None  # still running
    assert live[("edgebench_rate_limit", (("run", "smoke"), ("scenario", "smoke")))] == 45
    stdout, stderr = run.communicate(timeout=150)
    done = subprocess.CompletedProcess(run.args, run.returncode, stdout, stderr)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "PASS: all 4 thresholds met" in done.stdout
    assert f"report: {results / 'report.html'}" in done.stdout
    assert "elapsed" in done.stderr  # the progress line
    summary = orjson.loads((results / "summary.json").read_bytes())
    # The run's last metrics (metrics.prom) count what the analysis counted.
    final = parsed((results / "metrics.prom").read_text())
    assert totals(final, "edgebench_requests_total", "outcome") == summary["outcome_counts"]
    matches = totals(final, "edgebench_matches_total", "final")
    fates = {k: v for k, v in summary["matches"].items() if k not in ("total", "recorded") and v}
    assert matches == fates
    dropped = [v for (name, _), v in final.items() if name == "edgebench_dropped_starts_total"]
    assert dropped == [summary["dropped_starts"]]
    assert summary["requests_total"] >= 10
    assert Counter(r["outcome"] for r in records(results))["accepted"] == summary["requests_total"]
    for name in ("manifest.json", "junit.xml", "locust.html", "locust_stats.csv", "emulator.log"):
        assert (results / name).exists(), name
    readings = read_records(results / "emulator-metrics.jsonl")[0]
    assert readings[-1]["deployments_created"] >= summary["requests_total"] - 5
    assert "data:image/png;base64," in (results / "report.html").read_text()
    # The run waited for every deployment's ready callback before it ended.
    assert summary["time_to_ready_s"]["p50"] is not None
    # The manifest says what the run ran on, as typed and with readable times.
    manifest = orjson.loads((results / "manifest.json").read_bytes())
    assert manifest["command_line"][:3] == ["edgebench", "run", "scenarios/smoke.toml"]
    assert manifest["run_spec"] == {"scenario": "scenarios/smoke.toml", "overrides": overrides}
    facts = manifest["scenario"]
    assert (facts["seed"], facts["mode"], facts["limit"], facts["duration_s"]) == (
        3,
        "respect",
        45,
        5,
    )
    world = manifest["emulator"]["world"]
    assert world["source"] == overrides["world"]
    assert len(world["sha256"]) == 64
    assert (manifest["emulator"]["seed"], manifest["emulator"]["time_scale"]) == (3, 1.0)
    assert manifest["emulator"]["rate_limits"]["deploy"] == 45
    assert manifest["started_at_utc"].endswith("Z")
    assert manifest["ended_at_utc"] > manifest["started_at_utc"]
    assert f"world {world['source']}" in (results / "report.html").read_text()
    # Where each deployment went, from its ready callback; and what the run cost.
    placed = summary["placement"]["whole_run"]
    assert placed["unknown"] == 0
    assert placed["private"] > 0
    assert placed["private"] + placed["cloud"] == summary["outcome_counts"]["accepted"]
    assert manifest["costs"]["private"]["fleet-mtl"]["hosts"] == 2
    assert summary["cost"]["total"] > 0


def test_two_processes_queue_a_matchmakers_bursts_and_never_pass_the_limit(tmp_path):
    # A tick of about 75 matches at 5 s, in respect mode behind the SDK's queue, shared by
    # two processes: the emulator itself counts zero 429s, and every match ends once.
    results = tmp_path / "two"
    with EmulatorProcess("--time-scale", "30") as url:
        done = edgebench_run(
            "scenarios/matchmaker-tick.toml",
            "--host", url, "--duration", "6s", "--processes", "2", "--results-dir", str(results),
            "--rate-factor", "0.5",  # a batch of about 75: twice what a second may send
            "--no-plots",
        )  # fmt: skip
        answers = httpx.get(f"{url}/_emulator/metrics").json()["responses"]
    assert done.returncode == 0, done.stderr[-3000:]
    deploys = answers["POST /v2/deployments"]
    assert "429" not in deploys
    got = records(results)
    assert {r["worker"] for r in got} == {"w0", "w1"}
    assert deploys["202"] == sum(r["status"] == 202 for r in got) > 60  # a tick's batch
    assert most_in_any_second([r["t_send"] for r in got if r["t_send"]]) <= 40
    # A burst waited in the queue, not lost: its last of about 75 at 40 a second waits near a
    # second (999.8 ms seen under load), where a start sent when due waits none.
    assert max(r["queue_ms"] for r in got) > 500
    summary = orjson.loads((results / "summary.json").read_bytes())
    matches = summary["matches"]
    assert matches["served"] + matches["failed"] + matches["abandoned"] == matches["total"]
    assert matches["total"] == len({r["match"] for r in got}) == summary["requests_total"]
    assert summary["dropped_starts"] == 0
    assert summary["player_wait_s"]["p95"] > 1  # the queue shows in the players' wait
    manifest = orjson.loads((results / "manifest.json").read_bytes())
    assert manifest["workers"] == 2
    assert len(got) == manifest["scenario"]["expected_requests"]  # one schedule, shared out


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["scenarios/nope.toml"], "nope.toml"),
        (["scenarios/smoke.toml", "--duration", "soon"], "--duration 'soon': not a duration"),
        (["scenarios/smoke.toml", "--expect-workers", "2"], "only with --master; add --master"),
        (["scenarios/smoke.toml", "--master"], "how many workers to wait for"),
        (
            ["scenarios/smoke.toml", "--master", "--expect-workers", "2", "--processes", "2"],
            "pass --processes to each `edgebench worker` instead",
        ),
        # Issue 35: a target that is not there is found before the first send.
        (
            ["scenarios/smoke.toml", "--host", "http://127.0.0.1:9"],
            "cannot reach http://127.0.0.1:9: connection refused",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, says):
    done = CliRunner().invoke(main, ["run", *args])
    assert done.exit_code == 2
    assert says in done.stderr
    assert done.stderr.startswith("Error: ")
    assert "Traceback" not in done.output


def test_an_unwritable_results_folder_fails_before_any_traffic(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    inside = blocker / "run"
    done = CliRunner().invoke(main, ["run", "scenarios/smoke.toml", "--results-dir", str(inside)])
    assert done.exit_code == 2
    assert f"--results-dir {inside}: cannot write there" in done.stderr
    assert "edgebench: smoke against" not in done.stderr  # no emulator, no Locust


def test_a_full_disk_is_refused_with_the_sizes(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda _path: shutil._ntuple_diskusage(1, 1, 10))
    with pytest.raises(EdgebenchError, match="0 MB free, the run needs about 50 MB"):
        check_results_dir(tmp_path / "run", needed=1000)


def start_run(results, *args: str, scenario="scenarios/smoke.toml") -> subprocess.Popen:
    command = [*EDGEBENCH, "run", str(scenario), "--results-dir", str(results), *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def held_smoke(folder, rate: float, seconds: int):
    """held_smoke is the smoke scenario at one rate from its first second (smoke ramps up)."""
    smoke = Path("scenarios/smoke.toml").read_text()
    stages = smoke[smoke.index("stages = [") : smoke.index("]\n", smoke.index("stages = [")) + 1]
    held = f'stages = [{{ kind = "hold", duration = "{seconds}s", rate = {rate} }}]'
    path = folder / "held.toml"
    path.write_text(smoke.replace(stages, held))
    return path


def test_ctrl_c_once_stops_the_traffic_and_still_writes_the_report(tmp_path):
    results = tmp_path / "stopped"
    # The numbers and the verdict, no curves; started warm: the emulator preloaded over HTTP
    # with what 15 matches a second of 15 minutes hold (the smoke scenario's ramp from 0 at
    # its start would hold none).
    scenario = held_smoke(tmp_path, 15, 12)
    # The verdict of the stopped run's own check: a request cut short by the stop, or a
    # slow answer on a loaded machine, is not what this test is about (the smoke's do fail
    # on them now and then).
    checks = tmp_path / "checks.toml"
    checks.write_text('checks = ["share_429 == 0"]\n')
    process = start_run(
        results, "--no-plots", "--warm-start", "--thresholds", str(checks), scenario=scenario
    )
    wait_for(lambda: len(records(results)) >= 2, every=0.2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=90)
    assert process.returncode == 3, stderr[-3000:]  # INCOMPLETE: no pass on part of a run
    assert "INCOMPLETE: the run stopped at 0:00:" in stdout
    assert "scheduled starts recorded" in stdout
    assert f"report: {results / 'report.html'}" in stdout
    assert "stopping (Ctrl-C again to abort)" in stderr
    assert (results / "report.html").exists()
    assert not list(results.glob("*.png"))
    summary = orjson.loads((results / "summary.json").read_bytes())
    assert 0 < summary["requests_total"] < 150  # the whole scenario is 180
    assert summary["skipped_lines"] == 0  # every record whole
    manifest = orjson.loads((results / "manifest.json").read_bytes())
    assert "ended_at" in manifest
    assert manifest["target"]["token_set"] is False
    warm = manifest["warm_start"]
    assert 0 < warm["placed"] <= warm["deployments"]  # as many as the players' locations hold
    assert "platform at the start                        warm:" in stdout


def test_ctrl_c_twice_aborts_at_once(tmp_path):
    results = tmp_path / "run"
    process = start_run(results)
    wait_for(lambda: any(results.glob("requests-*-w0.jsonl")), every=0.2)
    lines: list[str] = []
    readers = [
        threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True),
        threading.Thread(target=process.stdout.read, daemon=True),  # never a full pipe
    ]
    for reader in readers:
        reader.start()
    process.send_signal(signal.SIGINT)
    # The second press once the first was taken, as a person presses again.
    wait_for(lambda: any("Ctrl-C again to abort" in line for line in lines), every=0.05)
    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    process.wait(timeout=30)
    for reader in readers:
        reader.join(timeout=10)
    process.stdout.close()
    process.stderr.close()
    stderr = "".join(lines)
    assert process.returncode == 130, stderr[-3000:]
    assert "aborted" in stderr
    assert time.monotonic() - started < 10


def children_of(pid: int) -> list[int]:
    """children_of are a process's children (Linux: /proc)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return status != "Z"  # a zombie has ended, only its parent has not read it yet


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
def test_sigterm_is_a_ctrl_c_and_a_killed_run_leaves_no_child(tmp_path):
    checks = tmp_path / "checks.toml"
    checks.write_text('checks = ["share_429 == 0"]\n')
    scenario = held_smoke(tmp_path, 10, 30)
    # SIGTERM (a CI job's timeout, kubectl delete): the traffic stops, the report is written.
    results = tmp_path / "termed"
    process = start_run(results, "--no-plots", "--thresholds", str(checks), scenario=scenario)
    wait_for(lambda: len(records(results)) >= 2, every=0.2)
    children = children_of(process.pid)
    assert len(children) == 2  # the embedded emulator and Locust
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=90)
    assert process.returncode == 3, stderr[-3000:]  # a CI job's timeout is not a pass
    assert "INCOMPLETE: the run stopped at" in stdout
    assert "stopping (Ctrl-C again to abort)" in stderr
    assert (results / "report.html").exists()
    assert summary_requests(results) < 300  # stopped: the whole scenario is 300
    wait_for(lambda: not any(alive(child) for child in children), timeout=10)
    # SIGKILL at a random moment: no handler runs, yet the children end with it (their
    # parent-death signal), and every start due more than a second before is recorded.
    results = tmp_path / "killed"
    process = start_run(results, "--no-plots", scenario=scenario)
    wait_for(lambda: len(records(results)) >= 2, every=0.2)
    children = children_of(process.pid)
    assert len(children) == 2
    moment = random.uniform(0.0, 3.0)
    time.sleep(moment)  # the random moment is the point, not a wait for a condition
    process.kill()
    killed_at = time.time()
    process.communicate(timeout=30)
    wait_for(lambda: not any(alive(child) for child in children), timeout=10)
    epoch = orjson.loads((results / "manifest.json").read_bytes())["epoch"]
    arrivals = Schedule.from_scenario(load_scenario(scenario)).arrivals()
    due = sum(
        1 for _ in itertools.takewhile(lambda a: epoch + a.due_s < killed_at - 1.25, arrivals)
    )
    kept = {r["match"] for r in records(results)}
    assert set(range(due)) <= kept, f"killed {moment:.2f} s after the second record"


def summary_requests(results: Path) -> int:
    return orjson.loads((results / "summary.json").read_bytes())["requests_total"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["run", "scenarios/smoke.toml", "--limit", "0"],
            "Error: --limit: 0 is not in the range x>=1",
        ),
        (
            ["run", "scenarios/smoke.toml", "--rate-mode", "fast"],
            "Error: --rate-mode: 'fast' is not",
        ),
        (["scenario", "plan", "scenarios/smoke.toml", "--limit", "0"], "Error: --limit: 0 is not"),
    ],
)
def test_a_value_out_of_range_is_one_line_naming_option_value_and_range(args, says):
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 2
    assert done.stderr.startswith(says)
    assert done.stderr.count("\n") == 1
    assert "Usage:" not in done.output
