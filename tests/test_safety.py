"""Against the real API, safely: checks before traffic, a deployment budget, cleanup, no leaks.

The real-API rules are forced against loopback with the options that force them
(--max-deployments, --cleanup); one real run proves them together, the refusals and
dry runs need no traffic and run in-process.
"""

import itertools
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest
from click.testing import CliRunner

from edgebench.cli import main
from edgebench.manifest import write_manifest
from edgebench.records import RecordWriter, read_records

from .conftest import AUTH, deploy_body
from .test_server import EmulatorProcess
from .test_traffic import wait_for

# Started processes and servers, timed: one after another, in the second group of live
# tests (the first runs on the other worker: Makefile).
pytestmark = pytest.mark.xdist_group("live2")

EDGEBENCH = [sys.executable, "-m", "edgebench.cli"]
SECRET = "tok-SECRET-7f3a9c1e5b"


@pytest.fixture
def environment(monkeypatch):
    """environment starts with no EDGEGAP_ variable, whatever the machine has."""
    for name in list(os.environ):
        if name.startswith("EDGEGAP_"):
            monkeypatch.delenv(name)
    return monkeypatch


def ready(client: httpx.Client, request_id: str) -> bool:
    status = client.get(f"/v1/status/{request_id}").json()  # a 429 is a "not yet"
    return status.get("current_status") == "Status.READY"


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
def test_a_non_loopback_run_is_refused_before_any_traffic(environment, args, env, says, tmp_path):
    for name, value in env.items():
        environment.setenv(name, value)
    done = CliRunner().invoke(main, ["run", *args, "--results-dir", str(tmp_path / "run")])
    assert done.exit_code == 2
    assert says in done.stderr
    assert done.exception is None or isinstance(done.exception, SystemExit)
    assert not (tmp_path / "run").exists()


def own_address() -> str:
    """own_address is a non-loopback IPv4 address of this machine (never sent to here)."""
    import psutil

    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return address.address
    pytest.skip("this machine has no non-loopback IPv4 address")


def test_a_master_without_a_token_refuses_a_non_loopback_host_before_any_worker(
    environment, tmp_path
):
    host = f"http://{own_address()}:9"
    args = ["run", "scenarios/smoke.toml", "--master", "--expect-workers", "2", "--host", host]
    done = CliRunner().invoke(main, [*args, "--results-dir", str(tmp_path / "run")])
    assert done.exit_code == 2
    assert f"--host {host} is not a loopback address: it needs EDGEGAP_API_TOKEN" in done.stderr
    assert not (tmp_path / "run").exists()  # no folder, no Locust, no traffic


def test_a_master_whose_workers_never_came_says_so_and_sent_nothing(tmp_path):
    from edgebench._errors import EdgebenchError
    from edgebench.runner.processes import GAVE_UP, LocustProcess

    log = tmp_path / "locust.log"
    log.write_text(f"[2026-11-28 06:00:00,000] vm/ERROR/locust.main: {GAVE_UP}\n")
    locust = LocustProcess([sys.executable, "-c", "raise SystemExit(1)"], log, web=True)
    locust.process.wait(timeout=30)
    with pytest.raises(EdgebenchError, match="nothing was sent: start them with `edgebench worker"):
        locust.check()


def test_locust_stopping_before_the_run_started_is_an_error_not_an_empty_verdict(tmp_path):
    # As when the port of Locust's master was taken: it exits at once, nothing sent.
    from edgebench._errors import EdgebenchError
    from edgebench.runner.processes import LocustProcess
    from edgebench.runner.run import started

    crash = "import sys; sys.stderr.write('RPCError: Socket bind failure: in use\\n'); sys.exit(1)"
    locust = LocustProcess([sys.executable, "-c", crash], tmp_path / "locust.log", web=False)
    locust.process.wait(timeout=30)
    with pytest.raises(EdgebenchError, match="before the run started: RPCError: Socket bind"):
        started(tmp_path, locust, web=False)
    # A web UI closed before any run (its output on the terminal: no locust.log) is no error.
    quiet = LocustProcess([sys.executable, "-c", "pass"], tmp_path / "web" / "locust.log", web=True)
    quiet.process.wait(timeout=30)
    assert started(tmp_path, quiet, web=True) is False


def test_processes_on_one_machine_meet_on_a_port_of_their_own():
    from edgebench.plan.overrides import RunSpec
    from edgebench.realapi.safety import Policy
    from edgebench.runner.run import RunPlan, locust_command

    plan = RunPlan(Path("scenarios/smoke.toml"), processes=2)
    policy = Policy(remote=False, max_deployments=0, cleanup=False)
    command = locust_command(
        plan, RunSpec(str(plan.scenario)), "http://127.0.0.1:9", Path("r"), policy
    )
    bind, port = command.index("--master-bind-port"), command.index("--master-port")
    assert command[bind + 1] == command[port + 1] != "5557"  # not Locust's default: a free one
    assert command[command.index("--master-bind-host") + 1] == "127.0.0.1"


def test_a_dry_run_prints_the_plan_and_sends_nothing(environment):
    done = CliRunner().invoke(
        main, ["run", "scenarios/launch-day.toml", "--host", "http://127.0.0.1:9", "--dry-run"]
    )
    assert done.exit_code == 0, done.output
    assert "nothing will be sent" in done.stdout
    assert "stage 0: ramp" in done.stdout
    assert done.stdout.count("/v2/deployments {") >= 1


def test_a_real_api_dry_run_shows_the_budget_and_cleanup(environment):
    environment.setenv("EDGEGAP_API_TOKEN", SECRET)
    environment.setenv("EDGEGAP_BASE_URL", "https://api.edgegap.com")
    args = ["run", "scenarios/exceed-limit.toml", "--dry-run", "--i-mean-to-exceed"]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    assert "target: https://api.edgegap.com (not loopback" in done.stdout
    assert "deployments it may create: at most 20 (budget --max-deployments 20)" in done.stdout
    assert "cleanup at the end: on" in done.stdout
    assert "token: set" in done.stdout
    assert SECRET not in done.output


def test_budget_cleanup_and_a_token_that_never_appears_in_one_run(tmp_path):
    # Against an emulator that loses 30% of its answers after creating the deployment: the
    # run never learns those request_ids, and the cleanup's sweep by the run's tag finds them.
    results = tmp_path / "run"
    checks = tmp_path / "strict.toml"
    checks.write_text('checks = ["p95_ms < 0.001", "share_429 == 0"]\n')
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EDGEGAP_")}
    # 12 a second for 2 s: the budget of 10 is used up on the way, the rest is over budget.
    scenario = tmp_path / "budget.toml"
    smoke = Path("scenarios/smoke.toml").read_text()
    stages = smoke[smoke.index("stages = [") : smoke.index("]\n", smoke.index("stages = [")) + 1]
    scenario.write_text(
        smoke.replace(stages, 'stages = [{ kind = "hold", duration = "2s", rate = 12 }]')
    )
    options = ["--max-deployments", "10", "--cleanup", "--no-plots"]
    options += ["--thresholds", str(checks), "--results-dir", str(results)]
    lossy = EmulatorProcess("--time-scale", "30", "--fault-lost-answer-share", "0.3")
    with lossy as url:
        done = subprocess.run(
            [*EDGEBENCH, "run", str(scenario), "--host", url, *options],
            capture_output=True,
            text=True,
            timeout=150,
            env=environment | {"EDGEGAP_API_TOKEN": f"token {SECRET}"},
        )
        # Nothing is left running, counted by the emulator itself.
        metrics = f"{url}/_emulator/metrics"
        wait_for(lambda: httpx.get(metrics).json()["active_deployments"]["total"] == 0)
        created = httpx.get(metrics).json()["deployments_created"]
    # A failing threshold: exit 1, named on the console and in junit.xml.
    assert done.returncode == 1, done.stderr[-3000:]
    assert "FAIL: 1 of 2 thresholds" in done.stdout
    assert "p95_ms < 0.001" in done.stdout
    assert 'failures="1"' in (results / "junit.xml").read_text()
    # The budget stops sending: a lost answer may have created one, so it counts too, and
    # the run never creates more than the budget. Cleanup stops what was created.
    counts = outcomes(results)
    assert counts["accepted"] + counts["transport_error"] == 10
    assert counts["over_budget"] > 0
    assert counts["transport_error"] > 0  # the lost answers
    assert created == 10  # never more than the budget
    report = orjson.loads((results / "cleanup.json").read_bytes())
    assert len(report["found_by_tag"]) == counts["transport_error"] == created - counts["accepted"]
    assert report["stopped"] + report["gone"] == created
    assert report["left"] == []
    assert "found by the run's tag" in done.stderr
    # The token appears nowhere: not on the console, not in any file of the run.
    assert SECRET not in done.stdout + done.stderr
    files = [p for p in results.rglob("*") if p.is_file()]
    assert len(files) > 10  # records, logs, manifest, summary, report, JUnit, cleanup, metrics
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path.name
    manifest = orjson.loads((results / "manifest.json").read_bytes())
    assert manifest["target"]["token_set"] is True


def test_edgebench_cleanup_stops_what_a_run_left_running(tmp_path, environment):
    """A run folder whose deployments were created for real, then `edgebench cleanup`."""
    results = tmp_path / "run"
    with EmulatorProcess("--time-scale", "5") as url:  # servers boot in 0.6 s, play 3 min
        with httpx.Client(base_url=url, headers=AUTH) as client:
            created = [client.post("/v2/deployments", json=deploy_body()) for _ in range(5)]
            ids = [answer.json()["request_id"] for answer in created]
            # Running servers, as a finished run leaves them (a starting one is stopped later).
            wait_for(lambda: all(ready(client, request_id) for request_id in ids), every=0.3)
        write_manifest(results, target={"host": url, "token_set": False})
        log = RecordWriter(results / "requests-w0.jsonl")
        for answer, request_id in zip(created, ids, strict=True):
            log.add({"status": answer.status_code, "request_id": request_id})
        log.close()
        cleaned = CliRunner().invoke(main, ["cleanup", str(results)])
        assert cleaned.exit_code == 0, cleaned.output
        assert "cleanup: 5 stopped" in cleaned.stdout
        again = CliRunner().invoke(main, ["cleanup", str(results)])
        assert again.exit_code == 0, again.output
        assert "cleanup: " in again.stdout
        listed = httpx.get(f"{url}/v1/deployments", headers=AUTH).json()["data"]
    assert not any(deployment["ready"] for deployment in listed)  # stopping or gone


def test_cleanup_stops_several_at_once_and_never_faster_than_its_rate():
    import threading

    from edgebench.realapi.cleanup import Stopper

    class SlowHost:
        """SlowHost answers a stop only once three wait at the same time (or after 5 s)."""

        def __init__(self) -> None:
            self.lock, self.waiting, self.most, self.sent = threading.Lock(), 0, 0, []
            self.three = threading.Event()

        def delete(self, path: str):
            with self.lock:
                self.sent.append(time.monotonic())
                self.waiting += 1
                self.most = max(self.most, self.waiting)
                if self.waiting >= 3:
                    self.three.set()
            self.three.wait(timeout=5)
            with self.lock:
                self.waiting -= 1
            return httpx.Response(200, json={"message": "stopped"})

    host, states = SlowHost(), {}
    ids = [f"{n:012x}" for n in range(12)]
    assert Stopper(host, states, 50.0, time.monotonic, time.sleep).stop(ids, time.monotonic() + 30)
    assert states == dict.fromkeys(ids, "stopped")
    assert host.most >= 3  # answers were awaited together, not one after another
    # And never more than 50 asked a second: paced on average, never two at once. (The
    # sends are timed in the pool's threads, which a busy machine wakes a few ms late.)
    sent = sorted(host.sent)
    assert (sent[-1] - sent[0]) / (len(sent) - 1) >= 1 / 50 - 1e-3
    assert min(b - a for a, b in itertools.pairwise(sent)) >= 1 / 50 / 2


class LossyList:
    """LossyList answers GET /v1/deployments after losing the first `losses` answers."""

    def __init__(self, losses: int) -> None:
        self.losses, self.asked, self.slept = losses, 0, []

    def get(self, path: str, params: dict):
        self.asked += 1
        if self.asked <= self.losses:
            raise httpx.RemoteProtocolError("peer closed connection without a response")
        data = [{"request_id": "lost-202", "tags": ["edgebench-run"]}]
        return httpx.Response(200, json={"data": data, "pagination": {"has_next": False}})


def test_the_sweep_by_tag_asks_again_when_its_answer_is_lost():
    from edgebench.realapi.cleanup import _sweep

    host = LossyList(losses=2)
    assert _sweep(host, "edgebench-run", set(), host.slept.append) == ["lost-202"]
    assert host.slept == [1.0, 1.0]  # SWEEP_RETRY_S between tries


def test_a_sweep_that_cannot_list_says_so(tmp_path):
    from edgebench.realapi.cleanup import _sweep, summary_line

    host = LossyList(losses=100)
    assert _sweep(host, "edgebench-run", set(), host.slept.append) is None
    report = {"stopped": 3, "gone": 0, "left": [], "swept": False, "host": "http://h"}
    assert "the sweep by the run's tag could not list" in summary_line(report, tmp_path)


def kubernetes_pods() -> list[dict]:
    """kubernetes_pods are the pod templates of the manifests."""
    import yaml

    manifests = Path("deploy/kubernetes/edgebench.yaml").read_text()
    documents = yaml.safe_load_all(manifests)
    return [d["spec"]["template"] for d in documents if "template" in d.get("spec", {})]


def kubernetes_commands() -> list[list[str]]:
    """kubernetes_commands are the commands of every container the manifests start."""
    return [c["command"] for pod in kubernetes_pods() for c in pod["spec"]["containers"]]


def test_the_pods_prometheus_scrapes_serve_metrics_on_the_annotated_port():
    scraped = [pod for pod in kubernetes_pods() if pod["metadata"].get("annotations")]
    assert len(scraped) == 2
    for pod in scraped:
        port = pod["metadata"]["annotations"]["prometheus.io/port"]
        [command] = [c["command"] for c in pod["spec"]["containers"]]
        flag = "--metrics-port" if command[1] == "run" else "--port"
        assert command[command.index(flag) + 1] == port, command


def test_the_kubernetes_manifests_run_edgebench_commands_the_cli_accepts():
    import click

    commands = kubernetes_commands()
    assert sorted(c[1] for c in commands) == ["emulator", "run", "worker"]
    for command in commands:
        assert command[0] == "edgebench"
        context = main.make_context("edgebench", list(command[1:]), resilient_parsing=False)
        name, subcommand, rest = main.resolve_command(context, command[1:])
        try:
            subcommand.make_context(name, rest, parent=context)  # parses, runs nothing
        except click.UsageError as exc:
            raise AssertionError(f"{command}: {exc.format_message()}") from None
    run = next(c for c in commands if c[1] == "run")
    assert Path(run[2]).exists()  # the scenario, at the image's path
    assert {"--master", "--expect-workers", "--host"} <= set(run)
    assert not any(flag in "".join(map(str, commands)) for flag in ("--allow-remote", "socat"))


def test_open_web_controls_against_a_remote_host_are_warned_about(capsys):
    from edgebench.runner.run import RunPlan, locust_command, warn_open_controls

    plan = RunPlan(Path("scenarios/smoke.toml"), web=True, web_host="0.0.0.0")
    warn_open_controls(plan, "https://api.edgegap.com")
    assert "--web-host 0.0.0.0: the web UI and metrics listen beyond" in capsys.readouterr().err
    warn_open_controls(plan, "http://127.0.0.1:8787")  # the emulator: nothing to fear
    warn_open_controls(RunPlan(Path("scenarios/smoke.toml"), web=True), "https://x.example")
    assert capsys.readouterr().err == ""
    from edgebench.plan.overrides import RunSpec
    from edgebench.realapi.safety import Policy

    policy = Policy(remote=False, max_deployments=0, cleanup=False)
    scenario = RunSpec(str(plan.scenario))
    default = RunPlan(Path("scenarios/smoke.toml"), web=True)
    command = locust_command(default, scenario, "http://127.0.0.1:9", Path("r"), policy)
    assert command[command.index("--web-host") + 1] == "127.0.0.1"  # loopback by default
    assert "--autostart" in command
    waiting = RunPlan(Path("scenarios/smoke.toml"), web=True, web_wait=True)
    assert "--autostart" not in locust_command(waiting, scenario, "x", Path("r"), policy)
