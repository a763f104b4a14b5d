"""`edgebench run` end to end: emulator, Locust processes, analysis, report and exit code."""

import signal
import subprocess
import sys
import time
from collections import Counter

import orjson
import pytest

from edgebench._errors import EdgebenchError
from edgebench.records import read_records
from edgebench.runner import check_results_dir

EDGEBENCH = [sys.executable, "-m", "edgebench.cli"]


def edgebench_run(*args: str, timeout: float = 150) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*EDGEBENCH, "run", *args], capture_output=True, text=True, timeout=timeout
    )


def outcomes(folder) -> Counter:
    return Counter(
        r["outcome"] for p in folder.glob("requests-*.jsonl") for r in read_records(p)[0]
    )


def test_smoke_runs_end_to_end_against_an_embedded_emulator(tmp_path):
    results = tmp_path / "smoke"
    done = edgebench_run("scenarios/smoke.toml", "--duration", "15s", "--results-dir", str(results))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "PASS: all 4 thresholds met" in done.stdout
    assert f"report: {results / 'report.html'}" in done.stdout
    assert "elapsed" in done.stderr  # the progress line
    summary = orjson.loads((results / "summary.json").read_bytes())
    assert summary["requests_total"] >= 20
    assert outcomes(results)["accepted"] == summary["requests_total"]
    for name in ("manifest.json", "junit.xml", "locust.html", "locust_stats.csv", "emulator.log"):
        assert (results / name).exists(), name
    readings = read_records(results / "emulator-metrics.jsonl")[0]
    assert readings[-1]["deployments_created"] >= summary["requests_total"] - 5
    assert "data:image/png;base64," in (results / "report.html").read_text()


def test_two_processes_share_the_rate_and_the_results_folder(tmp_path):
    results = tmp_path / "two"
    done = edgebench_run(
        "scenarios/smoke.toml",
        "--duration",
        "12s",
        "--processes",
        "2",
        "--results-dir",
        str(results),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert {p.name for p in results.glob("requests-*.jsonl")} == {
        "requests-w0.jsonl",
        "requests-w1.jsonl",
    }
    summary = orjson.loads((results / "summary.json").read_bytes())
    manifest = orjson.loads((results / "manifest.json").read_bytes())
    assert manifest["workers"] == 2
    # One schedule shared out, not two: the total is the scenario's, give or take the ends.
    assert abs(summary["requests_total"] - manifest["scenario"]["expected_requests"]) <= 2


def test_a_failing_threshold_exits_1_and_names_it(tmp_path):
    checks = tmp_path / "strict.toml"
    checks.write_text('checks = ["p95_ms < 0.001", "share_429 == 0"]\n')
    results = tmp_path / "strict"
    done = edgebench_run(
        "scenarios/smoke.toml",
        "--duration",
        "6s",
        "--thresholds",
        str(checks),
        "--results-dir",
        str(results),
    )
    assert done.returncode == 1, done.stderr[-3000:]
    assert "FAIL: 1 of 2 thresholds" in done.stdout
    assert "p95_ms < 0.001" in done.stdout
    assert 'failures="1"' in (results / "junit.xml").read_text()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["scenarios/nope.toml"], "nope.toml"),
        (["scenarios/smoke.toml", "--duration", "soon"], "--duration 'soon': not a duration"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, says):
    done = edgebench_run(*args, timeout=60)
    assert done.returncode == 2
    assert says in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unwritable_results_folder_fails_before_any_traffic(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    started = time.monotonic()
    done = edgebench_run("scenarios/smoke.toml", "--results-dir", str(blocker / "run"), timeout=60)
    assert done.returncode == 2
    assert f"--results-dir {blocker / 'run'}: cannot write there" in done.stderr
    assert time.monotonic() - started < 20  # no emulator, no Locust
    assert "Traceback" not in done.stderr


def test_a_full_disk_is_refused_with_the_sizes(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda _path: shutil._ntuple_diskusage(1, 1, 10))
    with pytest.raises(EdgebenchError, match="0 MB free, the run needs about 50 MB"):
        check_results_dir(tmp_path / "run", needed=1000)


def test_ctrl_c_once_stops_the_traffic_and_still_writes_the_report(tmp_path):
    results = tmp_path / "stopped"
    command = [*EDGEBENCH, "run", "scenarios/smoke.toml", "--results-dir", str(results)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(12)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=90)
    assert process.returncode == 0, stderr[-3000:]
    assert f"report: {results / 'report.html'}" in stdout
    assert "stopping (Ctrl-C again to abort)" in stderr
    assert (results / "report.html").exists()
    summary = orjson.loads((results / "summary.json").read_bytes())
    assert 0 < summary["requests_total"] < 150  # the whole scenario is about 175
    assert "ended_at" in orjson.loads((results / "manifest.json").read_bytes())


def test_ctrl_c_twice_aborts_at_once(tmp_path):
    command = [*EDGEBENCH, "run", "scenarios/smoke.toml", "--results-dir", str(tmp_path / "run")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(8)
    process.send_signal(signal.SIGINT)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr[-3000:]
    assert "aborted" in stderr
    assert time.monotonic() - started < 10
