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
This file keeps the options, the users and the shape; each of Locust's events is one call
to edgebench.traffic.session's Session, the one writer of the run's state.
"""

from __future__ import annotations

import functools
import time

import edgegap_ui as live_ui  # locustfiles/, on Locust's path beside this file
import locust.runners
from locust import FastHttpUser, LoadTestShape, argument_parser, events, task
from locust.runners import STATE_INIT, STATE_MISSING, STATE_RUNNING, STATE_SPAWNING

from edgebench.plan.payloads import DEPLOY, FLEET_DEPLOY
from edgebench.realapi.token import authorization
from edgebench.traffic.alarm import LEAD_S, sleep_until
from edgebench.traffic.coordination import WorkerStates
from edgebench.traffic.pool import pool_size, settle_pool
from edgebench.traffic.session import MASTER_GONE_S, Session

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


def _configure_users(scenario, token) -> None:
    """_configure_users sets the users for the scenario: its endpoints' weights, the token's
    header, the client's request timeout."""
    EdgegapUser.default_headers = authorization(token)
    if policy := scenario.client_policy:
        EdgegapUser.network_timeout = EdgegapUser.connection_timeout = policy.timeout_s
    deploy_share, fleet_share = scenario.endpoint_shares
    DeployUser.weight = max(1, round(100 * deploy_share))
    FleetDeployUser.weight = max(1, round(100 * fleet_share))


SESSION = Session(live_ui, _configure_users, WORKER_STATES)
STATE = SESSION.state  # read by the users and the shape; written by SESSION alone


@events.init.add_listener
def _init(environment, **_kwargs) -> None:
    SESSION.init(environment)


@events.test_start.add_listener
def _test_start(environment, **_kwargs) -> None:
    SESSION.test_start(environment)


@events.test_stopping.add_listener
def _test_stopping(environment, **_kwargs) -> None:
    SESSION.test_stopping()


@events.test_stop.add_listener
def _test_stop(environment, **_kwargs) -> None:
    SESSION.test_stop(environment)


@events.quitting.add_listener
def _quitting(environment, **_kwargs) -> None:
    SESSION.quitting()


@events.report_to_master.add_listener
def _report_to_master(client_id, data, **_kwargs) -> None:
    SESSION.report_to_master(data)


@events.worker_report.add_listener
def _worker_report(client_id, data, **_kwargs) -> None:
    SESSION.worker_report(client_id, data)


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
            SESSION.drained(end) or elapsed > facts.duration_s + DRAIN_MAX_S
        ):
            SESSION.schedule_completed()
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
