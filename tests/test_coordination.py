"""The master's Coordinator and a worker's Member, with a fake Locust runner and a fake clock."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from edgebench.traffic.coordination import (
    ASK_MESSAGE,
    BUSY_REPORT,
    FINISH_MESSAGE,
    FINISHED_MESSAGE,
    IN_FLIGHT_REPORT,
    LEASE_MESSAGE,
    RECORDS_MESSAGE,
    SPLIT_MESSAGE,
    Coordinator,
    Member,
    WorkerStates,
)
from edgebench.traffic.state import RunFacts, Split

STATE_RUNNING, STATE_MISSING = "running", "missing"  # as Locust names them
STATES = WorkerStates(("ready", "spawning", STATE_RUNNING), STATE_MISSING)


@dataclass
class FakeRunner:
    """FakeRunner is what the protocol uses of Locust's runners: workers, messages, stop."""

    workers: dict[str, str] = field(default_factory=dict)  # id -> state
    sent: list[tuple[str, dict, str | None]] = field(default_factory=list)
    stopped: int = 0
    worker_index: int = 0

    @property
    def clients(self) -> dict:
        return {i: SimpleNamespace(id=i, state=s) for i, s in self.workers.items()}

    def get_worker_index(self, client_id: str) -> int:
        return sorted(self.workers).index(client_id)

    def send_message(self, kind: str, data: dict, client_id: str | None = None) -> None:
        self.sent.append((kind, data, client_id))

    def stop(self) -> None:
        self.stopped += 1


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def facts(tmp_path: Path, workers: int = 2) -> RunFacts:
    return RunFacts("ab12cd34", str(tmp_path), 990.0, workers, 30.0, "digest")


def message(kind: str, node: str = "w-a", **data) -> SimpleNamespace:
    return SimpleNamespace(type=kind, node_id=node, data={"run_id": "ab12cd34"} | data)


def coordinator(tmp_path, runner, budget: int = 0, clock=None) -> Coordinator:
    clock = clock or Clock()
    return Coordinator(runner, facts(tmp_path), budget, STATES, clock=clock, sleep=clock.sleep)


def test_a_worker_that_leaves_has_the_schedule_shared_out_afresh(tmp_path):
    runner = FakeRunner({"w-a": STATE_RUNNING, "w-b": STATE_RUNNING, "w-c": STATE_RUNNING})
    master = coordinator(tmp_path, runner)
    master.resplit_if_changed()
    assert runner.sent == []  # the same members: nothing to say
    runner.workers["w-b"] = STATE_MISSING
    master.resplit_if_changed()
    # Ten seconds into the run: the new split starts a second from now, in index order.
    assert runner.sent == [
        (SPLIT_MESSAGE, Split(0, 2, 11.0)._asdict(), "w-a"),
        (SPLIT_MESSAGE, Split(1, 2, 11.0)._asdict(), "w-c"),
    ]
    assert master.members == ("w-a", "w-c")


def test_leases_come_from_the_runs_budget_and_messages_of_another_run_are_dropped(tmp_path, caplog):
    runner = FakeRunner({"w-a": STATE_RUNNING})
    master = coordinator(tmp_path, runner, budget=10)
    master.on_ask(message(ASK_MESSAGE, count=8))
    master.on_ask(message(ASK_MESSAGE, count=8))
    late = SimpleNamespace(type=ASK_MESSAGE, node_id="w-a", data={"run_id": "old", "count": 8})
    with caplog.at_level(logging.ERROR):
        master.on_ask(late)
    leases = [(data["count"], data["exhausted"]) for kind, data, _ in runner.sent]
    assert leases == [(8, False), (2, True)]  # never more than the budget, in all
    assert all(kind == LEASE_MESSAGE and to == "w-a" for kind, _, to in runner.sent)
    assert "after its run: dropped" in caplog.text


def test_records_are_appended_under_their_own_name_and_nothing_else_is_written(tmp_path, caplog):
    master = coordinator(tmp_path, FakeRunner())
    name = "requests-ab12cd34-w1.jsonl"
    for line in (b'{"index": 0}\n', b'{"index": 1}\n'):
        master.on_records(message(RECORDS_MESSAGE, name=name, data=line))
    with caplog.at_level(logging.ERROR):
        master.on_records(message(RECORDS_MESSAGE, name="../../etc/passwd", data=b"x"))
    assert (tmp_path / name).read_bytes() == b'{"index": 0}\n{"index": 1}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert "is not a record file" in caplog.text


def test_finishing_waits_for_every_worker_that_is_still_there(tmp_path):
    clock = Clock()
    runner = FakeRunner({"w-a": STATE_RUNNING, "w-b": STATE_RUNNING})
    master = coordinator(tmp_path, runner, clock=clock)

    def sleep(seconds: float) -> None:  # w-a answers at once, w-b goes missing after a while
        clock.sleep(seconds)
        master.on_finished(message(FINISHED_MESSAGE, node="w-a"))
        if clock.now > 1_001.0:
            runner.workers["w-b"] = STATE_MISSING

    master._sleep = sleep
    master.finish_workers()
    assert [(kind, to) for kind, _, to in runner.sent] == [
        (FINISH_MESSAGE, "w-a"),
        (FINISH_MESSAGE, "w-b"),
    ]
    assert 1_001.0 < clock.now < 1_001.2  # not the whole 30 s for the one that left
    assert master.members is None  # no new split while the run stops


def test_drained_only_on_reports_newer_than_asked_and_the_busiest_worker_counts(tmp_path):
    clock = Clock()
    runner = FakeRunner({"w-a": STATE_RUNNING, "w-b": STATE_RUNNING})
    master = coordinator(tmp_path, runner, clock=clock)
    master.note_report("w-a", {IN_FLIGHT_REPORT: 0, BUSY_REPORT: 0.4})
    master.note_report("w-b", {IN_FLIGHT_REPORT: 3, BUSY_REPORT: 1.5})
    assert not master.drained(since=999.0)
    clock.now += 1
    master.note_report("w-b", {IN_FLIGHT_REPORT: 0})
    assert not master.drained(since=1_000.5)  # w-a's zero is older than asked
    assert master.drained(since=999.0)
    assert master.busiest_s() == 1.5


class FakeRun:
    """FakeRun is what a Member uses of its TrafficRun."""

    def __init__(self) -> None:
        self.splits: list[tuple] = []
        self.started = self.stopped = False
        self.part = SimpleNamespace(run_id="ab12cd34")
        self.budget = SimpleNamespace(grants=[])
        self.budget.granted = lambda count, exhausted: self.budget.grants.append(count)
        self.busy_s = 0.7

    def resplit(self, *split) -> None:
        self.splits.append(split)

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def in_flight(self) -> int:
        return 4


def test_a_split_before_the_run_starts_is_applied_when_it_starts():
    member = Member(FakeRunner())
    member.on_split(SimpleNamespace(data=Split(1, 3, 5.0)._asdict()))
    run = FakeRun()
    member.start(run)
    assert run.splits == [(1, 3, 5.0)]
    assert run.started
    member.on_split(SimpleNamespace(data=Split(0, 2, 9.0)._asdict()))
    assert run.splits[-1] == (0, 2, 9.0)


def test_a_member_takes_its_leases_reports_and_finishes_as_told():
    runner = FakeRunner()
    member = Member(runner)
    run = FakeRun()
    member.start(run)
    member.on_lease(message(LEASE_MESSAGE, count=5, exhausted=False))
    member.on_lease(SimpleNamespace(data={"run_id": "old", "count": 9, "exhausted": True}))
    assert run.budget.grants == [5]  # another run's lease is not this run's
    report: dict = {}
    member.report(report)
    assert report == {IN_FLIGHT_REPORT: 4, BUSY_REPORT: 0.7}
    member.on_finish(message(FINISH_MESSAGE))
    assert runner.stopped == 1
    assert runner.sent == [(FINISHED_MESSAGE, {"run_id": "ab12cd34"}, None)]
    member.stop()
    assert run.stopped
    assert member.run is None


def test_a_members_budget_asks_the_master_for_leases(tmp_path):
    runner = FakeRunner()
    budget = Member(runner).budget(facts(tmp_path), total=100)
    assert budget.take() is None  # nothing lent yet: it asks
    assert runner.sent
    assert runner.sent[0][0] == ASK_MESSAGE
