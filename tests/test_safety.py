"""Against the real API, safely: checks before traffic, a deployment budget, cleanup, no leaks."""

import os
import subprocess
import sys
from collections import Counter

import httpx
import orjson
import pytest

from edgebench.records import read_records

from .conftest import AUTH
from .test_server import EmulatorProcess

EDGEBENCH = [sys.executable, "-m", "edgebench.cli"]
SECRET = "tok-SECRET-7f3a9c1e5b"


def edgebench(*args: str, env: dict | None = None, timeout: float = 150):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EDGEGAP_")}
    return subprocess.run(
        [*EDGEBENCH, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment | (env or {}),
    )


def outcomes(folder) -> Counter:
    logs = folder.glob("requests-*.jsonl")
    return Counter(r["outcome"] for log in logs for r in read_records(log)[0])


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (
            ["scenarios/smoke.toml", "--host", "https://api.edgegap.com"],
            {},
            "it needs EDGEGAP_API_TOKEN",
        ),
        (
            ["scenarios/exceed-limit.toml", "--host", "https://api.edgegap.com"],
            {"EDGEGAP_API_TOKEN": SECRET},
            "pass --i-mean-to-exceed if you do",
        ),
        (
            ["scenarios/smoke.toml"],
            {"EDGEGAP_BASE_URL": "https://staging.example.com"},
            "--host https://staging.example.com is not a loopback address",
        ),
    ],
)
def test_a_non_loopback_run_is_refused_before_any_traffic(args, env, says, tmp_path):
    done = edgebench("run", *args, "--results-dir", str(tmp_path / "run"), env=env, timeout=60)
    assert done.returncode == 2
    assert says in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()


def test_a_dry_run_prints_the_plan_and_sends_nothing():
    with EmulatorProcess() as url:
        done = edgebench("run", "scenarios/launch-day.toml", "--host", url, "--dry-run")
        created = httpx.get(f"{url}/_emulator/metrics").json()["deployments_created"]
    assert done.returncode == 0, done.stderr
    assert created == 0
    assert "nothing will be sent" in done.stdout
    assert "stage 0: ramp" in done.stdout
    assert done.stdout.count("/v2/deployments {") >= 1


def test_a_real_api_dry_run_shows_the_budget_and_cleanup():
    args = ["run", "scenarios/exceed-limit.toml", "--dry-run", "--i-mean-to-exceed"]
    env = {"EDGEGAP_API_TOKEN": SECRET, "EDGEGAP_BASE_URL": "https://api.edgegap.com"}
    done = edgebench(*args, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "target: https://api.edgegap.com (not loopback" in done.stdout
    assert "deployments it may create: at most 20 (budget --max-deployments 20)" in done.stdout
    assert "cleanup at the end: on" in done.stdout
    assert "token: set" in done.stdout
    assert SECRET not in done.stdout + done.stderr


def test_the_budget_stops_sending_and_cleanup_stops_what_was_created(tmp_path):
    results = tmp_path / "run"
    done = edgebench(
        "run",
        "scenarios/smoke.toml",
        "--duration",
        "15s",
        "--max-deployments",
        "10",
        "--cleanup",
        "--time-scale",
        "30",
        "--results-dir",
        str(results),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    counts = outcomes(results)
    assert counts["accepted"] == 10
    assert counts["over_budget"] > 10
    report = orjson.loads((results / "cleanup.json").read_bytes())
    assert report["stopped"] + report["gone"] == 10
    assert report["left"] == []
    assert "cleanup: " in done.stderr


def test_edgebench_cleanup_stops_what_a_run_left_running(tmp_path):
    results = tmp_path / "run"
    with EmulatorProcess() as url:
        done = edgebench(
            "run",
            "scenarios/smoke.toml",
            "--host",
            url,
            "--duration",
            "6s",
            "--results-dir",
            str(results),
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert not (results / "cleanup.json").exists()  # loopback: cleanup is off by default
        active = httpx.get(f"{url}/_emulator/metrics").json()["active_deployments"]["total"]
        assert active == outcomes(results)["accepted"] > 0
        cleaned = edgebench("cleanup", str(results))
        assert cleaned.returncode == 0, cleaned.stderr
        assert f"cleanup: {active} stopped" in cleaned.stdout
        again = edgebench("cleanup", str(results))
        assert "cleanup: " in again.stdout
        listed = httpx.get(f"{url}/v1/deployments", headers=AUTH).json()["data"]
    assert not any(deployment["ready"] for deployment in listed)  # stopping or gone
    assert all(f"edgebench-{results.name}" in deployment["tags"] for deployment in listed)


def test_the_token_never_appears_in_any_output(tmp_path):
    results = tmp_path / "run"
    done = edgebench(
        "run",
        "scenarios/smoke.toml",
        "--duration",
        "8s",
        "--cleanup",
        "--results-dir",
        str(results),
        env={"EDGEGAP_API_TOKEN": f"token {SECRET}"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert SECRET not in done.stdout + done.stderr
    files = [p for p in results.rglob("*") if p.is_file()]
    assert len(files) > 20
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path.name
    manifest = orjson.loads((results / "manifest.json").read_bytes())
    assert manifest["target"]["token_set"] is True
