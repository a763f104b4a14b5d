"""Edgegap deploy traffic for Locust, held to the scenario's global rate.

    edgebench emulator --port 8787 &
    locust -f locustfiles/edgegap.py --headless --host http://127.0.0.1:8787 \\
        --scenario scenarios/smoke.toml --csv results/smoke/locust --html results/smoke/locust.html

DeployUser posts /v2/deployments, FleetDeployUser /v2/private-fleets/deployments.
Nobody picks -u: the shape sizes the user pool from the rate and the observed
latency, and ends the run with the schedule. Works with --processes N and
--master/--worker: the arrivals are shared out by worker index.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import edgegap_ui as live_ui  # locustfiles/, on Locust's path beside this file
from locust import FastHttpUser, LoadTestShape, events, task
from locust.runners import (
    STATE_INIT,
    STATE_RUNNING,
    STATE_SPAWNING,
    MasterRunner,
    WorkerRunner,
)

from edgebench._errors import EdgebenchError
from edgebench.manifest import run_facts, write_manifest
from edgebench.payloads import DEPLOY, FLEET_DEPLOY
from edgebench.safety import is_loopback
from edgebench.scenario import load_scenario, with_duration, with_rate
from edgebench.schedule import Schedule
from edgebench.traffic import (
    LOCAL_TOKEN,
    Share,
    TrafficRun,
    api_token,
    pool_size,
    settle_pool,
)

START_LEAD_S = 1.0  # workers start their schedules together, this long after the start
RESPLIT_LEAD_S = 1.0  # a new split of the schedule starts this long after it is sent
SPLIT_MESSAGE = "edgebench_split"
ALIVE = (STATE_INIT, STATE_SPAWNING, STATE_RUNNING)
DRAIN_S = 3.0  # after the last arrival, time for answers before the run stops
STATE: dict = {}


@events.init_command_line_parser.add_listener
def _arguments(parser) -> None:
    parser.add_argument(
        "--scenario",
        default="scenarios/smoke.toml",
        include_in_web_ui=True,
        help="Scenario file (TOML) to run",
    )
    parser.add_argument(
        "--duration",
        default="",
        include_in_web_ui=True,
        help="Run length such as 15s or 2m (default: the scenario's)",
    )
    parser.add_argument(
        "--rate-mode",
        default="",
        choices=["", "respect", "exceed"],
        include_in_web_ui=True,
        help="respect or exceed the API's limit (default: the scenario's)",
    )
    parser.add_argument(
        "--rate-factor",
        default="",
        include_in_web_ui=True,
        help="Offered rate = stages x factor, e.g. 1.5 (default: the scenario's)",
    )
    parser.add_argument(
        "--max-deployments",
        type=int,
        default=0,
        include_in_web_ui=True,
        help="Stop sending once this many deployments were accepted (0: no budget)",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        default=False,
        include_in_web_ui=False,
        help="Set by `edgebench run` once a non-loopback host passed its safety checks",
    )
    parser.add_argument(
        "--results-dir",
        default="",
        include_in_web_ui=True,
        help="Where the run's records go (default: results/<timestamp>-<scenario>)",
    )


@events.init.add_listener
def _init(environment, **_kwargs) -> None:
    options = environment.parsed_options
    try:
        scenario = _scenario(options)
        # A worker is told the host (and the scenario) by its master when a run starts.
        if not isinstance(environment.runner, WorkerRunner):
            host = environment.host or scenario.target.host
            environment.host = _checked_host(host, options.allow_remote)
    except EdgebenchError as exc:
        _quit_with(str(exc))
    token = api_token() or LOCAL_TOKEN
    EdgegapUser.default_headers = {"Authorization": f"token {token}"}
    deploy_share, fleet_share = scenario.mix.shares
    DeployUser.weight = max(1, round(100 * deploy_share))
    FleetDeployUser.weight = max(1, round(100 * fleet_share))
    environment.stop_timeout = max(environment.stop_timeout or 0, 10)
    STATE.update(scenario=scenario, schedule=Schedule.from_scenario(scenario), token=token)
    live_ui.attach(environment, STATE)
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.register_message(SPLIT_MESSAGE, _on_split)


def _scenario(options):
    """_scenario is the scenario file with the run's overrides (command line or start form)."""
    scenario = load_scenario(options.scenario)
    if options.duration:
        scenario = with_duration(scenario, options.duration)
    return with_rate(scenario, options.rate_mode, options.rate_factor)


def _checked_host(host: str | None, allow_remote: bool) -> str:
    if not host:
        raise EdgebenchError(
            "no host: start the emulator (edgebench emulator) and pass --host, "
            "or run through `edgebench run`"
        )
    if not (is_loopback(host) or allow_remote):
        raise EdgebenchError(
            f"--host {host}: load traffic goes only to loopback addresses (127.0.0.1, ::1); "
            "for the real API use `edgebench run`, which applies its safety checks first"
        )
    return host.rstrip("/")


def _quit_with(message: str) -> None:
    for line in message.splitlines():
        sys.stderr.write(f"Error: {line}\n")
    sys.exit(2)


@events.test_start.add_listener
def _test_start(environment, **_kwargs) -> None:
    runner, options = environment.runner, environment.parsed_options
    try:  # the start form may have changed the scenario or its rate since start-up
        scenario = _scenario(options)
        _checked_host(environment.host, options.allow_remote)  # a worker's too: its master named it
    except EdgebenchError as exc:
        logging.error("edgebench: %s", exc)
        return
    schedule = Schedule.from_scenario(scenario)
    STATE.update(scenario=scenario, schedule=schedule)
    if not isinstance(runner, WorkerRunner):
        options.edgebench_results_dir = options.results_dir or _default_results_dir(scenario)
        workers = runner.worker_count if isinstance(runner, MasterRunner) else 1
        options.edgebench_epoch = time.time() + START_LEAD_S
        options.edgebench_workers = workers
        expected = sum(1 for _ in schedule.arrivals())
        facts = run_facts(scenario, environment.host, api_token() is not None, workers, expected)
        write_manifest(Path(options.edgebench_results_dir), **facts, epoch=options.edgebench_epoch)
        live_ui.started(Path(options.edgebench_results_dir))
    if isinstance(runner, MasterRunner):
        STATE["members"] = _alive_workers(runner)
        return
    index = runner.worker_index if isinstance(runner, WorkerRunner) else 0
    share = Share(index, options.edgebench_workers, options.edgebench_epoch)
    results_dir = Path(options.edgebench_results_dir)
    tag = f"edgebench-{results_dir.name}"
    run = TrafficRun(
        scenario,
        results_dir,
        share,
        tag,
        environment.host,
        STATE["token"],
        max_deployments=options.max_deployments,
    )
    STATE["run"] = run
    if pending := STATE.pop("pending_split", None):
        run.resplit(**pending)
    run.start()


def _alive_workers(runner) -> tuple[str, ...]:
    alive = [client.id for client in runner.clients.values() if client.state in ALIVE]
    return tuple(sorted(alive, key=runner.get_worker_index))


def _resplit_if_changed(runner, options) -> None:
    """_resplit_if_changed shares the schedule out afresh when workers joined or left."""
    if "members" not in STATE:  # the run has not started yet
        return
    members = _alive_workers(runner)
    if not members or members == STATE["members"]:
        return
    STATE["members"] = members
    from_s = max(0.0, time.time() - options.edgebench_epoch) + RESPLIT_LEAD_S
    for position, client_id in enumerate(members):
        split = {"position": position, "count": len(members), "from_s": from_s}
        runner.send_message(SPLIT_MESSAGE, split, client_id)
    logging.warning(
        "edgebench: %d workers now; the schedule is shared out afresh from %.1f s",
        len(members),
        from_s,
    )


def _on_split(environment, msg, **_kwargs) -> None:
    run = STATE.get("run")
    if run is None:  # joined before its first start: apply the split when the run begins
        STATE["pending_split"] = msg.data
    else:
        run.resplit(**msg.data)


def _default_results_dir(scenario) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return str(Path("results") / f"{stamp}-{scenario.name}")


def _stop_run() -> None:
    run = STATE.pop("run", None)
    if run is not None:
        run.stop()


@events.test_stop.add_listener
def _test_stop(environment, **_kwargs) -> None:
    _stop_run()
    if not isinstance(environment.runner, WorkerRunner):
        results_dir = Path(environment.parsed_options.edgebench_results_dir)
        write_manifest(results_dir, ended_at=time.time())
        print(f"edgebench: records in {results_dir}", file=sys.stderr)
        live_ui.stopped(environment, results_dir)


@events.quitting.add_listener
def _quitting(environment, **_kwargs) -> None:
    _stop_run()


class EdgegapUser(FastHttpUser):
    """EdgegapUser takes its endpoint's next start, waits until it is due, and sends it.

    wait_time takes the start and Locust's own wait sleeps until it is due: there
    Locust counts a user as idle, so a run that stops kills it at once instead of
    waiting for its task, and on_stop gives the start back.
    """

    abstract = True
    endpoint = DEPLOY
    network_timeout = 10.0
    connection_timeout = 10.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._start = None

    def wait_time(self) -> float:
        run = STATE.get("run")
        if run is None:
            return 0.1
        if self._kill_pending():
            return 0.0  # take no start: the kill lands in this wait
        self._start = run.next_start(self.endpoint)
        if self._start is None:
            return 1.0  # the schedule is over: idle until the run stops
        return max(0.0, self._start.due - time.time())

    def on_stop(self) -> None:
        # Stopped between taking a start and sending it: the start goes to another user.
        run = STATE.get("run")
        if self._start is not None and run is not None:
            run.give_back(self._start)
            self._start = None

    @task
    def send_due_request(self) -> None:
        if self._start is None:
            return
        # Locust may decide to kill a user while it waits, and the kill lands at the
        # user's next yield, which may come after it woke: mid-request, losing the
        # start. A kill decided already is seen here, and on_stop passes the start on.
        if self._kill_pending():
            return
        start, self._start = self._start, None
        run = STATE["run"]
        if run.ready(start):
            run.send(self.client, start)

    def _kill_pending(self) -> bool:
        return self.greenlet in self.group.dying


class DeployUser(EdgegapUser):
    """DeployUser sends POST /v2/deployments."""

    endpoint = DEPLOY


class FleetDeployUser(EdgegapUser):
    """FleetDeployUser sends POST /v2/private-fleets/deployments."""

    endpoint = FLEET_DEPLOY


class ScheduleShape(LoadTestShape):
    """ScheduleShape sizes the pool from rate and latency, and stops after the last start."""

    def tick(self):
        scenario, schedule = STATE["scenario"], STATE["schedule"]
        elapsed = self.get_run_time() - START_LEAD_S
        if elapsed > scenario.duration_s + DRAIN_S:
            return None
        if isinstance(self.runner, MasterRunner):
            _resplit_if_changed(self.runner, self.runner.environment.parsed_options)
        rate = max(schedule.rate_at(max(0.0, elapsed + ahead)) for ahead in (0, 1, 2))
        latency_ms = self.runner.stats.total.get_current_response_time_percentile(0.95)
        shares = list(scenario.mix.shares)
        processes = getattr(self.runner, "worker_count", 1)
        wanted = pool_size(rate, (latency_ms or 100) / 1000, shares, processes)
        users = settle_pool(self.runner.user_count, wanted)
        classes = [c for c, s in ((DeployUser, shares[0]), (FleetDeployUser, shares[1])) if s > 0]
        return users, users, classes
