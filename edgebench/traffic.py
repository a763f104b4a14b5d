"""One process's share of a run: a dispatcher that keeps the schedule, users that send.

The dispatcher hands each arrival, when it is due, to an idle Locust user of
its endpoint; with none idle the start is recorded as dropped (never silently
skipped). Users send, classify the answer and record it, with the latency from
the actual send and from the scheduled start (so a stalled generator cannot
hide latency). Runs inside Locust's gevent world; the locustfile is the shell.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path

import gevent
import httpx
import orjson
from gevent.lock import Semaphore
from gevent.queue import Queue

from edgebench.payloads import DEPLOY, FLEET_DEPLOY, PayloadPlan, PlannedRequest
from edgebench.polling import StatusPoller
from edgebench.records import BACKOFF, DROPPED, RecordWriter, outcome_of
from edgebench.schedule import WINDOW_S, Arrival, Schedule, share_of
from edgebench.webhooks import WebhookReceiver

TOKEN_VARIABLE = "EDGEGAP_API_TOKEN"  # noqa: S105 (the variable's name, not a token)
LOCAL_TOKEN = "edgebench-local"  # noqa: S105 (sent to a loopback emulator when no token is set)
JSON = {"Content-Type": "application/json"}  # FastHttpSession copies it per request
MIN_USERS_PER_CLASS = 4  # per process: a user held by the send guard is not idle
# Past this many users per process an overloaded target only queues more: starts are
# dropped (and counted) instead, as an open model should.
MAX_USERS_PER_PROCESS = 256


def api_token() -> str | None:
    """api_token reads EDGEGAP_API_TOKEN, tolerating a doubled "token " prefix."""
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    while token.lower().startswith("token "):
        token = token[6:].strip()
    return token or None


def pool_size(rate: float, latency_s: float, shares: list[float], processes: int = 1) -> int:
    """pool_size is how many users keep up with `rate` starts/s at `latency_s` each.

    Twice the concurrency Little's law asks for, and enough that every endpoint
    with traffic has MIN_USERS_PER_CLASS users in every process whatever its share,
    but never more than MAX_USERS_PER_PROCESS in a process.

    >>> pool_size(40, 0.5, [1.0]), pool_size(40, 0.01, [1.0]), pool_size(5, 0.01, [0.8, 0.2], 2)
    (42, 4, 40)
    >>> pool_size(4000, 9.0, [1.0], processes=2)
    512
    """
    needed = math.ceil(rate * max(latency_s, 0.01) * 2) + 2
    smallest = min(share for share in shares if share > 0)
    wanted = max(needed, math.ceil(MIN_USERS_PER_CLASS * processes / smallest))
    return min(wanted, MAX_USERS_PER_PROCESS * processes)


class SendGuard:
    """SendGuard holds a process's sends to `budget` in any window of `window_s`.

    The schedule already spaces the arrivals; the guard keeps that true of the
    actual sends when a busy machine delays some and they would leave in a bunch.
    Sends pass one at a time, in order; a held send waits (its latency from the
    schedule shows the wait).
    """

    def __init__(self, budget: int, window_s: float, clock=time.time, sleep=gevent.sleep):
        self.window_s = window_s
        self._sent: deque[float] = deque(maxlen=max(1, budget))
        self._clock, self._sleep = clock, sleep
        self._turn = Semaphore()

    def wait(self) -> None:
        with self._turn:
            if len(self._sent) == self._sent.maxlen:
                self._sleep(max(0.0, self._sent[0] + self.window_s - self._clock()))
            self._sent.append(self._clock())


@dataclass(frozen=True)
class Share:
    """Share is this process's part of the run: worker i of n, and the run's time zero."""

    worker_index: int
    worker_count: int
    epoch: float  # unix time of schedule time 0, the same in every process

    @property
    def name(self) -> str:
        return f"w{self.worker_index}"


class TrafficRun:
    """TrafficRun keeps this process's share of the schedule and records every start."""

    def __init__(
        self, scenario, results_dir: Path, share: Share, run_tag: str, host: str, token: str
    ) -> None:
        self.scenario = scenario
        self.share = share
        self.respect = scenario.rate.mode == "respect"
        self.window_s = WINDOW_S + scenario.rate.margin_ms / 1000
        self.schedule = Schedule.from_scenario(scenario)
        self.records = RecordWriter(results_dir / f"requests-{share.name}.jsonl")
        requests = scenario.requests
        self.events = None
        if requests.webhooks or requests.poll_status:
            self.events = RecordWriter(results_dir / f"events-{share.name}.jsonl")
        self.receiver = WebhookReceiver(self.events, share.name) if requests.webhooks else None
        self.poller = self._poller(host, token, share) if requests.poll_status else None
        base = self.receiver.url if self.receiver else None
        self.plan = PayloadPlan(scenario, webhook_base=base, run_tag=run_tag)
        self.queues: dict[str, Queue] = {DEPLOY: Queue(), FLEET_DEPLOY: Queue()}
        self.idle: Counter[str] = Counter()
        self.pause_until = 0.0
        budget = self.schedule.budget(share.worker_index, share.worker_count)
        self.guard = SendGuard(budget, self.window_s) if self.respect and budget else None
        self._greenlets: list[gevent.Greenlet] = []

    def _poller(self, host: str, token: str, share: Share) -> StatusPoller:
        requests = self.scenario.requests
        budget = share_of(requests.status_limit, share.worker_index, share.worker_count)
        client = httpx.Client(
            base_url=host, headers={"Authorization": f"token {token}"}, timeout=5.0
        )
        guard = SendGuard(max(1, budget), self.window_s)
        return StatusPoller(client, self.events, share.name, requests.poll_interval, guard)

    # Lifecycle --------------------------------------------------------------

    def start(self) -> None:
        if self.receiver:
            self.receiver.start()
        if self.poller:
            self.poller.start()
        self._greenlets = [gevent.spawn(self._dispatch), gevent.spawn(self._flush_forever)]

    def stop(self) -> None:
        """stop ends dispatching and writes every record; safe to call twice."""
        gevent.killall(self._greenlets, block=True, timeout=5)
        for queue in self.queues.values():  # handed over, never sent: the run ended first
            while not queue.empty():
                arrival, request, due = queue.get_nowait()
                self._record_unsent(arrival, request.endpoint, due, DROPPED)
        for part in (self.receiver, self.poller):
            if part:
                part.stop()
        for writer in (self.records, self.events):
            if writer:
                writer.close()

    # Dispatch -------------------------------------------------------------------

    def _dispatch(self) -> None:
        for arrival in self.schedule.arrivals(self.share.worker_index, self.share.worker_count):
            due = self.share.epoch + arrival.due_s
            wait = due - time.time()
            if wait > 0:
                gevent.sleep(wait)
            self._hand_over(arrival, due)

    def _hand_over(self, arrival: Arrival, due: float) -> None:
        draft = self.plan.draft(arrival.index)
        endpoint = draft[0]
        if self.respect and time.time() < self.pause_until:
            self._record_unsent(arrival, endpoint, due, BACKOFF)
        elif self.idle[endpoint] <= 0:
            self._record_unsent(arrival, endpoint, due, DROPPED)
        else:
            self.idle[endpoint] -= 1
            request = self.plan.request(arrival.index, draft)
            self.queues[endpoint].put((arrival, request, due))

    def give_back(self, endpoint: str, due: tuple) -> None:
        """give_back returns a start taken by a user that was stopped before sending it."""
        self.idle[endpoint] -= 1  # as a hand-over: the next user to take it matches this
        self.queues[endpoint].put(due)

    def take(self, endpoint: str):
        """take waits, as an idle user, for the next start of endpoint."""
        self.idle[endpoint] += 1
        try:
            return self.queues[endpoint].get()
        except BaseException:  # a stopping run kills waiting users: they are idle no more
            self.idle[endpoint] -= 1
            raise

    # Sending ------------------------------------------------------------------

    def send(self, client, arrival: Arrival, request: PlannedRequest, due: float) -> None:
        """send posts one planned request with a Locust FastHttpUser client and records it."""
        if self.guard:
            self.guard.wait()
        sent = time.time()
        started = time.perf_counter()
        body = orjson.dumps(request.body)
        with client.post(
            request.path, data=body, headers=JSON, name=request.endpoint, catch_response=True
        ) as response:
            latency_s = time.perf_counter() - started
            status = response.status_code or 0
            outcome = outcome_of(status)
            self._judge(response, status, outcome)
            request_id = _request_id(response.content) if status in (202, 422) else None
        if status == 429 and self.respect:
            self._back_off(response.headers.get("retry-after"))
        if status == 202 and self.poller and request_id:
            self.poller.track(request_id, sent)
        self._record(arrival, request, due, sent, latency_s, status, outcome, request_id)

    def _judge(self, response, status: int, outcome: str) -> None:
        if status == 202:
            response.success()
        elif status == 0:
            response.failure(f"transport error: {type(response.error).__name__}")
        else:
            response.failure(f"{outcome.replace('_', ' ')} ({status})")

    def _back_off(self, retry_after: str | None) -> None:
        try:
            wait = float(retry_after) if retry_after else 1.0
        except ValueError:
            wait = 1.0
        self.pause_until = max(self.pause_until, time.time() + min(wait, 60.0))

    # Records ------------------------------------------------------------------

    def _record(self, arrival, request, due, sent, latency_s, status, outcome, request_id) -> None:
        done = sent + latency_s
        self.records.add(
            self._base(arrival, request.endpoint, due, request.region, request.players)
            | {
                "t_send": round(sent, 6),
                "status": status,
                "outcome": outcome,
                "latency_ms": round(latency_s * 1000, 3),
                "latency_sched_ms": round((done - due) * 1000, 3),
                "request_id": request_id,
            }
        )

    def _record_unsent(self, arrival: Arrival, endpoint: str, due: float, outcome: str) -> None:
        never_sent = dict.fromkeys(("t_send", "status", "latency_ms", "latency_sched_ms"))
        never_sent |= {"outcome": outcome, "request_id": None}
        self.records.add(self._base(arrival, endpoint, due) | never_sent)

    def _base(self, arrival: Arrival, endpoint: str, due: float, region=None, players=None) -> dict:
        return {
            "index": arrival.index,
            "t_sched": round(due, 6),
            "endpoint": endpoint,
            "region": region,
            "players": players,
            "worker": self.share.name,
            "stage": arrival.stage,
            "offered_rate": round(arrival.offered_rate, 4),
        }

    def _flush_forever(self) -> None:
        while True:
            gevent.sleep(1.0)
            for writer in (self.records, self.events):
                if writer:
                    writer.flush()


def _request_id(content: bytes | None) -> str | None:
    try:
        value = orjson.loads(content or b"").get("request_id")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, str) else None
