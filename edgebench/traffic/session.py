"""A Locust process's part in a run: what the locustfile's events do, and the one writer of
its RunState.

The locustfile (locustfiles/edgegap.py) keeps Locust's options, the users and the shape;
each of its event listeners is one call here:

    SESSION = Session(ui, configure_users)
    events.init.add_listener(lambda environment, **_: SESSION.init(environment))

The master (or the only process) decides a run's facts and writes its manifest; workers
send their share (edgebench.traffic.coordination's Coordinator and Member).
"""

from __future__ import annotations

import logging
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import gevent

from edgebench._errors import EdgebenchError
from edgebench.manifest import run_facts, utc, write_manifest
from edgebench.plan.overrides import Overrides, RunSpec, with_duration
from edgebench.plan.scenario import Scenario
from edgebench.plan.schedule import Schedule
from edgebench.realapi.safety import (
    checked_host,
    refuse_another_scenario,
    refuse_remote_without_token,
)
from edgebench.realapi.token import api_token, request_token
from edgebench.runfolder import (
    RESULTS_UNWRITABLE_EXIT,
    default_results_dir,
    next_run_folder,
    refuse_used,
    run_tag,
)
from edgebench.traffic.abort import abort_connections_to
from edgebench.traffic.budget import Budget
from edgebench.traffic.coordination import (
    Coordinator,
    Member,
    RunState,
    WorkerStates,
    register_master,
    register_worker,
)
from edgebench.traffic.run import TrafficRun, WorkerSlice
from edgebench.traffic.state import RunFacts

DEFAULT_SCENARIO = "scenarios/smoke.toml"
START_LEAD_S = 1.0  # workers start their schedules together, this long after the start
# A worker quits once its master's heartbeats (one a second) stopped this long: a master
# killed outright, or cut off, leaves no load behind (Locust waits 60 s, and its workers go
# on sending). _leave_when_master_gone acts; Locust's own check is the backstop.
MASTER_GONE_S = 3


def run_spec(options) -> RunSpec:
    """run_spec is the run Locust's options ask for: --run-spec's (what `edgebench run`
    resolved), with Locust's own options or the start form's over it. --duration wins over
    Locust's own -t/--run-time, which is honoured the same way."""
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


class Session:
    """Session is this process's part in the runs Locust starts; it alone writes `state`.

    ui is the web UI's module (attach, started, refused, stopped); configure_users sets the
    user classes for a scenario and the token (weights, headers, timeouts).
    """

    def __init__(
        self,
        ui: Any,
        configure_users: Callable[[Scenario, str | None], None],
        worker_states: WorkerStates,
    ) -> None:
        self.state = RunState()
        self.ui, self.configure_users, self.worker_states = ui, configure_users, worker_states

    # Locust's events ------------------------------------------------------

    def init(self, environment) -> None:
        """init checks the run's options at start-up (exit 2 on bad input) and sets up the
        users, the web UI's tab and this process's side of a distributed run."""
        options, runner = environment.parsed_options, environment.runner
        try:
            scenario = run_spec(options).resolve()
            # A worker is told the host (and the scenario) by its master when a run starts.
            if not _is_worker(runner):
                host = environment.host or scenario.target.host
                environment.host = checked_host(host, options.allow_remote)
                if options.results_dir:
                    refuse_used(Path(options.results_dir))
        except EdgebenchError as exc:
            _quit_with(str(exc))
        if getattr(options, "num_users", None) or getattr(options, "spawn_rate", None):
            logging.warning("edgebench: -u and -r have no effect: the user pool follows the rate")
        state = self.state
        state.token = request_token()
        self.configure_users(scenario, state.token)
        environment.stop_timeout = max(environment.stop_timeout or 0, 10)
        state.scenario, state.schedule = scenario, Schedule.from_scenario(scenario)
        self.ui.attach(environment, state)
        if _is_worker(runner):
            state.member = Member(runner)
            register_worker(runner, state.member)
            gevent.spawn(self._leave_when_master_gone, environment)
        elif _is_master(runner):
            register_master(runner, lambda: state.coordinator)

    def test_start(self, environment) -> None:
        """test_start begins a run: the master (or only process) decides its facts, workers
        send."""
        runner, options = environment.runner, environment.parsed_options
        try:  # the start form may have changed the scenario or its rate since start-up
            spec = run_spec(options)
            scenario = spec.resolve()
            checked_host(environment.host, options.allow_remote)  # a worker's: its master's
            if _is_worker(runner):
                refuse_remote_without_token(environment.host)
                facts = RunFacts.received(options)
                refuse_another_scenario(
                    scenario.source, scenario.inputs_digest, facts.scenario_digest
                )
                scenario = with_duration(scenario, f"{facts.duration_s}s")
                schedule = Schedule.from_scenario(scenario)
            else:
                schedule = Schedule.from_scenario(scenario)
                facts = self._decide_facts(environment, spec, scenario, schedule)
        except EdgebenchError as exc:
            self._refuse(environment, exc)
            return
        state = self.state
        state.facts, state.completed = facts, False
        state.scenario, state.schedule = scenario, schedule
        if _is_master(runner):
            state.coordinator = Coordinator(
                runner,
                facts,
                options.max_deployments,
                self.worker_states,
                on_unwritable=self._stop_unwritable(environment),
            )
        else:
            self._start_traffic(environment, facts)

    def test_stopping(self) -> None:
        """test_stopping has every worker send its last records before the master stops."""
        if self.state.coordinator is not None:
            self.state.coordinator.finish_workers()

    def test_stop(self, environment) -> None:
        """test_stop ends the run: the traffic stops, the manifest says how it ended."""
        self._stop_run()
        state = self.state
        facts, state.facts, state.coordinator = state.facts, None, None
        completed, state.completed = state.completed, False
        if facts is None or _is_worker(environment.runner):
            return
        results_dir = Path(facts.results_dir)
        ended = time.time()
        try:
            write_manifest(
                results_dir, ended_at=ended, ended_at_utc=utc(ended), schedule_completed=completed
            )
            print(f"edgebench: records in {results_dir}", file=sys.stderr)
        except OSError as exc:  # a full disk: the manifest keeps its start, the report says so
            self._stop_unwritable(environment)(exc)
        self.ui.stopped(environment, results_dir)

    def quitting(self) -> None:
        self._stop_run()

    def report_to_master(self, data: dict) -> None:
        if self.state.member is not None:
            self.state.member.report(data)

    def worker_report(self, client_id: str, data: dict) -> None:
        if self.state.coordinator is not None:
            self.state.coordinator.note_report(client_id, data)

    # What the shape asks ------------------------------------------------------

    def drained(self, since: float) -> bool:
        """drained is whether nothing was in flight anywhere, as known after `since`."""
        state = self.state
        if state.coordinator is not None:
            return state.coordinator.drained(since)
        return state.run is None or state.run.in_flight() == 0

    def schedule_completed(self) -> None:
        """schedule_completed notes that the schedule ran to its end (every start due)."""
        self.state.completed = True

    # Within -------------------------------------------------------------------

    def _decide_facts(self, environment, spec: RunSpec, scenario, schedule) -> RunFacts:
        """_decide_facts fixes the run's facts, publishes them to the workers, writes the
        manifest."""
        options, runner = environment.parsed_options, environment.runner
        results_dir = options.results_dir or str(default_results_dir(scenario.name))
        if options.each_run_apart:  # `edgebench run --web-wait`: a folder each START
            results_dir = str(next_run_folder(Path(results_dir)))
        refuse_used(Path(results_dir))  # the start form may name a folder holding a run now
        workers = runner.worker_count if _is_master(runner) else 1
        epoch = time.time() + START_LEAD_S
        run_id, duration_s = secrets.token_hex(4), scenario.duration_s
        facts = RunFacts(run_id, results_dir, epoch, workers, duration_s, scenario.inputs_digest)
        facts.publish(options)
        manifest = run_facts(scenario, schedule, environment.host, api_token() is not None, workers)
        write_manifest(
            Path(results_dir),
            **manifest,
            run_spec=spec.given_run(),
            run_id=facts.run_id,
            run_tag=run_tag(Path(results_dir)),  # on every deployment: what cleanup sweeps by
            epoch=facts.epoch,
            epoch_utc=utc(epoch),
        )
        self.ui.started(Path(results_dir))
        return facts

    def _start_traffic(self, environment, facts: RunFacts) -> None:
        """_start_traffic starts this process's slice of the schedule."""
        state = self.state
        member, total = state.member, environment.parsed_options.max_deployments
        index = environment.runner.worker_index if member else 0
        results_dir = Path(facts.results_dir)
        budget = None
        if total:  # all of --max-deployments here, or a worker's leases from the master
            budget = member.budget(facts, total) if member else Budget(total)
        run = TrafficRun(
            state.scenario,
            results_dir,
            WorkerSlice(index, facts.workers, facts.epoch, facts.run_id),
            run_tag(results_dir),
            environment.host,
            state.token,
            budget=budget,
            ship=member.shipper(facts.run_id) if member else None,
            on_unwritable=self._stop_unwritable(environment),
        )
        if member:
            member.start(run)
        else:
            run.start()
        state.run = run

    def _stop_run(self) -> None:
        run, self.state.run = self.state.run, None
        if self.state.member is not None:
            self.state.member.stop()
        elif run is not None:
            run.stop()

    def _stop_unwritable(self, environment):
        """_stop_unwritable is what a process does when the records cannot be written (a
        full disk): it stops the run at once (a master, its workers too) and exits with
        RESULTS_UNWRITABLE_EXIT, which `edgebench run` tells in one line."""

        def stop(exc: OSError) -> None:
            if environment.process_exit_code == RESULTS_UNWRITABLE_EXIT:
                return  # told already
            logging.error(
                "edgebench: cannot write %s: %s: the run stops", exc.filename, exc.strerror
            )
            environment.process_exit_code = RESULTS_UNWRITABLE_EXIT
            environment.stop_timeout = 0
            gevent.spawn(environment.runner.quit)

        return stop

    def _refuse(self, environment, exc: EdgebenchError) -> None:
        """_refuse stops a run that cannot start (exit code 2), saying why, in the web UI too
        (where a START from the form may be tried again: no exit code). A worker that cannot
        take part quits: the master shares the schedule out afresh among the others (what
        this one owned until then shows in the report as starts with no record)."""
        logging.error("edgebench: %s", exc)
        self.ui.refused(str(exc))
        options = environment.parsed_options
        if not environment.web_ui or options.autostart:  # a form's START may be tried again
            environment.process_exit_code = 2
        runner = environment.runner
        if _is_worker(runner):
            gevent.spawn(runner.quit)
        else:
            stop = runner.quit if options.headless else runner.stop
            gevent.spawn(stop)

    def _leave_when_master_gone(self, environment) -> None:
        """_leave_when_master_gone quits a worker whose master's heartbeats stopped
        MASTER_GONE_S ago, its users stopped at once: Locust's own check stops them
        gracefully, waiting up to stop_timeout (10 s) for a request in flight, and a worker
        cut off from its master may reach the API again meanwhile and send a start the
        others took over. Its connections to the API are reset, not closed: what it wrote
        before a cut is not delivered after it."""
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


def _is_worker(runner) -> bool:
    from locust.runners import WorkerRunner  # Locust patches gevent in: only in its processes

    return isinstance(runner, WorkerRunner)


def _is_master(runner) -> bool:
    from locust.runners import MasterRunner

    return isinstance(runner, MasterRunner)


def _quit_with(message: str) -> None:
    for line in message.splitlines():
        sys.stderr.write(f"Error: {line}\n")
    sys.exit(2)
