"""Edgegap deploy traffic for Locust, held to the scenario's global rate.

    edgebench emulator --port 8787 &
    locust -f locustfiles/edgegap.py --headless --host http://127.0.0.1:8787 \\
        --scenario scenarios/smoke.toml --csv results/smoke/locust --html results/smoke/locust.html

DeployUser posts /v2/deployments, FleetDeployUser /v2/private-fleets/deployments.
Nobody picks -u or -r (they have no effect): the shape sizes the user pool from the
rate and the observed latency, and ends the run once the schedule is over and
nothing is in flight. -t/--run-time is the same as --duration. Works with
--processes N and --master/--worker: the arrivals are shared out by worker index
(edgebench.traffic.state says how each worker learns its part; the master's and the
workers' sides of the run are edgebench.traffic.coordination's Coordinator and Member).
This file keeps the options, the users and the shape, and wires Locust's events to them.
"""

from __future__ import annotations

import functools
import logging
import secrets
import sys
import time
from dataclasses import replace
from pathlib import Path

import edgegap_ui as live_ui  # locustfiles/, on Locust's path beside this file
import gevent
import locust.runners
from locust import FastHttpUser, LoadTestShape, argument_parser, events, task
from locust.runners import (
    STATE_INIT,
    STATE_MISSING,
    STATE_RUNNING,
    STATE_SPAWNING,
    MasterRunner,
    WorkerRunner,
)

from edgebench._errors import EdgebenchError
from edgebench.manifest import run_facts, utc, write_manifest
from edgebench.plan.overrides import Overrides, RunSpec, with_duration
from edgebench.plan.payloads import DEPLOY, FLEET_DEPLOY
from edgebench.plan.schedule import Schedule
from edgebench.realapi.safety import (
    checked_host,
    refuse_another_scenario,
    refuse_remote_without_token,
)
from edgebench.realapi.token import api_token, authorization, request_token
from edgebench.runfolder import (
    RESULTS_UNWRITABLE_EXIT,
    default_results_dir,
    next_run_folder,
    refuse_used,
    run_tag,
)
from edgebench.traffic.abort import abort_connections_to
from edgebench.traffic.alarm import LEAD_S, sleep_until
from edgebench.traffic.budget import Budget
from edgebench.traffic.coordination import (
    Coordinator,
    Member,
    RunState,
    WorkerStates,
    register_master,
    register_worker,
)
from edgebench.traffic.pool import pool_size, settle_pool
from edgebench.traffic.run import TrafficRun, WorkerSlice
from edgebench.traffic.state import RunFacts

DEFAULT_SCENARIO = "scenarios/smoke.toml"
START_LEAD_S = 1.0  # workers start their schedules together, this long after the start
# A worker quits once its master's heartbeats (one a second) stopped this long: a master
# killed outright, or cut off, leaves no load behind (Locust waits 60 s, and its workers go
# on sending). _leave_when_master_gone acts; Locust's own check is the backstop.
MASTER_GONE_S = 3
locust.runners.MASTER_HEARTBEAT_TIMEOUT = MASTER_GONE_S + 2
WORKER_STATES = WorkerStates((STATE_INIT, STATE_SPAWNING, STATE_RUNNING), STATE_MISSING)
QUEUE_WINDOW_S = 1.0  # the limiter's window: how long a queued burst may wait at the least
# Every HTTP answer is an answer: geventhttpclient raises for a status outside its valid
# codes, and that exception (its traceback, its frames, its formatted conversation) is
# garbage in a cycle with the response: 50 objects a 422 or 429, whose collection paused
# a 1,000/s run for 280 ms every 15 s. TrafficRun judges each status itself.
EVERY_STATUS = frozenset(range(100, 600))
# After the last arrival the run waits for the answers and ready events in flight, at most this.
DRAIN_MAX_S = 10.0
STATE = RunState()

# A Locust worker (2.47) builds its whole argument parser anew for each option of each spawn
# message (default_args_dict() in a comprehension's condition): about 70 parsers, 150 ms
# with the loop blocked, each time the pool changes, and sends due then went that late.
# The defaults it returns never change within a process.
argument_parser.default_args_dict = functools.cache(argument_parser.default_args_dict)


@events.init_command_line_parser.add_listener
def _arguments(parser) -> None:
    parser.add_argument(
        "--scenario",
        default="",
        include_in_web_ui=True,
        help="Scenario file (TOML) to run (default: --run-spec's, else scenarios/smoke.toml). "
        "-u and -r have no effect: the pool follows the rate",
    )
    parser.add_argument(
        "--run-spec",
        default="",
        include_in_web_ui=False,
        help="Set by `edgebench run`: the run as it resolved it (scenario and overrides, JSON); "
        "the options below, where given, go over it",
    )
    parser.add_argument(
        "--duration",
        default="",
        include_in_web_ui=True,
        help="Run length such as 15s or 2m (default: -t, else the scenario's)",
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
        "--limit",
        default="",
        include_in_web_ui=True,
        help="The organisation's limit, requests/s (default: the scenario's)",
    )
    parser.add_argument(
        "--seed",
        default="",
        include_in_web_ui=True,
        help="Seed of every draw: players, parties, endpoints (default: the scenario's)",
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
        "--metrics-from-port",
        type=int,
        default=0,
        include_in_web_ui=False,
        help="Set by `edgebench run --web`: the web UI's /metrics answers from this port",
    )
    parser.add_argument(
        "--results-dir",
        default="",
        include_in_web_ui=True,
        help="Where the run's records go (default: results/<timestamp>-<scenario>)",
    )
    parser.add_argument(
        "--each-run-apart",
        action="store_true",
        default=False,
        include_in_web_ui=False,
        help="Set by `edgebench run --web-wait`: each run from the form in a folder of its own "
        "under --results-dir (the folder itself, then run-2, run-3, ...)",
    )


@events.init.add_listener
def _init(environment, **_kwargs) -> None:
    options, runner = environment.parsed_options, environment.runner
    try:
        scenario = _scenario(options)
        # A worker is told the host (and the scenario) by its master when a run starts.
        if not isinstance(runner, WorkerRunner):
            host = environment.host or scenario.target.host
            environment.host = checked_host(host, options.allow_remote)
            if options.results_dir:
                refuse_used(Path(options.results_dir))
    except EdgebenchError as exc:
        _quit_with(str(exc))
    if getattr(options, "num_users", None) or getattr(options, "spawn_rate", None):
        logging.warning("edgebench: -u and -r have no effect: the user pool follows the rate")
    STATE.token = request_token()
    EdgegapUser.default_headers = authorization(STATE.token)
    if policy := scenario.client_policy:  # the client's request timeout
        EdgegapUser.network_timeout = EdgegapUser.connection_timeout = policy.timeout_s
    deploy_share, fleet_share = scenario.endpoint_shares
    DeployUser.weight = max(1, round(100 * deploy_share))
    FleetDeployUser.weight = max(1, round(100 * fleet_share))
    environment.stop_timeout = max(environment.stop_timeout or 0, 10)
    STATE.scenario, STATE.schedule = scenario, Schedule.from_scenario(scenario)
    live_ui.attach(environment, STATE)
    if isinstance(runner, WorkerRunner):
        STATE.member = Member(runner)
        register_worker(runner, STATE.member)
        gevent.spawn(_leave_when_master_gone, environment)
    elif isinstance(runner, MasterRunner):
        events.worker_report.add_listener(_note_report)
        register_master(runner, lambda: STATE.coordinator)


def _leave_when_master_gone(environment) -> None:
    """_leave_when_master_gone quits a worker whose master's heartbeats stopped MASTER_GONE_S
    ago, its users stopped at once: Locust's own check stops them gracefully, waiting up to
    stop_timeout (10 s) for a request in flight, and a worker cut off from its master may
    reach the API again meanwhile and send a start the others took over. Its connections to
    the API are reset, not closed: what it wrote before a cut is not delivered after it."""
    runner = environment.runner
    while True:
        gevent.sleep(0.25)
        last = runner.last_heartbeat_timestamp
        if last and time.time() - last > MASTER_GONE_S:
            logging.error(
                "edgebench: no heartbeat from the master for %s s (gone, or cut off): "
                "this worker stops sending and quits",
                MASTER_GONE_S,
            )
            environment.stop_timeout = 0
            if environment.host:
                abort_connections_to(environment.host)
            runner.quit()
            return


def _scenario(options):
    """_scenario is the run's scenario: --run-spec's (what `edgebench run` resolved), with
    what Locust's own options or the start form give over it.

    --duration wins over Locust's own -t/--run-time, which is honoured the same way.
    """
    return _spec(options).resolve()


def _spec(options) -> RunSpec:
    run_time = getattr(options, "run_time", None)
    duration = options.duration or (f"{run_time}s" if run_time else "")
    spec = RunSpec.loads(options.run_spec) if options.run_spec else RunSpec(DEFAULT_SCENARIO)
    # A worker on another machine cannot open the master's files: it reads its scenario's
    # own world, and the inputs digest (which holds the world's) refuses it if hosts differ.
    for name in ("world", "costs"):
        path = getattr(spec.overrides, name)
        if path and not Path(path).is_file():
            spec = RunSpec(spec.scenario, replace(spec.overrides, **{name: None}))
    given = Overrides(
        duration, None, options.seed, options.rate_mode, options.rate_factor, options.limit
    )
    spec = spec.over(given)
    return RunSpec(options.scenario, spec.overrides) if options.scenario else spec


def _quit_with(message: str) -> None:
    for line in message.splitlines():
        sys.stderr.write(f"Error: {line}\n")
    sys.exit(2)


@events.test_start.add_listener
def _test_start(environment, **_kwargs) -> None:
    """_test_start begins a run: the master (or only process) decides its facts, workers send."""
    runner, options = environment.runner, environment.parsed_options
    try:  # the start form may have changed the scenario or its rate since start-up
        scenario = _scenario(options)
        checked_host(environment.host, options.allow_remote)  # a worker's too: its master named it
        if isinstance(runner, WorkerRunner):
            refuse_remote_without_token(environment.host)
            facts = RunFacts.received(options)
            refuse_another_scenario(scenario.source, scenario.inputs_digest, facts.scenario_digest)
            scenario = with_duration(scenario, f"{facts.duration_s}s")
            schedule = Schedule.from_scenario(scenario)
        else:
            schedule = Schedule.from_scenario(scenario)
            facts = _decide_facts(environment, scenario, schedule)
    except EdgebenchError as exc:
        _refuse(environment, exc)
        return
    STATE.facts, STATE.completed = facts, False
    STATE.scenario, STATE.schedule = scenario, schedule
    if isinstance(runner, MasterRunner):
        STATE.coordinator = Coordinator(
            runner,
            facts,
            options.max_deployments,
            WORKER_STATES,
            on_unwritable=_stop_unwritable(environment),
        )
    else:
        _start_traffic(environment, facts)


def _decide_facts(environment, scenario, schedule: Schedule) -> RunFacts:
    """_decide_facts fixes the run's facts, publishes them to the workers, writes the manifest."""
    options, runner = environment.parsed_options, environment.runner
    results_dir = options.results_dir or str(default_results_dir(scenario.name))
    if options.each_run_apart:  # `edgebench run --web-wait`: as many runs as START is pressed
        results_dir = str(next_run_folder(Path(results_dir)))
    refuse_used(Path(results_dir))  # the start form may name a folder that holds a run now
    workers = runner.worker_count if isinstance(runner, MasterRunner) else 1
    epoch = time.time() + START_LEAD_S
    run_id, duration_s = secrets.token_hex(4), scenario.duration_s
    facts = RunFacts(run_id, results_dir, epoch, workers, duration_s, scenario.inputs_digest)
    facts.publish(options)
    manifest = run_facts(scenario, schedule, environment.host, api_token() is not None, workers)
    write_manifest(
        Path(results_dir),
        **manifest,
        run_spec=_spec(options).given_run(),
        run_id=facts.run_id,
        run_tag=run_tag(Path(results_dir)),  # on every deployment: what the cleanup sweeps by
        epoch=facts.epoch,
        epoch_utc=utc(epoch),
    )
    live_ui.started(Path(results_dir))
    return facts


def _start_traffic(environment, facts: RunFacts) -> None:
    """_start_traffic starts this process's slice of the schedule."""
    member, total = STATE.member, environment.parsed_options.max_deployments
    index = environment.runner.worker_index if member else 0
    results_dir = Path(facts.results_dir)
    budget = None
    if total:  # all of --max-deployments here, or a worker's leases from the master
        budget = member.budget(facts, total) if member else Budget(total)
    run = TrafficRun(
        STATE.scenario,
        results_dir,
        WorkerSlice(index, facts.workers, facts.epoch, facts.run_id),
        run_tag(results_dir),
        environment.host,
        STATE.token,
        budget=budget,
        ship=member.shipper(facts.run_id) if member else None,
        on_unwritable=_stop_unwritable(environment),
    )
    if member:
        member.start(run)
    else:
        run.start()
    STATE.run = run


def _stop_unwritable(environment):
    """_stop_unwritable is what a process does when the records cannot be written (a full
    disk): it stops the run at once (a master, its workers too) and exits with
    RESULTS_UNWRITABLE_EXIT, which `edgebench run` tells in one line."""

    def stop(exc: OSError) -> None:
        if environment.process_exit_code == RESULTS_UNWRITABLE_EXIT:
            return  # told already
        logging.error("edgebench: cannot write %s: %s: the run stops", exc.filename, exc.strerror)
        environment.process_exit_code = RESULTS_UNWRITABLE_EXIT
        environment.stop_timeout = 0
        gevent.spawn(environment.runner.quit)

    return stop


@events.test_stopping.add_listener
def _finish_workers(environment, **_kwargs) -> None:
    """_finish_workers has every worker send its last records before the master stops."""
    if STATE.coordinator is not None:
        STATE.coordinator.finish_workers()


def _refuse(environment, exc: EdgebenchError) -> None:
    """_refuse stops a run that cannot start (exit code 2), saying why, in the web UI too
    (where a START from the form may be tried again: no exit code). A worker that cannot
    take part quits: the master shares the schedule out afresh among the others (what this
    one owned until then shows in the report as starts with no record)."""
    logging.error("edgebench: %s", exc)
    live_ui.refused(str(exc))
    options = environment.parsed_options
    if not environment.web_ui or options.autostart:  # a form's START may be tried again
        environment.process_exit_code = 2
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        gevent.spawn(runner.quit)
    else:
        stop = runner.quit if environment.parsed_options.headless else runner.stop
        gevent.spawn(stop)


@events.report_to_master.add_listener
def _report_in_flight(client_id, data, **_kwargs) -> None:
    if STATE.member is not None:
        STATE.member.report(data)


def _note_report(client_id, data, **_kwargs) -> None:
    if STATE.coordinator is not None:
        STATE.coordinator.note_report(client_id, data)


def _drained(since: float) -> bool:
    """_drained is whether nothing was in flight anywhere, as known after `since` (unix time)."""
    if STATE.coordinator is not None:
        return STATE.coordinator.drained(since)
    return STATE.run is None or STATE.run.in_flight() == 0


def _stop_run() -> None:
    run, STATE.run = STATE.run, None
    if STATE.member is not None:
        STATE.member.stop()
    elif run is not None:
        run.stop()


@events.test_stop.add_listener
def _test_stop(environment, **_kwargs) -> None:
    _stop_run()
    facts, STATE.facts, STATE.coordinator = STATE.facts, None, None
    completed, STATE.completed = STATE.completed, False
    if facts is not None and not isinstance(environment.runner, WorkerRunner):
        results_dir = Path(facts.results_dir)
        ended = time.time()
        try:
            write_manifest(
                results_dir, ended_at=ended, ended_at_utc=utc(ended), schedule_completed=completed
            )
            print(f"edgebench: records in {results_dir}", file=sys.stderr)
        except OSError as exc:  # a full disk: the manifest keeps its start, the report says so
            _stop_unwritable(environment)(exc)
        live_ui.stopped(environment, results_dir)


@events.quitting.add_listener
def _quitting(environment, **_kwargs) -> None:
    _stop_run()


class EdgegapUser(FastHttpUser):
    """EdgegapUser takes its endpoint's next start, waits until it is due, and sends it.

    wait_time takes the start and Locust's own wait sleeps until shortly before it is
    due: there Locust counts a user as idle, so a run that stops kills it at once
    instead of waiting for its task, and on_stop gives the start back. The task sleeps
    the last LEAD_S on a timer that wakes on time (gevent's wake up to 1.1 ms late).
    """

    abstract = True
    endpoint = DEPLOY
    network_timeout = 10.0
    connection_timeout = 10.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.client.client.valid_response_codes = EVERY_STATUS  # as locust#2079 advises
        self._start = None

    def wait_time(self) -> float:
        run = STATE.run
        if run is None:
            return 0.1
        if self._kill_pending():
            return 0.0  # take no start: the kill lands in this wait
        self._start = run.next_start(self.endpoint)
        if self._start is None:
            return 1.0  # the schedule is over: idle until the run stops
        return max(0.0, self._start.due - LEAD_S - time.time())

    def on_stop(self) -> None:
        # Stopped between taking a start and sending it: the start goes to another user.
        if self._start is not None and STATE.run is not None:
            STATE.run.give_back(self._start)
            self._start = None

    @task
    def send_due_request(self) -> None:
        if self._start is None:
            return
        sleep_until(self._start.due)  # a kill landing here: on_stop gives the start back
        # Locust may decide to kill a user while it waits, and the kill lands at the
        # user's next yield, which may come after it woke: mid-request, losing the
        # start. A kill decided already is seen here, and on_stop passes the start on.
        if self._kill_pending():
            return
        start, self._start = self._start, None
        run = STATE.run
        if run is not None and run.ready(start):
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
    """ScheduleShape sizes the pool from rate and latency, and stops once the schedule is done.

    use_common_options: -t/--run-time is read as the run's duration (see _scenario),
    so Locust neither warns about it nor ignores it.
    """

    use_common_options = True

    def tick(self):
        runner, facts = self.runner, STATE.facts
        if facts is None:  # the first tick comes before the run's start
            return self._pool(runner, 0.0)
        elapsed = time.time() - facts.epoch
        end = facts.epoch + facts.duration_s
        if elapsed > facts.duration_s and (
            _drained(end) or elapsed > facts.duration_s + DRAIN_MAX_S
        ):
            STATE.completed = True
            return None
        if STATE.coordinator is not None:
            STATE.coordinator.resplit_if_changed()
        return self._pool(runner, max(0.0, elapsed))

    def _pool(self, runner, elapsed: float):
        """_pool is the users each class needs now, from the rate of the next seconds."""
        scenario, schedule = STATE.scenario, STATE.schedule
        rate = max(schedule.rate_at(elapsed + ahead) for ahead in (0, 1, 2))
        latency_ms = runner.stats.total.get_current_response_time_percentile(0.95)
        # A user is busy for a match's whole stay: its queue, its retries' waits, its answers.
        busy_s = STATE.coordinator.busiest_s() if STATE.coordinator else 0.0
        if STATE.run is not None:
            busy_s = max(busy_s, STATE.run.busy_s)
        latency_s = max((latency_ms or 100) / 1000, busy_s)
        if scenario.queues:  # a burst waits up to a window for the limiter: users for it now
            latency_s = max(latency_s, QUEUE_WINDOW_S)
        shares = list(scenario.endpoint_shares)
        processes = getattr(runner, "worker_count", 1)
        wanted = pool_size(rate, latency_s, shares, processes)
        users = settle_pool(runner.user_count, wanted)
        classes = [c for c, s in ((DeployUser, shares[0]), (FleetDeployUser, shares[1])) if s > 0]
        return users, users, classes
