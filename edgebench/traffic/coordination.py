"""A distributed run's protocol over Locust's messages: the master's Coordinator, a worker's Member.

    master (Coordinator, one per run)          worker (Member, one per process)
    test_start: RunFacts in its options  --->  test_start: RunFacts.received; start(run)
    each shape tick: resplit_if_changed  -- SPLIT -->  on_split (kept until the run starts)
    on_records   <-- RECORDS (each second's lines) --  its TrafficRun's writers ship them
    on_ask       <-- ASK (a lease of the budget) --
                 -- LEASE -->  on_lease
    note_report  <-- Locust's report (in flight, busy) --  report
    test_stopping: finish_workers -- FINISH -->  on_finish: stop, then FINISHED

Each side owns its state and talks to Locust's runner only through send_message,
clients, worker_index and stop(), so both are tested with a fake runner
(tests/test_coordination.py); Locust's names for a worker's states come in as
WorkerStates, so this module imports no Locust (whose import patches the process).
The locustfile registers each message type once (register_master, register_worker)
and forwards it to the side of the run on now.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import gevent

from edgebench.realapi.token import LOCAL_TOKEN
from edgebench.traffic.budget import Budget, Ledger, lease_size
from edgebench.traffic.run import Ship, TrafficRun
from edgebench.traffic.state import RunFacts, Split

if TYPE_CHECKING:
    from edgebench.plan.scenario import Scenario
    from edgebench.plan.schedule import Schedule

SPLIT_MESSAGE = "edgebench_split"
RESPLIT_LEAD_S = 1.0  # a new split of the schedule starts this long after it is sent
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


class WorkerStates(NamedTuple):
    """WorkerStates are Locust's names of a worker's states (locust.runners' STATE_*)."""

    alive: tuple[str, ...]  # taking part: ready, spawning, running
    missing: str  # its heartbeats stopped


def logging_unwritable(exc: OSError) -> None:
    logging.error("edgebench: %s: %s", exc.filename, exc.strerror)


class Coordinator:
    """Coordinator is the master's side of one run: who shares the schedule, what each has
    in flight, the deployment budget lent out in leases, whose last records came."""

    def __init__(
        self,
        runner: Any,
        facts: RunFacts,
        max_deployments: int,
        states: WorkerStates,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = gevent.sleep,
        on_unwritable: Callable[[OSError], None] = logging_unwritable,
    ) -> None:
        self.runner, self.facts, self.states = runner, facts, states
        self._clock, self._sleep = clock, sleep
        self.on_unwritable = on_unwritable  # a worker's records could not be written here
        self.members: tuple[str, ...] | None = self.alive_workers()  # None: the run stops
        self.in_flight: dict[str, tuple[float, int]] = {}  # (unix time of report, count)
        self.busy_s: dict[str, float] = {}  # how long a match keeps each worker's user
        self.ledger = Ledger(max_deployments) if max_deployments else None
        self.finished: set[str] = set()

    def about_this_run(self, msg: Any) -> bool:
        """about_this_run is whether a worker's message is about this run (if not, it is
        logged: a late message must not go unnoticed)."""
        if msg.data.get("run_id") == self.facts.run_id:
            return True
        logging.error("edgebench: %s from %s after its run: dropped", msg.type, msg.node_id)
        return False

    def on_records(self, msg: Any) -> None:
        """on_records appends a worker's flushed lines to the file they name."""
        name = msg.data.get("name", "")
        if not self.about_this_run(msg):
            return
        if not RECORD_FILE.fullmatch(name):
            logging.error("edgebench: %r from %s is not a record file: dropped", name, msg.node_id)
            return
        path = Path(self.facts.results_dir) / name
        try:
            with path.open("ab") as log:
                log.write(msg.data["data"])
        except OSError as exc:  # a full disk: the run must stop (the locustfile's to decide)
            exc.filename = exc.filename or str(path)
            self.on_unwritable(exc)

    def on_ask(self, msg: Any) -> None:
        """on_ask lends a worker the next lease of the run's budget."""
        if not self.about_this_run(msg) or self.ledger is None:
            return
        count, exhausted = self.ledger.lend(int(msg.data["count"]))
        reply = {"run_id": msg.data["run_id"], "count": count, "exhausted": exhausted}
        self.runner.send_message(LEASE_MESSAGE, reply, msg.node_id)

    def on_finished(self, msg: Any) -> None:
        if self.about_this_run(msg):
            self.finished.add(msg.node_id)

    def note_report(self, client_id: str, data: dict) -> None:
        """note_report keeps what a worker's report says it has in flight and how busy it is."""
        if IN_FLIGHT_REPORT in data:
            self.in_flight[client_id] = (self._clock(), data[IN_FLIGHT_REPORT])
        if BUSY_REPORT in data:
            self.busy_s[client_id] = data[BUSY_REPORT]

    def busiest_s(self) -> float:
        """busiest_s is the longest a match keeps a user, over the workers' reports."""
        return max(self.busy_s.values(), default=0.0)

    def drained(self, since: float) -> bool:
        """drained is whether no worker had anything in flight, as reported after since."""
        reports = [self.in_flight.get(member, (0.0, 1)) for member in self.members or ()]
        return all(at > since and count == 0 for at, count in reports)

    def resplit_if_changed(self) -> None:
        """resplit_if_changed shares the schedule out afresh when workers joined or left."""
        if self.members is None:  # the run stops: no new split
            return
        members = self.alive_workers()
        if not members or members == self.members:
            return
        self.members = members
        from_s = max(0.0, self._clock() - self.facts.epoch) + RESPLIT_LEAD_S
        for position, client_id in enumerate(members):
            split = Split(position, len(members), from_s)
            self.runner.send_message(SPLIT_MESSAGE, split._asdict(), client_id)
        logging.warning(
            "edgebench: %d workers now; the schedule is shared out afresh from %.1f s",
            len(members),
            from_s,
        )

    def finish_workers(self) -> None:
        """finish_workers has every worker send its last records before the master stops."""
        self.members = None
        told = self.alive_workers()
        for client_id in told:
            self.runner.send_message(FINISH_MESSAGE, {"run_id": self.facts.run_id}, client_id)
        deadline = self._clock() + FINISH_WAIT_S
        while (waiting := self._unfinished(told)) and self._clock() < deadline:
            self._sleep(0.05)
        if waiting:
            logging.error("edgebench: no last records from %d workers", len(waiting))

    def _unfinished(self, told: tuple[str, ...]) -> set[str]:
        """_unfinished are the workers told to finish that neither did nor left."""
        missing = self.states.missing
        present = {c.id for c in self.runner.clients.values() if c.state != missing}
        return (set(told) & present) - self.finished

    def alive_workers(self) -> tuple[str, ...]:
        """alive_workers are the workers taking part, in their worker index's order."""
        clients = self.runner.clients.values()
        alive = [client.id for client in clients if client.state in self.states.alive]
        return tuple(sorted(alive, key=self.runner.get_worker_index))


class Member:
    """Member is a worker's side: its part of the run on now, and what the master tells it.

    A split may come before the run starts (a worker that joins late): it is kept and
    applied when the run starts.
    """

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.run: TrafficRun | None = None
        self._pending: Split | None = None

    def start(self, run: TrafficRun) -> None:
        self.run = run
        if self._pending is not None:
            run.resplit(*self._pending)
            self._pending = None
        run.start()

    def stop(self) -> None:
        run, self.run = self.run, None
        if run is not None:
            run.stop()

    def budget(self, facts: RunFacts, total: int) -> Budget:
        """budget is this worker's part of the run's budget: leases asked of the master."""

        def ask(count: int) -> None:
            self.runner.send_message(ASK_MESSAGE, {"run_id": facts.run_id, "count": count})

        return Budget(0, lease_size(total, facts.workers), ask)

    def shipper(self, run_id: str) -> Ship:
        """shipper sends a flush of records to the master."""

        def ship(name: str, data: bytes) -> None:
            message = {"run_id": run_id, "name": name, "data": data}
            self.runner.send_message(RECORDS_MESSAGE, message)

        return ship

    def on_split(self, msg: Any) -> None:
        split = Split(**msg.data)
        if self.run is None:
            self._pending = split
        else:
            self.run.resplit(*split)

    def on_lease(self, msg: Any) -> None:
        run = self.run
        if run is not None and run.budget is not None and msg.data["run_id"] == run.part.run_id:
            run.budget.granted(msg.data["count"], msg.data["exhausted"])

    def on_finish(self, msg: Any) -> None:
        """on_finish stops this worker's traffic as Locust would (users first, then the run's
        last records) and tells the master its records are all sent."""
        self.runner.stop()
        self.runner.send_message(FINISHED_MESSAGE, {"run_id": msg.data["run_id"]})

    def report(self, data: dict) -> None:
        """report adds what this worker has in flight to its report to the master."""
        if self.run is not None:
            data[IN_FLIGHT_REPORT] = self.run.in_flight()
            data[BUSY_REPORT] = self.run.busy_s


def register_master(runner: Any, current: Callable[[], Coordinator | None]) -> None:
    """register_master forwards the workers' messages to the run's coordinator (current())."""
    handlers = {
        RECORDS_MESSAGE: Coordinator.on_records,
        ASK_MESSAGE: Coordinator.on_ask,
        FINISHED_MESSAGE: Coordinator.on_finished,
    }
    for kind, handler in handlers.items():
        runner.register_message(kind, _forward(handler, current))


def register_worker(runner: Any, member: Member) -> None:
    """register_worker hands the master's messages to this worker's member."""
    # Locust calls a message's listener as listener(environment=..., msg=...).
    runner.register_message(SPLIT_MESSAGE, lambda msg, **_kw: member.on_split(msg))
    runner.register_message(LEASE_MESSAGE, lambda msg, **_kw: member.on_lease(msg))
    runner.register_message(
        FINISH_MESSAGE, lambda msg, **_kw: member.on_finish(msg), concurrent=True
    )


def _forward(handler: Callable[[Coordinator, Any], None], current) -> Callable:
    def forward(msg: Any, **_kwargs: Any) -> None:
        coordinator = current()
        if coordinator is None:
            logging.error("edgebench: %s from %s after its run: dropped", msg.type, msg.node_id)
            return
        handler(coordinator, msg)

    return forward


@dataclass
class RunState:
    """RunState is this process's view of the run, written by the locustfile's events only.

    scenario and schedule are set at start-up and again at each start (the web UI's
    form may change them); facts and run (this process's traffic) while a run is on;
    the master's coordinator while a run is on, a worker's member for its whole life
    (edgebench.traffic.coordination: each owns its side's state).
    """

    facts: RunFacts | None = None  # while a run is on
    scenario: Scenario | None = None
    schedule: Schedule | None = None
    token: str = LOCAL_TOKEN
    run: TrafficRun | None = None
    coordinator: Coordinator | None = None
    member: Member | None = None
    # The schedule ran to its end (every start due): the analysis then counts the starts
    # past the last record that have none (lost at the very end of the run).
    completed: bool = False
