"""One table of the client's cases through both shells: the live run (TrafficRun, in
virtual time with gevent) and the simulation must record the same attempts, at the
same times, with the same fates. The decisions are edgebench.plan.client's; this proves
that neither shell decides anything of its own."""

from __future__ import annotations

import heapq
import textwrap
from pathlib import Path
from types import SimpleNamespace

import gevent
import orjson
import pytest
from gevent.event import Event

from edgebench.plan.payloads import DEPLOY
from edgebench.plan.scenario import load_scenario
from edgebench.records import REQUEST_NAMES, read_records
from edgebench.simulate.engine import Simulation, Sink
from edgebench.traffic.run import TrafficRun, WorkerSlice
from emulator import Distribution, EmulatorConfig, load_world
from emulator._model import Answer

EPOCH = 1_000.0
# Four matches released at once (seed 11) against a quota of two a window.
TICK_OF_FOUR = (
    "limit = 2\narrivals = 'tick'\ntick = '3s'\n"
    "stages = [{ kind = 'hold', duration = '4s', rate = 2 }]"
)
CASES = {
    # name: (rate mode, [rate] lines, [client] lines, answers in send order: (status, Retry-After))
    "sdk retries a 429 as told and a 503 after its backoff": (
        "respect",
        "stages = [{ kind = 'hold', duration = '3s', rate = 1 }]",
        "preset = 'edgegap-sdk'",
        [(429, "2"), (202, None), (503, None), (202, None)],
    ),
    "sdk gives up after its third attempt": (
        "exceed",
        "stages = [{ kind = 'hold', duration = '2s', rate = 0.5 }]",
        "preset = 'edgegap-sdk'",
        [(429, None), (429, "1"), (429, None)],
    ),
    "the matchmaker retries 422s with jitter, four attempts": (
        "exceed",
        "stages = [{ kind = 'hold', duration = '5s', rate = 0.2 }]",
        "preset = 'edgegap-matchmaker'",
        [(422, None)],
    ),
    "exponential backoff with Retry-After ignored": (
        "exceed",
        "stages = [{ kind = 'hold', duration = '2s', rate = 0.5 }]",
        "retry_on = ['5xx']\nattempts = 4\nbackoff = 'exponential'\nbackoff_base = '0.5s'\n"
        "retry_after = false\njitter = '0.2s'",
        [(503, "9"), (503, "9"), (503, "9"), (202, None)],
    ),
    "no [client]: a 429 pauses every send for its Retry-After": (
        "respect",
        "stages = [{ kind = 'hold', duration = '5s', rate = 1 }]",
        "",
        [(429, "3"), (202, None)],
    ),
    "a full window holds a send until the answer a quota back is a window old": (
        "respect",
        TICK_OF_FOUR,
        "preset = 'edgegap-sdk'\nmax_queue_wait = '1.2s'",
        [(202, None)],
    ),
    "a match held past max_queue_wait is abandoned then": (
        "respect",
        TICK_OF_FOUR,
        "preset = 'edgegap-sdk'\nmax_queue_wait = '0.8s'",
        [(202, None)],
    ),
}


def scenario_file(tmp_path: Path, mode: str, rate: str, client: str) -> Path:
    path = tmp_path / "case.toml"
    client_table = f"[client]\n{client}\n" if client else ""
    path.write_text(
        textwrap.dedent(
            """
            name = "case"
            seed = 11
            [target]
            application = "my-game"
            version = "1.0.0"
            [[regions]]
            name = "world"
            countries = ["US", "BR"]
            """
        )
        + f"[rate]\nmode = '{mode}'\n{rate}\n"
        + client_table
    )
    return path


class VirtualTime:
    """VirtualTime is a clock for many greenlets: each sleeps until its time, and time moves
    to the earliest sleeper's once every greenlet waits."""

    def __init__(self, now: float) -> None:
        self.now = now
        self._sleepers: list[tuple[float, int, Event]] = []
        self._count = 0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        woken = Event()
        self._count += 1
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), self._count, woken))
        woken.wait()

    def run(self, greenlets: list[gevent.Greenlet]) -> None:
        for _ in range(100_000):  # bounded: a case has a few dozen wakes
            gevent.idle()
            if not self._sleepers:
                if all(g.dead for g in greenlets):
                    return
                gevent.sleep(0.001)  # a greenlet waits on something else than the clock
                continue
            when, _, woken = heapq.heappop(self._sleepers)
            self.now = max(self.now, when)
            woken.set()
        raise AssertionError("the case never ended")


class Answers:
    """Answers gives the scripted answers in send order, the last one again once they run out."""

    def __init__(self, script: list[tuple[int, str | None]]) -> None:
        self.script = list(script)

    def next(self) -> tuple[int, str | None]:
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]


class ScriptedResponse:
    def __init__(self, status: int, retry_after: str | None) -> None:
        body = orjson.dumps({"request_id": "r-1"}) if status in (202, 422) else b"{}"
        self.status_code, self.content, self.error = status, body, None
        self.headers = {"content-length": str(len(body))}
        if retry_after is not None:
            self.headers["retry-after"] = retry_after

    def success(self) -> None: ...
    def failure(self, text: str) -> None: ...

    def __enter__(self) -> ScriptedResponse:
        return self

    def __exit__(self, *_exc) -> bool:
        return False


class ScriptedClient:
    def __init__(self, answers: Answers) -> None:
        self.answers = answers

    def post(self, path, data, headers, name, catch_response):
        return ScriptedResponse(*self.answers.next())


def live(path: Path, script, tmp_path: Path) -> list[dict]:
    """live runs the case through TrafficRun: a user per start, in virtual time."""
    time = VirtualTime(EPOCH - 1.0)
    run = TrafficRun(
        load_scenario(path),
        tmp_path / "live",
        WorkerSlice(0, 1, EPOCH),
        "edgebench-case",
        "http://127.0.0.1:9",
        "token",
        clock=time,
        sleep=time.sleep,
    )
    client = ScriptedClient(Answers(script))

    def user() -> None:
        start = run.next_start(DEPLOY)
        time.sleep(start.due - time.now)
        if run.ready(start):
            run.send(client, start)

    users = [gevent.spawn(user) for _ in range(run.schedule.count())]
    time.run(users)
    run.stop()
    return read_records(run.records.path)[0]


class Memory(Sink):
    def __init__(self) -> None:
        self.requests: list[dict] = []

    def request(self, row: tuple) -> None:
        record = dict(zip(REQUEST_NAMES, row, strict=True))
        self.requests.append(record)


def simulated(path: Path, script) -> list[dict]:
    """simulated runs the case through the Simulation, the model's answers scripted."""
    scenario = load_scenario(path)
    config = EmulatorConfig(world=load_world(scenario.world_file), seed=scenario.seed)
    sink = Memory()
    simulation = Simulation(scenario, config, sink, EPOCH, latency_ms=Distribution.fixed(0.0))
    answers = Answers(script)
    deployment = SimpleNamespace(request_id="r-1", error_detail="no_capacity", location=None)

    def deploy(fault, token, group, read, now) -> Answer:
        status, retry_after = answers.next()
        told = None if retry_after is None else int(retry_after)
        return Answer(status, deployment if status in (202, 422) else None, retry_after=told)

    simulation.model.deploy = deploy
    simulation.run()
    return sink.requests


def decisions(records: list[dict]) -> list[tuple]:
    """decisions are what each attempt's record says the client did, in time order."""
    rows = [
        (
            r["match"],
            r["attempt"],
            r["outcome"],
            r["status"],
            r["final"],
            None if r["t_send"] is None else round(r["t_send"] - EPOCH, 6),
            r["queue_ms"],
        )
        for r in records
    ]
    return sorted(rows, key=lambda row: (row[0], row[1]))


@pytest.mark.parametrize("case", list(CASES))
def test_the_live_run_and_the_simulation_decide_alike(tmp_path, case):
    mode, rate, client, script = CASES[case]
    path = scenario_file(tmp_path, mode, rate, client)
    from_live = decisions(live(path, script, tmp_path))
    from_simulation = decisions(simulated(path, script))
    assert from_live == from_simulation
    assert from_live  # the case sent or recorded something


def test_the_table_covers_every_kind_of_decision(tmp_path):
    seen = set()
    for mode, rate, client, script in CASES.values():
        path = scenario_file(tmp_path, mode, rate, client)
        for row in decisions(simulated(path, script)):
            seen.add(row[2] if row[4] is None else f"{row[2]}->{row[4]}")
    assert {
        "rate_limited",  # retried
        "server_error",  # retried
        "allocation_failure",  # retried
        "accepted->served",
        "rate_limited->failed",
        "allocation_failure->failed",
        "backoff->failed",  # paused by a 429
        "abandoned->abandoned",  # past max_queue_wait in a full window
    } <= seen
