"""TrafficRun's decisions in-process: a fake Locust client and a fake clock, no sockets."""

from __future__ import annotations

import itertools
import textwrap
from collections import Counter
from pathlib import Path

import gevent
import orjson
import pytest

from edgebench.plan.payloads import DEPLOY
from edgebench.plan.scenario import load_scenario
from edgebench.records import REQUEST_FIELDS, read_records
from edgebench.traffic.budget import Budget, Ledger
from edgebench.traffic.guard import SendGuard
from edgebench.traffic.run import LEASE_WAIT_S, TrafficRun, WorkerSlice

EPOCH = 1_000.0


class FakeClock:
    """FakeClock is a unix clock that moves only when slept on (or told to)."""

    def __init__(self, now: float = EPOCH) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


class FakeResponse:
    """FakeResponse answers as a FastHttpUser's response under catch_response."""

    def __init__(self, status: int, body: bytes = b"", headers=None, error=None) -> None:
        self.status_code, self.content, self.error = status, body, error
        # No answer at all (Locust's ErrorResponse: refused, timed out, unreachable): no headers.
        self.headers = None if status == 0 else headers or {"content-length": str(len(body))}
        self.verdict: str | None = None

    def success(self) -> None:
        self.verdict = "success"

    def failure(self, text: str) -> None:
        self.verdict = text

    def __enter__(self) -> FakeResponse:
        return self

    def __exit__(self, *_exc) -> bool:
        return False


class FakeClient:
    """FakeClient answers each post with the next of `answers`, and keeps what was sent."""

    def __init__(self, *answers: FakeResponse) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str, bytes, str]] = []
        self.responses: list[FakeResponse] = []

    def post(self, path, data, headers, name, catch_response):
        assert catch_response
        self.sent.append((path, data, name))
        response = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        self.responses.append(response)
        return response


def accepted(request_id: str = "abc123") -> FakeResponse:
    return FakeResponse(202, orjson.dumps({"request_id": request_id}))


def scenario(
    tmp_path: Path, mode: str = "respect", rate: float = 10, seconds: int = 10, extra: str = ""
):
    path = tmp_path / "s.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            name = "unit"
            [target]
            application = "my-game"
            version = "1.0.0"
            [rate]
            mode = "{mode}"
            stages = [{{ kind = "hold", duration = "{seconds}s", rate = {rate} }}]
            [[regions]]
            name = "world"
            countries = ["US", "BR"]
            """
        )
        + textwrap.dedent(extra)
    )
    return load_scenario(path)


def traffic(
    tmp_path: Path, clock: FakeClock, mode="respect", rate=10, client: str = "", **options
) -> TrafficRun:
    return TrafficRun(
        scenario(tmp_path, mode, rate, extra=client),
        tmp_path / "run",
        WorkerSlice(0, 1, EPOCH),
        "edgebench-unit",
        "http://127.0.0.1:9",
        "token",
        clock=clock,
        sleep=clock.sleep,
        **options,
    )


def send_due(run: TrafficRun, client: FakeClient, clock: FakeClock, count: int) -> None:
    """send_due takes, waits for and sends `count` starts, as one free user would."""
    for _ in range(count):
        start = run.next_start(DEPLOY)
        clock.now = max(clock.now, start.due)
        if run.ready(start):
            run.send(client, start)


def records(run: TrafficRun) -> list[dict]:
    run.stop()
    return read_records(run.records.path)[0]


def test_a_sent_start_is_recorded_with_every_field_of_the_contract(tmp_path):
    clock = FakeClock()
    run = traffic(tmp_path, clock)
    client = FakeClient(accepted("r-1"))
    send_due(run, client, clock, 1)
    [record] = records(run)
    assert list(record) == [field.name for field in REQUEST_FIELDS]
    assert record["outcome"] == "accepted"
    assert record["status"] == 202
    assert record["request_id"] == "r-1"
    assert record["t_sched"] == pytest.approx(EPOCH + 0.05)  # arrival 0 of 10/s: at 0.5 / 10 s
    assert record["region"] == "world"
    assert record["players"] >= 1
    assert client.responses[0].verdict == "success"


@pytest.mark.parametrize(
    ("response", "outcome", "verdict"),
    [
        (FakeResponse(422, b'{"request_id": "x", "message": "no"}'), "allocation_failure", "(422)"),
        (FakeResponse(429, b"{}"), "rate_limited", "rate limited (429)"),
        (FakeResponse(503, b"{}"), "server_error", "server error (503)"),
        (FakeResponse(200, b"{}"), "unexpected_status", "unexpected status (200)"),
        (FakeResponse(0, b"", error=ConnectionRefusedError()), "transport_error", "Refused"),
        # The connection closed mid-response: fewer bytes than the declared length.
        (FakeResponse(202, b'{"requ', {"content-length": "30"}), "transport_error", "mid-resp"),
    ],
)
def test_each_answer_is_classified_and_failed_in_locusts_stats(
    tmp_path, response, outcome, verdict
):
    clock = FakeClock()
    run = traffic(tmp_path, clock, mode="exceed")
    send_due(run, FakeClient(response), clock, 1)
    [record] = records(run)
    assert record["outcome"] == outcome
    assert verdict in response.verdict
    if outcome == "transport_error":
        assert record["status"] == 0
        assert record["request_id"] is None
        assert record["latency_ms"] is not None  # the time until the failure is still measured


def test_a_422_records_why_it_could_not_allocate(tmp_path):
    clock = FakeClock()
    run = traffic(tmp_path, clock, mode="exceed")
    refused = FakeResponse(
        422, b'{"request_id": "x", "message": "Couldn\'t Allocate Server: out_of_range"}'
    )
    send_due(run, FakeClient(refused, accepted()), clock, 2)
    assert [(r["outcome"], r["cause"]) for r in records(run)] == [
        ("allocation_failure", "out_of_range"),
        ("accepted", None),
    ]


def test_the_deployment_budget_stops_sending_and_records_the_rest_as_over_budget(tmp_path):
    clock = FakeClock()
    run = traffic(tmp_path, clock, budget=Budget(3))
    client = FakeClient(FakeResponse(422, b'{"request_id": "f"}'), accepted())
    send_due(run, client, clock, 8)
    outcomes = [r["outcome"] for r in records(run)]
    # A 422 creates nothing: only 202s use the budget.
    assert outcomes == ["allocation_failure", *["accepted"] * 3, *["over_budget"] * 4]
    assert len(client.sent) == 4


def test_a_send_whose_answer_is_lost_or_a_5xx_keeps_its_deployment_spent(tmp_path):
    # The platform may have created it: the budget counts it, so the run never passes it.
    clock = FakeClock()
    run = traffic(tmp_path, clock, "exceed", budget=Budget(3))
    client = FakeClient(FakeResponse(0, b""), FakeResponse(503, b"{}"), accepted())
    send_due(run, client, clock, 5)
    assert [r["outcome"] for r in records(run)][3:] == ["over_budget"] * 2
    assert len(client.sent) == 3


def test_a_worker_borrows_its_budget_from_the_master_a_lease_ahead(tmp_path):
    clock, ledger, asked = FakeClock(), Ledger(5), []
    budget = Budget(0, lease=2, ask=asked.append)
    run = traffic(tmp_path, clock, "exceed", budget=budget)

    def master_answers(seconds: float) -> None:  # the master's grant comes while a send waits
        clock.sleep(seconds)
        while asked:
            budget.granted(*ledger.lend(asked.pop()))

    run._sleep = master_answers
    send_due(run, FakeClient(accepted()), clock, 8)
    outcomes = [r["outcome"] for r in records(run)]
    assert outcomes == ["accepted"] * 5 + ["over_budget"] * 3
    assert ledger.left == 0
    assert budget.exhausted


def test_a_lease_that_does_not_come_counts_the_send_over_budget_after_a_bounded_wait(tmp_path):
    clock = FakeClock()
    run = traffic(tmp_path, clock, "exceed", budget=Budget(0, lease=2, ask=lambda _n: None))
    send_due(run, FakeClient(accepted()), clock, 1)
    waited = clock.now - EPOCH - 0.05  # the first start is due at 0.05 s
    assert records(run)[0]["outcome"] == "over_budget"
    assert LEASE_WAIT_S <= waited <= LEASE_WAIT_S + 0.01


def test_a_workers_records_are_shipped_not_written_here(tmp_path):
    clock, shipped = FakeClock(), []
    run = traffic(tmp_path, clock, ship=lambda name, data: shipped.append((name, data)))
    send_due(run, FakeClient(accepted()), clock, 3)
    run.stop()
    assert not (tmp_path / "run").exists()
    assert {name for name, _ in shipped} == {"requests-run-w0.jsonl"}
    lines = b"".join(data for _, data in shipped).splitlines()
    assert [orjson.loads(line)["outcome"] for line in lines] == ["accepted"] * 3


def test_a_429_in_respect_mode_pauses_for_its_retry_after(tmp_path):
    clock = FakeClock()
    run = traffic(tmp_path, clock, rate=10)
    limited = FakeResponse(429, b"{}", {"retry-after": "2", "content-length": "2"})
    client = FakeClient(limited, accepted())
    send_due(run, client, clock, 25)
    got = records(run)
    outcomes = Counter(r["outcome"] for r in got)
    # Answered at 0.05 s: the 19 starts due from 0.15 s to 1.95 s are not sent.
    assert outcomes == {"rate_limited": 1, "backoff": 19, "accepted": 5}
    first_sent_again = min(r["t_sched"] for r in got if r["outcome"] == "accepted")
    assert first_sent_again == pytest.approx(EPOCH + 2.05)


def test_a_429_in_exceed_mode_does_not_pause(tmp_path):
    clock = FakeClock()
    run = traffic(tmp_path, clock, mode="exceed")
    limited = FakeResponse(429, b"{}", {"retry-after": "5", "content-length": "2"})
    send_due(run, FakeClient(limited), clock, 5)
    assert Counter(r["outcome"] for r in records(run)) == {"rate_limited": 5}


def test_starts_no_user_took_in_time_are_dropped_and_recorded(tmp_path):
    clock = FakeClock()
    run = traffic(tmp_path, clock, mode="exceed")
    clock.now = EPOCH + 1.0  # the user comes back late: starts at 0.05 ... 0.95 s are due
    start = run.next_start(DEPLOY)
    assert start.arrival.index == 9  # the latest due start is taken; the ones before are dropped
    run.send(FakeClient(accepted()), start)
    clock.now = EPOCH + 2.0  # nobody takes the starts of the next second: stop records them
    got = records(run)
    outcomes = Counter(r["outcome"] for r in got)
    assert outcomes == {"dropped": 9 + 10, "accepted": 1}
    assert sorted(r["index"] for r in got) == list(range(20))
    assert all(r["t_send"] is None for r in got if r["outcome"] == "dropped")


def test_respect_mode_holds_sends_to_the_limit_in_any_second(tmp_path):
    clock = FakeClock()
    run = traffic(tmp_path, clock, rate=60)  # above the limit: the schedule caps it at 40
    send_due(run, FakeClient(accepted()), clock, 120)
    sends = sorted(r["t_send"] for r in records(run))
    most = max(sum(1 for t in sends if start <= t < start + 1.0) for start in sends)
    assert most <= 40


def test_in_flight_counts_requests_and_deployments_awaiting_their_ready_event(tmp_path):
    clock = FakeClock()
    run = traffic(tmp_path, clock)
    run.events = run.live  # count readiness as a run with webhooks does (no receiver needed)
    seen = []

    class Watching(FakeClient):
        def post(self, *args, **kwargs):
            seen.append(run.in_flight())
            return super().post(*args, **kwargs)

    send_due(run, Watching(accepted("r-9")), clock, 1)
    assert seen == [1]  # the request itself, while it was out
    assert run.in_flight() == 1  # now its deployment, until it is ready
    run.live.event({"event": "ready", "request_id": "r-9", "t_received": clock.now + 2})
    assert run.in_flight() == 0
    run.stop()


SDK = """
[client]
preset = "edgegap-sdk"
"""


def limited(retry_after: str | None = "2") -> FakeResponse:
    headers = {"content-length": "2"} | ({"retry-after": retry_after} if retry_after else {})
    return FakeResponse(429, b"{}", headers)


def test_a_retried_match_waits_as_told_and_every_attempt_is_a_record(tmp_path):
    clock = FakeClock()
    run = traffic(tmp_path, clock, client=SDK)
    send_due(run, FakeClient(limited("2"), accepted("r-2")), clock, 1)
    first, second = [r for r in records(run) if r["match"] == 0]
    assert (first["match"], first["attempt"], first["final"]) == (0, 1, None)
    assert (second["match"], second["attempt"], second["final"]) == (0, 2, "served")
    # Retry-After 2 s, plus the SDK's jitter of up to 0.1 s.
    assert 2.0 <= second["t_send"] - first["t_send"] <= 2.1
    assert run.in_flight() == 0


def test_retries_stop_at_the_attempts_and_only_on_the_answers_named(tmp_path):
    clock = FakeClock()
    run = traffic(tmp_path, clock, mode="exceed", client=SDK)
    failing = FakeResponse(503, b"{}")
    send_due(run, FakeClient(failing), clock, 1)
    refused = FakeResponse(422, b'{"request_id": "x"}')
    send_due(run, FakeClient(refused), clock, 1)
    got = [r for r in records(run) if r["outcome"] != "dropped"]  # the clock ran on: drops
    assert [(r["match"], r["attempt"], r["final"]) for r in got[:3]] == [
        (0, 1, None),
        (0, 2, None),
        (0, 3, "failed"),  # three attempts in all
    ]
    assert (got[3]["status"], got[3]["attempt"], got[3]["final"]) == (422, 1, "failed")
    assert len(got) == 4  # the SDK does not retry a 422
    # Without Retry-After: about 1 s, plus up to 0.1 s.
    assert all(1.0 <= b["t_send"] - a["t_send"] <= 1.1 for a, b in itertools.pairwise(got[:3]))


def test_the_matchmaker_preset_retries_a_422_and_exponential_backoff_doubles(tmp_path):
    clock = FakeClock()
    client = """
    [client]
    preset = "edgegap-matchmaker"
    backoff = "exponential"
    backoff_base = "1s"
    jitter = 0
    """
    run = traffic(tmp_path, clock, mode="exceed", client=client)
    send_due(run, FakeClient(FakeResponse(422, b'{"request_id": "x"}')), clock, 1)
    sends = [r["t_send"] for r in records(run) if r["match"] == 0]
    assert [round(b - a, 6) for a, b in itertools.pairwise(sends)] == [1.0, 2.0, 4.0]


def test_with_a_queue_the_schedule_is_when_matches_form_and_every_match_ends_once(tmp_path):
    clock = FakeClock()
    run = traffic(tmp_path, clock, rate=60, client=SDK)  # above the limit
    assert run.schedule.holds_limit is False  # the client's queue holds the limit, not the schedule
    send_due(run, FakeClient(limited(None), accepted()), clock, 30)
    got = records(run)
    finals = Counter(r["final"] for r in got if r["final"])
    assert sum(finals.values()) == len({r["match"] for r in got})  # one fate for each match


def test_the_queue_is_first_in_first_out_and_players_give_up_at_their_deadline():
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += max(0.0, seconds)
        gevent.sleep(0)  # let the others queue behind

    guard = SendGuard(3, 1.0, clock=lambda: now[0], sleep=sleep)
    admitted = []

    def match(number: int, deadline: float | None) -> None:
        with guard.turn(deadline) as went:
            admitted.append((number, went, now[0]))

    gevent.joinall([gevent.spawn(match, n, 0.5 if n in (3, 4) else None) for n in range(7)])
    # Three go at once; the fourth and fifth would wait a second, give up at 0.5 s, in
    # turn; the sixth and seventh go when the window has room, in their order.
    assert admitted == [
        (0, True, 0.0),
        (1, True, 0.0),
        (2, True, 0.0),
        (3, False, 0.5),
        (4, False, 0.5),
        (5, True, 1.0),
        (6, True, 1.0),
    ]


SHIPPED = sorted(Path("scenarios").glob("*.toml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_match_ends_once_served_failed_or_abandoned_for_every_shipped_kind(tmp_path, path):
    from analysis import load_run, summarize

    clock = FakeClock()
    run = TrafficRun(
        load_scenario(path),
        tmp_path / "run",
        WorkerSlice(0, 1, EPOCH, "k1"),
        "edgebench-unit",
        "http://127.0.0.1:9",
        "token",
        budget=Budget(25),
        clock=clock,
        sleep=clock.sleep,
    )
    answers = [limited("1"), FakeResponse(503, b"{}"), accepted(), FakeResponse(422, b"{}")]
    client = FakeClient(*answers * 40)
    for _ in range(40):
        start = run.next_start(run.plan.endpoint(0))
        if start is None:
            break
        clock.now = max(clock.now, start.due)
        if run.ready(start):
            run.send(client, start)
    clock.now += 5.0  # the starts due since are recorded as not sent
    run.stop()
    got = read_records(next((tmp_path / "run").glob("requests-*.jsonl")))[0]
    by_match: dict[int, list[dict]] = {}
    for record in got:
        by_match.setdefault(record["match"], []).append(record)
    for attempts in by_match.values():  # one fate each, on the last attempt
        attempts.sort(key=lambda r: r["attempt"])
        assert [r["final"] is not None for r in attempts] == [False] * (len(attempts) - 1) + [True]
    summary = summarize(load_run(tmp_path / "run"))
    matches = summary["matches"]
    assert matches["served"] + matches["failed"] + matches["abandoned"] == matches["total"]
    assert matches["total"] == len(by_match) > 0
