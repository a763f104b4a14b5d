"""Edgegap deploy traffic for Locust, held to the scenario's global rate.

    edgebench emulator --port 8787 &
    locust -f locustfiles/edgegap.py --headless --host http://127.0.0.1:8787 \\
        --scenario scenarios/smoke.toml --csv results/smoke/locust --html results/smoke/locust.html

DeployUser posts /v2/deployments, FleetDeployUser /v2/private-fleets/deployments.
Nobody picks -u or -r (they have no effect): the shape sizes the user pool from the
rate and the observed latency, and ends the run once the schedule is over and
nothing is in flight. -t/--run-time is the same as --duration. Works with
--processes N and --master/--worker: the arrivals are shared out by worker index
(edgebench.traffic.state says how each worker learns its part).
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
import sys
import time
from pathlib import Path

import edgegap_ui as live_ui  # locustfiles/, on Locust's path beside this file
import gevent
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
from edgebench.plan.overrides import Overrides, planned, with_duration
from edgebench.plan.payloads import DEPLOY, FLEET_DEPLOY
from edgebench.plan.schedule import Schedule
from edgebench.realapi.safety import is_loopback
from edgebench.realapi.token import api_token, authorization, request_token
from edgebench.runfolder import default_results_dir, refuse_used, run_tag
from edgebench.traffic.alarm import LEAD_S, sleep_until
from edgebench.traffic.budget import Budget, Ledger, lease_size
from edgebench.traffic.pool import pool_size, settle_pool
from edgebench.traffic.run import TrafficRun, WorkerSlice
from edgebench.traffic.state import RunFacts, RunState, Split

START_LEAD_S = 1.0  # workers start their schedules together, this long after the start
RESPLIT_LEAD_S = 1.0  # a new split of the schedule starts this long after it is sent
SPLIT_MESSAGE = "edgebench_split"
# A worker's records, flushed each second, go to the master, which appends them to its
# results folder: a run needs no shared volume, and a worker that dies loses its last second.
RECORDS_MESSAGE = "edgebench_records"
RECORD_FILE = re.compile(r"(requests|events)-[0-9a-f]+-w\d+\.jsonl|webhooks-[0-9a-f]+-w\d+\.json")
ASK_MESSAGE, LEASE_MESSAGE = "edgebench_budget_ask", "edgebench_budget_lease"
# When a run stops, the master has each worker stop its traffic and send its last records
# before Locust's own stop (whose quit does not wait for them); at most this long.
FINISH_MESSAGE, FINISHED_MESSAGE = "edgebench_finish", "edgebench_finished"
FINISH_WAIT_S = 30.0
IN_FLIGHT_REPORT = "edgebench_in_flight"
BUSY_REPORT = "edgebench_busy_s"
QUEUE_WINDOW_S = 1.0  # the limiter's window: how long a queued burst may wait at the least
ALIVE = (STATE_INIT, STATE_SPAWNING, STATE_RUNNING)
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
        default="scenarios/smoke.toml",
        include_in_web_ui=True,
        help="Scenario file (TOML) to run. -u and -r have no effect: the pool follows the rate",
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


@events.init.add_listener
def _init(environment, **_kwargs) -> None:
    options, runner = environment.parsed_options, environment.runner
    try:
        scenario = _scenario(options)
        # A worker is told the host (and the scenario) by its master when a run starts.
        if not isinstance(runner, WorkerRunner):
            host = environment.host or scenario.target.host
            environment.host = _checked_host(host, options.allow_remote)
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
        runner.register_message(SPLIT_MESSAGE, _on_split)
        runner.register_message(LEASE_MESSAGE, _on_lease)
        runner.register_message(FINISH_MESSAGE, _on_finish, concurrent=True)
    elif isinstance(runner, MasterRunner):
        events.worker_report.add_listener(_note_in_flight)
        runner.register_message(RECORDS_MESSAGE, _on_records)
        runner.register_message(ASK_MESSAGE, _on_ask)
        runner.register_message(FINISHED_MESSAGE, _on_finished)


def _scenario(options):
    """_scenario is the scenario file with the run's overrides (command line or start form).

    --duration wins over Locust's own -t/--run-time, which is honoured the same way.
    """
    run_time = getattr(options, "run_time", None)
    duration = options.duration or (f"{run_time}s" if run_time else "")
    # No world: the senders never read it (the emulator does), and a worker on another
    # machine could not open the master's path.
    overrides = Overrides(duration, None, options.seed, options.rate_mode, options.rate_factor)
    return planned(options.scenario, overrides)


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
    """_test_start begins a run: the master (or only process) decides its facts, workers send."""
    runner, options = environment.runner, environment.parsed_options
    try:  # the start form may have changed the scenario or its rate since start-up
        scenario = _scenario(options)
        _checked_host(environment.host, options.allow_remote)  # a worker's too: its master named it
        if isinstance(runner, WorkerRunner):
            _refuse_remote_without_token(environment.host)
            facts = RunFacts.received(options)
            _refuse_another_scenario(scenario, facts)
            scenario = with_duration(scenario, f"{facts.duration_s}s")
            schedule = Schedule.from_scenario(scenario)
        else:
            schedule = Schedule.from_scenario(scenario)
            facts = _decide_facts(environment, scenario, schedule)
    except EdgebenchError as exc:
        _refuse(environment, exc)
        return
    STATE.facts = facts
    STATE.scenario, STATE.schedule = scenario, schedule
    if isinstance(runner, MasterRunner):
        STATE.members, STATE.in_flight, STATE.busy_s = _alive_workers(runner), {}, {}
        STATE.finished = set()
        budget = options.max_deployments
        STATE.ledger = Ledger(budget) if budget else None
    else:
        _start_traffic(environment, facts)


def _refuse_remote_without_token(host: str | None) -> None:
    """A worker sends to a host that is not loopback only as its master decided, with a token
    of its own (EDGEGAP_API_TOKEN here too: the master never sends it)."""
    if host and not is_loopback(host) and api_token() is None:
        raise EdgebenchError(
            f"the master's host {host} is not loopback and EDGEGAP_API_TOKEN is not set on "
            "this worker: set it (from the same secret as the master's)"
        )


def _refuse_another_scenario(scenario, facts: RunFacts) -> None:
    """A worker reads the scenario (and the files it names) from its own copy: one that is
    not the master's would send another schedule, under the master's name."""
    if scenario.inputs_digest != facts.scenario_digest:
        raise EdgebenchError(
            f"{scenario.source}: not the master's scenario (sha256 of it and the files it "
            f"reads: {scenario.inputs_digest[:12]} here, {facts.scenario_digest[:12]} on the "
            "master): give every worker the same scenario and files (the same image or checkout)"
        )


def _decide_facts(environment, scenario, schedule: Schedule) -> RunFacts:
    """_decide_facts fixes the run's facts, publishes them to the workers, writes the manifest."""
    options, runner = environment.parsed_options, environment.runner
    results_dir = options.results_dir or str(default_results_dir(scenario.name))
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
        run_id=facts.run_id,
        run_tag=run_tag(Path(results_dir)),  # on every deployment: what the cleanup sweeps by
        epoch=facts.epoch,
        epoch_utc=utc(epoch),
    )
    live_ui.started(Path(results_dir))
    return facts


def _start_traffic(environment, facts: RunFacts) -> None:
    """_start_traffic starts this process's slice of the schedule."""
    runner = environment.runner
    worker = isinstance(runner, WorkerRunner)
    index = runner.worker_index if worker else 0
    results_dir = Path(facts.results_dir)
    STATE.run = TrafficRun(
        STATE.scenario,
        results_dir,
        WorkerSlice(index, facts.workers, facts.epoch, facts.run_id),
        run_tag(results_dir),
        environment.host,
        STATE.token,
        budget=_budget(environment, facts),
        ship=_shipper(runner, facts.run_id) if worker else None,
    )
    if STATE.pending_split is not None:
        STATE.run.resplit(*STATE.pending_split)
        STATE.pending_split = None
    STATE.run.start()


def _budget(environment, facts: RunFacts) -> Budget | None:
    """_budget is this process's part of --max-deployments: all of it, or leases from the master."""
    total, runner = environment.parsed_options.max_deployments, environment.runner
    if not total:
        return None
    if not isinstance(runner, WorkerRunner):
        return Budget(total)

    def ask(count: int) -> None:
        runner.send_message(ASK_MESSAGE, {"run_id": facts.run_id, "count": count})

    return Budget(0, lease_size(total, facts.workers), ask)


def _shipper(runner, run_id: str):
    def ship(name: str, data: bytes) -> None:
        runner.send_message(RECORDS_MESSAGE, {"run_id": run_id, "name": name, "data": data})

    return ship


def _current_run(msg) -> Path | None:
    """_current_run is the results folder of the run a worker's message is about (None: not
    the run on now, which is logged: a late message must not go unnoticed)."""
    facts = STATE.facts
    if facts is None or msg.data.get("run_id") != facts.run_id:
        logging.error("edgebench: %s from %s after its run: dropped", msg.type, msg.node_id)
        return None
    return Path(facts.results_dir)


def _on_records(environment, msg, **_kwargs) -> None:
    results_dir, name = _current_run(msg), msg.data.get("name", "")
    if results_dir is None:
        return
    if not RECORD_FILE.fullmatch(name):
        logging.error("edgebench: %r from %s is not a record file: dropped", name, msg.node_id)
        return
    with (results_dir / name).open("ab") as log:
        log.write(msg.data["data"])


def _on_ask(environment, msg, **_kwargs) -> None:
    if _current_run(msg) is None or STATE.ledger is None:
        return
    count, exhausted = STATE.ledger.lend(int(msg.data["count"]))
    reply = {"run_id": msg.data["run_id"], "count": count, "exhausted": exhausted}
    environment.runner.send_message(LEASE_MESSAGE, reply, msg.node_id)


def _on_lease(environment, msg, **_kwargs) -> None:
    run = STATE.run
    if run is not None and run.budget is not None and msg.data["run_id"] == run.part.run_id:
        run.budget.granted(msg.data["count"], msg.data["exhausted"])


def _on_finish(environment, msg, **_kwargs) -> None:
    """_on_finish stops this worker's traffic as Locust would (users first, then the run's
    last records) and tells the master its records are all sent."""
    environment.runner.stop()
    environment.runner.send_message(FINISHED_MESSAGE, {"run_id": msg.data["run_id"]})


def _on_finished(environment, msg, **_kwargs) -> None:
    if _current_run(msg) is not None:
        STATE.finished.add(msg.node_id)


@events.test_stopping.add_listener
def _finish_workers(environment, **_kwargs) -> None:
    """_finish_workers has every worker send its last records before the master stops."""
    runner, facts = environment.runner, STATE.facts
    if not isinstance(runner, MasterRunner) or facts is None:
        return
    STATE.members = None  # no new split while the run stops
    told = _alive_workers(runner)
    for client_id in told:
        runner.send_message(FINISH_MESSAGE, {"run_id": facts.run_id}, client_id)
    deadline = time.monotonic() + FINISH_WAIT_S
    while (waiting := _unfinished(runner, told)) and time.monotonic() < deadline:
        gevent.sleep(0.05)
    if waiting:
        logging.error("edgebench: no last records from %d workers", len(waiting))


def _unfinished(runner, told) -> set[str]:
    """_unfinished are the workers told to finish that neither did nor left (quit, went missing)."""
    present = {c.id for c in runner.clients.values() if c.state != STATE_MISSING}
    return (set(told) & present) - STATE.finished


def _refuse(environment, exc: EdgebenchError) -> None:
    """_refuse stops a run that cannot start (exit code 2), saying why. A worker that cannot
    take part quits: the master shares the schedule out afresh among the others (what this
    one owned until then shows in the report as starts with no record)."""
    logging.error("edgebench: %s", exc)
    environment.process_exit_code = 2
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        gevent.spawn(runner.quit)
    else:
        stop = runner.quit if environment.parsed_options.headless else runner.stop
        gevent.spawn(stop)


def _alive_workers(runner) -> tuple[str, ...]:
    alive = [client.id for client in runner.clients.values() if client.state in ALIVE]
    return tuple(sorted(alive, key=runner.get_worker_index))


def _resplit_if_changed(runner, facts: RunFacts) -> None:
    """_resplit_if_changed shares the schedule out afresh when workers joined or left."""
    if STATE.members is None:  # the run has not started yet
        return
    members = _alive_workers(runner)
    if not members or members == STATE.members:
        return
    STATE.members = members
    from_s = max(0.0, time.time() - facts.epoch) + RESPLIT_LEAD_S
    for position, client_id in enumerate(members):
        split = Split(position, len(members), from_s)
        runner.send_message(SPLIT_MESSAGE, split._asdict(), client_id)
    logging.warning(
        "edgebench: %d workers now; the schedule is shared out afresh from %.1f s",
        len(members),
        from_s,
    )


def _on_split(environment, msg, **_kwargs) -> None:
    split = Split(**msg.data)
    if STATE.run is None:  # joined before its first start: apply the split when the run begins
        STATE.pending_split = split
    else:
        STATE.run.resplit(*split)


@events.report_to_master.add_listener
def _report_in_flight(client_id, data, **_kwargs) -> None:
    if STATE.run is not None:
        data[IN_FLIGHT_REPORT] = STATE.run.in_flight()
        data[BUSY_REPORT] = STATE.run.busy_s


def _note_in_flight(client_id, data, **_kwargs) -> None:
    if IN_FLIGHT_REPORT in data:
        STATE.in_flight[client_id] = (time.time(), data[IN_FLIGHT_REPORT])
    if BUSY_REPORT in data:
        STATE.busy_s[client_id] = data[BUSY_REPORT]


def _drained(runner, since: float) -> bool:
    """_drained is whether nothing was in flight anywhere, as known after `since` (unix time)."""
    if not isinstance(runner, MasterRunner):
        return STATE.run is None or STATE.run.in_flight() == 0
    reports = [STATE.in_flight.get(member, (0.0, 1)) for member in STATE.members or ()]
    return all(at > since and count == 0 for at, count in reports)


def _stop_run() -> None:
    run, STATE.run = STATE.run, None
    if run is not None:
        run.stop()


@events.test_stop.add_listener
def _test_stop(environment, **_kwargs) -> None:
    _stop_run()
    facts, STATE.facts, STATE.members = STATE.facts, None, None
    if facts is not None and not isinstance(environment.runner, WorkerRunner):
        results_dir = Path(facts.results_dir)
        ended = time.time()
        write_manifest(results_dir, ended_at=ended, ended_at_utc=utc(ended))
        print(f"edgebench: records in {results_dir}", file=sys.stderr)
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
            _drained(runner, end) or elapsed > facts.duration_s + DRAIN_MAX_S
        ):
            return None
        if isinstance(runner, MasterRunner):
            _resplit_if_changed(runner, facts)
        return self._pool(runner, max(0.0, elapsed))

    def _pool(self, runner, elapsed: float):
        """_pool is the users each class needs now, from the rate of the next seconds."""
        scenario, schedule = STATE.scenario, STATE.schedule
        rate = max(schedule.rate_at(elapsed + ahead) for ahead in (0, 1, 2))
        latency_ms = runner.stats.total.get_current_response_time_percentile(0.95)
        # A user is busy for a match's whole stay: its queue, its retries' waits, its answers.
        busy_s = max(STATE.busy_s.values(), default=0.0)
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
