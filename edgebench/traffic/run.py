"""One process's share of a run: users take the scheduled starts, send them and record them.

How a start travels, from the schedule to its record:

    schedule (edgebench.plan.schedule: arrival k is due at t_k, this worker's slice only)
      -> start queue (edgebench.plan.starts: dealt per endpoint to the next free user;
                      a start no user took by the time a later one is due is DROPPED)
      -> the user's wait (Locust sleeps the user until 2 ms before the start is due:
                          TrafficRun.next_start; then alarm.sleep_until, on time)
      -> ready (TrafficRun.ready: not re-split away, within the deployment budget,
                not inside a 429's Retry-After pause, else recorded unsent)
      -> guard (respect mode: guard.SendGuard holds the send until the API has answered the
                one `quota` sends before it for a window)
      -> send (TrafficRun.send: the request from edgebench.plan.payloads, timed from the
               send and from the schedule)
      -> record (a requests-<run>-<worker>.jsonl line, edgebench.records; live counts for the UI)

Runs inside Locust's gevent world; the locustfile is the shell. The clock and the
sleep are parameters, so every decision here can be tested with a fake client and
a fake clock (tests/test_traffic_run.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import gevent
import httpx
import orjson

from edgebench.collector import collect_rarely
from edgebench.plan.client import ClientRules
from edgebench.plan.payloads import PayloadPlan
from edgebench.plan.schedule import WINDOW_S, Schedule, share_of
from edgebench.plan.starts import Start, Starts
from edgebench.realapi.token import authorization
from edgebench.records import (
    ABANDONED,
    BACKOFF,
    DROPPED,
    FAILED,
    FLUSH_EVERY_S,
    OVER_BUDGET,
    SERVED,
    RecordWriter,
    log_name,
    outcome_of,
    request_record,
    scheduled_fields,
)
from edgebench.traffic import alarm
from edgebench.traffic.budget import Budget
from edgebench.traffic.guard import SendGuard
from edgebench.traffic.live import CountedEvents, LiveCounts
from edgebench.traffic.polling import StatusPoller
from edgebench.traffic.webhooks import WebhookReceiver

JSON = {"Content-Type": "application/json"}  # FastHttpSession copies it per request
MAX_CAUSE_CHARS = 120
BUSY_WEIGHT = 0.1  # of each match in the moving mean of the time a user is busy
# A worker out of budget waits this long at most for the master's next lease (it asks for
# it half a lease ahead, so a send waits only when the master is slow to answer).
LEASE_WAIT_S, LEASE_POLL_S = 2.0, 0.005
Ship = Callable[[str, bytes], None]  # (file name, bytes to append): a worker's records out


@dataclass(frozen=True)
class WorkerSlice:
    """WorkerSlice is this process's part of the run: worker i of n, the run's time zero and id."""

    worker_index: int
    worker_count: int
    epoch: float  # unix time of schedule time 0, the same in every process
    run_id: str = "run"  # in every record file's name (edgebench.records.log_name)

    @property
    def name(self) -> str:
        return f"w{self.worker_index}"


class TrafficRun:
    """TrafficRun keeps this process's slice of the schedule and records every start."""

    def __init__(
        self,
        scenario,
        results_dir: Path,
        part: WorkerSlice,
        run_tag: str,
        host: str,
        token: str,
        budget: Budget | None = None,
        ship: Ship | None = None,
        clock=time.time,
        sleep=alarm.sleep,  # the limiter's holds and the retries' waits end on time
        on_unwritable: Callable[[OSError], None] | None = None,
    ) -> None:
        self.scenario, self.part, self.results_dir = scenario, part, results_dir
        self._clock, self._sleep = clock, sleep
        # The records cannot be written (a full disk): the run must stop. Told once.
        self._on_unwritable = on_unwritable
        self.budget = budget  # None: no --max-deployments
        self._ship = ship  # a worker's: its records go to the master, not to a file here
        self.respect = scenario.rate.mode == "respect"
        # No [client]: each match one request, and a 429 pauses the process (respect mode).
        self.rules = ClientRules.of(scenario)
        self._busy_mean = 0.0  # how long a match keeps a user, from due to done (moving mean)
        self._serving: dict[int, float] = {}  # matches being served: index -> when due
        # The guard counts each window from the API's answers (the API handled each request
        # before answering it), so a window from the answer that far back is enough to never
        # pass the limit: no margin. With the schedule's margin on top, it let each process
        # send a little less than the schedule asks at the limit (20 per 1.015 s + latency
        # against 20 per 1.015 s), and a 30-minute soak at 40/s was sending 8 s late.
        self.window_s = WINDOW_S
        self.schedule = Schedule.from_scenario(scenario)
        self.records = RecordWriter(
            results_dir / log_name("requests", part.run_id, part.name), ship
        )
        self.live = LiveCounts()
        self.sending = 0  # requests sent (or held by the guard) and not answered yet
        self.created: set[str] = set()  # request_ids of this process's 202s, for the receiver
        self._events_on(run_tag, host, token)
        arrivals = self.schedule.arrivals(part.worker_index, part.worker_count)
        self.starts = Starts(arrivals, part.epoch, self.plan.endpoint)
        self.pause_until = 0.0
        quota = self.schedule.quota(part.worker_index, part.worker_count)
        self.guard = (
            SendGuard(quota, self.window_s, clock, sleep) if self.respect and quota else None
        )
        self._greenlets: list[gevent.Greenlet] = []

    def _events_on(self, run_tag: str, host: str, token: str) -> None:
        """_events_on sets up what tells when deployments became ready: webhooks, polling."""
        requests = self.scenario.requests
        public = requests.webhook_public_url
        receives = requests.webhooks and (public is None or self.part.worker_index == 0)
        self.events_file = self.events = None
        if receives or requests.poll_status:
            events = log_name("events", self.part.run_id, self.part.name)
            self.events_file = RecordWriter(self.results_dir / events, self._ship)
            self.events = CountedEvents(self.events_file, self.live)
        self.receiver = self._receiver(run_tag) if receives else None
        self.poller = self._poller(host, token) if requests.poll_status else None
        base = public or (self.receiver.url if self.receiver else None)
        self.plan = PayloadPlan(self.scenario, webhook_base=base, run_tag=run_tag)

    def _receiver(self, run_tag: str) -> WebhookReceiver:
        name = self.part.name
        if self.scenario.requests.webhook_public_url is None:
            return WebhookReceiver(self.events, name, run_tag, known=self.created.__contains__)
        # One public address, forwarded (by a tunnel) to one port: worker 0 takes every
        # worker's callbacks (so it cannot tell an unknown request_id); the analysis joins
        # them to requests by request_id, whoever sent them.
        port = self.scenario.requests.webhook_port
        return WebhookReceiver(self.events, name, run_tag, port=port)

    def _poller(self, host: str, token: str) -> StatusPoller:
        assert self.events is not None  # polling writes events: _events_on opened them
        requests = self.scenario.requests
        quota = share_of(requests.status_limit, self.part.worker_index, self.part.worker_count)
        client = httpx.Client(base_url=host, headers=authorization(token), timeout=5.0)
        guard = SendGuard(max(1, quota), self.window_s)
        return StatusPoller(client, self.events, self.part.name, requests.poll_interval, guard)

    # Lifecycle --------------------------------------------------------------

    def start(self) -> None:
        collect_rarely()
        for part in (self.receiver, self.poller):
            if part:
                part.start()
        self._greenlets = [gevent.spawn(self._flush_forever)]

    def in_flight(self) -> int:
        """in_flight counts requests not yet answered and deployments whose fate is not yet known.

        The run may end once it is 0 after the last arrival: nothing more will be recorded.
        """
        return self.sending + self.live.awaiting()

    def stop(self) -> None:
        """stop records every start that came due unsent and writes every record; safe twice."""
        gevent.killall(self._greenlets, block=True, timeout=5)
        for start in self.starts.overdue(self._clock()):  # no user was free before the end
            self._record_unsent(start, DROPPED)
        for part in (self.receiver, self.poller):
            if part:
                part.stop()
        if self.receiver:
            name = log_name("webhooks", self.part.run_id, self.part.name, "json")
            counts = orjson.dumps(self.receiver.counts())
            if self._ship:
                self._ship(name, counts)
            else:
                self._written(lambda: (self.results_dir / name).write_bytes(counts))
        for writer in (self.records, self.events_file):
            if writer:
                self._written(writer.close)

    # Taking starts --------------------------------------------------------------

    def next_start(self, endpoint: str) -> Start | None:
        """next_start is endpoint's next start for a free user (None: the schedule is over).

        The user sleeps until it is due (in Locust's wait, where a stopping run kills it
        and on_stop gives the start back), then asks ready().
        """
        start, dropped = self.starts.take(endpoint, self._clock())
        for missed in dropped:
            self._record_unsent(missed, DROPPED)
        return start

    def ready(self, start: Start) -> bool:
        """ready is whether a start that came due is to be sent; if not, it is recorded unsent."""
        if not self.starts.mine(start):
            return False  # re-split while its user slept: another worker sends and records it
        if self._clock() < self.pause_until:
            self._record_unsent(start, BACKOFF)
        elif not self._take_budget():
            self._record_unsent(start, OVER_BUDGET)
        else:
            return True
        return False

    def _take_budget(self) -> bool:
        """_take_budget spends one deployment of the budget on a send; False: none is left.

        A worker whose lease ran out waits for the master's next one, a little at most.
        """
        if self.budget is None:
            return True
        waited = 0.0
        while (taken := self.budget.take()) is None and waited < LEASE_WAIT_S:
            self._sleep(LEASE_POLL_S)
            waited += LEASE_POLL_S
        return bool(taken)

    def give_back(self, start: Start) -> None:
        """give_back returns a start taken by a user that was stopped before sending it."""
        self.starts.give_back(start)

    def resplit(self, position: int, count: int, from_s: float) -> None:
        """resplit makes this process position of count in the schedule from from_s on.

        The master sends it when workers join or leave, so the slices still add up
        to the whole schedule; the guard keeps its recent sends.
        """
        arrivals = self.schedule.arrivals(position, count)
        self.starts.switch(self.part.epoch + from_s, (a for a in arrivals if a.due_s >= from_s))
        quota = self.schedule.quota(position, count)
        if self.guard and quota:
            self.guard = self.guard.resized(quota)

    # Sending ------------------------------------------------------------------

    def send(self, client, start: Start) -> None:
        """send serves one match: its attempts, each through the limiter, as the client would.

        Each attempt is one record; the last carries the match's fate (`final`).
        """
        request = self.plan.request(start.arrival.index, start.arrival.due_s)
        deadline = self.rules.deadline(start.due)
        self.sending += 1
        self._serving[start.arrival.index] = start.due
        try:
            attempt = 1
            while not self._attempt(client, start, request, attempt, deadline):
                attempt += 1
        finally:
            self.sending -= 1
            del self._serving[start.arrival.index]
            self._busy_mean += BUSY_WEIGHT * (self._clock() - start.due - self._busy_mean)

    @property
    def busy_s(self) -> float:
        """busy_s is how long a match keeps a user: the recent mean, or longer while the
        matches being served now (in the queue, between retries) have been at it longer."""
        longest = self._clock() - min(self._serving.values()) if self._serving else 0.0
        return max(self._busy_mean, longest)

    def _attempt(self, client, start: Start, request, attempt: int, deadline) -> bool:
        """_attempt sends a match's request once and records it; True when the match is done."""
        if attempt > 1 and not self._take_budget():
            self._record_unsent(start, OVER_BUDGET, attempt, final=FAILED)
            return True
        entered = self._clock()
        with self._turn(deadline) if self.guard else nullcontext(True) as admitted:
            if not admitted:
                if self.budget:
                    self.budget.give_back()
                queued = round((self._clock() - entered) * 1000, 3)
                self._record_unsent(start, ABANDONED, attempt, queued, ABANDONED)
                return True
            sent = self._clock()
            started = time.perf_counter()
            with client.post(
                request.path,
                data=request.json,
                headers=JSON,
                name=request.endpoint,
                catch_response=True,
            ) as response:
                latency_s = time.perf_counter() - started
                status, request_id, cause = _answer(response)
                outcome = outcome_of(status)
                _judge(response, status, outcome)
        # A 202 asks for nothing more: its headers are not read on the send path. No answer
        # at all (refused, timed out, unreachable) has no headers.
        retry_after = response.headers.get("retry-after") if status and status != 202 else None
        decision = self.rules.decide(
            start.arrival.index, attempt, status, retry_after, self._clock()
        )
        self._after_answer(request.endpoint, status, outcome, request_id, sent, decision)
        if decision.final == SERVED:
            self.live.served(sent + latency_s - start.due)
        self.records.add(
            request_record(
                **scheduled_fields(start.arrival, start.due, self.part.name),
                endpoint=request.endpoint,
                outcome=outcome,
                region=request.region,
                players=request.players,
                t_send=round(sent, 6),
                status=status,
                latency_ms=round(latency_s * 1000, 3),
                latency_sched_ms=round((sent + latency_s - start.due) * 1000, 3),
                request_id=request_id,
                cause=cause,
                attempt=attempt,
                queue_ms=round((sent - entered) * 1000, 3) if self.guard else None,
                final=decision.final,
            )
        )
        if decision.retry_at is None:
            return True
        self._sleep(max(0.0, decision.retry_at - self._clock()))
        return False

    @contextmanager
    def _turn(self, deadline: float | None) -> Iterator[bool]:
        """_turn is the limiter's turn, counted as queued while it waits, also when the wait
        ends without a turn (abandoned, or the user killed)."""
        assert self.guard is not None  # _attempt takes a turn only with a guard
        self.live.queued += 1
        waiting = True
        try:
            with self.guard.turn(deadline) as admitted:
                self.live.queued -= 1
                waiting = False
                yield admitted
        finally:
            if waiting:
                self.live.queued -= 1

    def _after_answer(self, endpoint, status, outcome, request_id, sent, decision) -> None:
        """_after_answer applies what an answer decides: the pause, budget, readiness tracking."""
        if decision.pause_until is not None:
            self.pause_until = max(self.pause_until, decision.pause_until)
        self.live.count(endpoint, outcome)
        if self.budget and 400 <= status < 500:
            self.budget.give_back()  # a 4xx created nothing; a 5xx or no answer may have
        if status != 202:
            return
        if request_id and self.events:
            self.created.add(request_id)
            self.live.accepted(endpoint, request_id, sent)
            if self.poller:
                self.poller.track(request_id, sent)

    def _record_unsent(
        self,
        start: Start,
        outcome: str,
        attempt: int = 1,
        queue_ms: float | None = None,
        final: str = FAILED,
    ) -> None:
        self.live.count(start.endpoint, outcome)
        self.records.add(
            request_record(
                **scheduled_fields(start.arrival, start.due, self.part.name),
                endpoint=start.endpoint,
                outcome=outcome,
                attempt=attempt,
                queue_ms=queue_ms,
                final=final,
            )
        )

    def _flush_forever(self) -> None:
        while True:
            self._sleep(FLUSH_EVERY_S)
            for writer in (self.records, self.events_file):
                if writer and not self._written(writer.flush):
                    return

    def _written(self, write: Callable[[], object]) -> bool:
        """_written is whether write() wrote; an OSError goes to on_unwritable (else up)."""
        try:
            write()
        except OSError as exc:
            if self._on_unwritable is None:
                raise
            self._on_unwritable(exc)
            return False
        return True


def _judge(response, status: int, outcome: str) -> None:
    """_judge marks the answer in Locust's own stats: 202 a success, the rest by category."""
    if status == 202:
        response.success()
    elif status == 0:
        error = getattr(response, "error", None)  # set only when the client raised
        cause = type(error).__name__ if error else "connection closed mid-response"
        response.failure(f"transport error: {cause}")
    else:
        response.failure(f"{outcome.replace('_', ' ')} ({status})")


def _answer(response) -> tuple[int, str | None, str | None]:
    """_answer is a response's status (0: no answer, in effect), request_id and 422 cause."""
    status = response.status_code or 0
    request_id = message = None
    if status in (202, 422):
        request_id, message = _body_fields(response)
    if status and request_id is None and _cut_short(response):
        return 0, None, None  # the connection closed mid-response
    return status, request_id, _cause(message) if status == 422 else None


def _cause(message: str | None) -> str | None:
    """_cause is why a 422 could not allocate, from its message.

    >>> _cause("Couldn't Allocate Server: no_capacity"), _cause("No server found"), _cause(None)
    ('no_capacity', 'No server found', None)
    """
    if not message:
        return None
    reason = message.rpartition("Couldn't Allocate Server:")[2].strip() or message
    return reason[:MAX_CAUSE_CHARS]


def _cut_short(response) -> bool:
    """_cut_short is whether a response's body ended before its Content-Length."""
    declared = response.headers.get("content-length")
    try:
        return declared is not None and len(response.content or b"") < int(declared)
    except ValueError:
        return False
    except Exception:  # the client raises its own kinds for a cut-off body
        return True


def _body_fields(response) -> tuple[str | None, str | None]:
    """_body_fields is a JSON answer's request_id and message (None where absent or not text)."""
    try:
        body = orjson.loads(response.content or b"")
        request_id, message = body.get("request_id"), body.get("message")
    except Exception:  # not JSON, not an object, or cut off (the client raises its own kinds)
        return None, None
    return _text(request_id), _text(message)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
