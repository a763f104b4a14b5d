"""`edgebench run` end to end: emulator, Locust processes, analysis, report and exit code.

One real run of each kind (one process, two processes, Ctrl-C once, Ctrl-C twice);
what needs no traffic runs in-process with click's CliRunner.
"""

import signal
import subprocess
import sys
import time
from collections import Counter

import orjson
import pytest
from click.testing import CliRunner

from edgebench._errors import EdgebenchError
from edgebench.cli import main
from edgebench.records import read_records
from edgebench.runfolder import check_results_dir

from .test_traffic import scenario_file, wait_for

EDGEBENCH = [sys.executable, "-m", "edgebench.cli"]


def edgebench_run(*args: str, timeout: float = 150) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*EDGEBENCH, "run", *args], capture_output=True, text=True, timeout=timeout
    )


def records(folder) -> list[dict]:
    return [r for p in sorted(folder.glob("requests-*.jsonl")) for r in read_records(p)[0]]


def most_in_any_second(times: list[float]) -> int:
    times = sorted(times)
    return max(sum(1 for u in times[i : i + 100] if u < t + 1.0) for i, t in enumerate(times))


def test_smoke_runs_end_to_end_against_an_embedded_emulator(tmp_path):
    results = tmp_path / "smoke"
    done = edgebench_run("scenarios/smoke.toml", "--duration", "8s", "--results-dir", str(results))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "PASS: all 4 thresholds met" in done.stdout
    assert f"report: {results / 'report.html'}" in done.stdout
    assert "elapsed" in done.stderr  # the progress line
    summary = orjson.loads((results / "summary.json").read_bytes())
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
    world = manifest["emulator"]["world"]
    assert world["source"].endswith("default-world.toml")
    assert len(world["sha256"]) == 64
    assert (manifest["emulator"]["seed"], manifest["emulator"]["time_scale"]) == (1, 1.0)
    assert manifest["started_at_utc"].endswith("Z")
    assert manifest["ended_at_utc"] > manifest["started_at_utc"]
    assert f"world {world['source']}" in (results / "report.html").read_text()


def test_two_processes_hold_the_limit_and_share_one_schedule(tmp_path):
    scenario = scenario_file(tmp_path, "respect", 6, 40)
    results = tmp_path / "two"
    done = edgebench_run(
        str(scenario), "--processes", "2", "--time-scale", "30", "--results-dir", str(results)
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = records(results)
    assert {r["worker"] for r in got} == {"w0", "w1"}
    assert sorted(r["index"] for r in got) == list(range(len(got)))
    outcomes = Counter(r["outcome"] for r in got)
    assert outcomes["rate_limited"] == 0
    assert outcomes["accepted"] / 6 >= 0.95 * 40
    assert most_in_any_second([r["t_send"] for r in got if r["t_send"]]) <= 40
    manifest = orjson.loads((results / "manifest.json").read_bytes())
    assert manifest["workers"] == 2
    # One schedule shared out, not two: the total is the scenario's, exactly.
    assert len(got) == manifest["scenario"]["expected_requests"]
    # 40/s asked for, 39.4/s sent (respect mode's margin): the difference is said, not hidden.
    summary = orjson.loads((results / "summary.json").read_bytes())
    assert summary["demand_rate_per_s"] == pytest.approx(40, rel=0.02)
    assert summary["capped_starts"] == pytest.approx(6 * 40 - len(got), abs=2)
    assert summary["capped_starts"] > 0


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["scenarios/nope.toml"], "nope.toml"),
        (["scenarios/smoke.toml", "--duration", "soon"], "--duration 'soon': not a duration"),
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


def start_run(results, *args: str) -> subprocess.Popen:
    command = [*EDGEBENCH, "run", "scenarios/smoke.toml", "--results-dir", str(results), *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_ctrl_c_once_stops_the_traffic_and_still_writes_the_report(tmp_path):
    results = tmp_path / "stopped"
    process = start_run(results)
    wait_for(lambda: len(records(results)) >= 2, every=0.2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=90)
    assert process.returncode == 0, stderr[-3000:]
    assert f"report: {results / 'report.html'}" in stdout
    assert "stopping (Ctrl-C again to abort)" in stderr
    assert (results / "report.html").exists()
    summary = orjson.loads((results / "summary.json").read_bytes())
    assert 0 < summary["requests_total"] < 150  # the whole scenario is about 175
    assert summary["skipped_lines"] == 0  # every record whole
    manifest = orjson.loads((results / "manifest.json").read_bytes())
    assert "ended_at" in manifest
    assert manifest["target"]["token_set"] is False


def test_ctrl_c_twice_aborts_at_once(tmp_path):
    results = tmp_path / "run"
    process = start_run(results)
    wait_for(lambda: any(results.glob("requests-*-w0.jsonl")), every=0.2)
    process.send_signal(signal.SIGINT)
    time.sleep(0.3)  # two presses of Ctrl-C, as a person makes them
    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr[-3000:]
    assert "aborted" in stderr
    assert time.monotonic() - started < 10
