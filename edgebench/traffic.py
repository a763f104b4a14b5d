"""One process's share of a run: users that take the scheduled starts, send and record.

A free Locust user takes its endpoint's next start (edgebench.starts) and
sleeps until it is due; a start no user was free for is recorded as dropped
(never silently skipped). Users send, classify the answer and record it, with
the latency from the actual send and from the scheduled start (so a stalled
generator cannot hide latency). Runs inside Locust's gevent world; the
locustfile is the shell.
"""

from __future__ import annotations

import gc
import math
import os
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import gevent
import httpx
import orjson
from gevent.event import AsyncResult
from gevent.lock import Semaphore

from edgebench.live import CountedEvents, LiveCounts
from edgebench.payloads import PayloadPlan
from edgebench.polling import StatusPoller
from edgebench.records import BACKOFF, DROPPED, OVER_BUDGET, RecordWriter, outcome_of
from edgebench.schedule import WINDOW_S, Schedule, share_of
from edgebench.starts import Start, Starts
from edgebench.webhooks import WebhookReceiver

TOKEN_VARIABLE = "EDGEGAP_API_TOKEN"  # noqa: S105 (the variable's name, not a token)
LOCAL_TOKEN = "edgebench-local"  # noqa: S105 (sent to a loopback emulator when no token is set)
JSON = {"Content-Type": "application/json"}  # FastHttpSession copies it per request
MIN_USERS_PER_CLASS = 4  # per process: a user held by the send guard is not idle
# Past this many users per process an overloaded target only queues more: starts are
# dropped (and counted) instead, as an open model should.
MAX_USERS_PER_PROCESS = 256
GC_THRESHOLD = 20_000


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


def settle_pool(current: int, wanted: int) -> int:
    """settle_pool grows the pool to `wanted` at once but shrinks it slowly.

    Latency percentiles wobble from second to second; following them both ways
    would start and stop users (each a new client and connection) all run long.

    >>> settle_pool(10, 30), settle_pool(30, 28), settle_pool(30, 10), settle_pool(0, 5)
    (30, 30, 27, 5)
    """
    if wanted >= current or wanted >= current * 0.8:
        return max(current, wanted)
    return max(wanted, math.floor(current * 0.9))


class SendGuard:
    """SendGuard holds a process's requests to `budget` in any window of `window_s` at the API.

    The schedule already spaces the arrivals, but the API counts a request when it
    handles it, which may be later than the send (a stalled server handled three
    sends 60 ms late, next to one sent on time, and refused it). So a request may
    go only once the one `budget` requests before it has been answered for
    `window_s`: the API handled it by then. Requests pass one at a time, in order;
    a held one waits (its latency from the schedule shows the wait).

        with guard.turn():
            client.post(...)
    """

    def __init__(self, budget: int, window_s: float, clock=time.time, sleep=gevent.sleep):
        self.window_s = window_s
        self._recent: deque[AsyncResult] = deque(maxlen=max(1, budget))
        self._clock, self._sleep = clock, sleep
        self._order = Semaphore()

    def resized(self, budget: int) -> SendGuard:
        """resized is this guard with another budget, remembering the latest sends."""
        guard = SendGuard(budget, self.window_s, self._clock, self._sleep)
        guard._recent.extend(list(self._recent)[-budget:])
        return guard

    @contextmanager
    def turn(self) -> Iterator[None]:
        answered = AsyncResult()
        with self._order:
            if len(self._recent) == self._recent.maxlen:
                oldest_answer = self._recent[0].get()
                self._sleep(max(0.0, oldest_answer + self.window_s - self._clock()))
            self._recent.append(answered)
        try:
            yield
        finally:
            answered.set(self._clock())


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
        self,
        scenario,
        results_dir: Path,
        share: Share,
        run_tag: str,
        host: str,
        token: str,
        max_deployments: int = 0,
    ) -> None:
        self.scenario = scenario
        self.share = share
        self._worker = share.name
        # This process's part of the run's deployment budget (0: no budget).
        self.budget_left = (
            share_of(max_deployments, share.worker_index, share.worker_count)
            if max_deployments
            else None
        )
        self.respect = scenario.rate.mode == "respect"
        self.window_s = WINDOW_S + scenario.rate.margin_ms / 1000
        self.schedule = Schedule.from_scenario(scenario)
        self.records = RecordWriter(results_dir / f"requests-{share.name}.jsonl")
        requests = scenario.requests
        public = requests.webhook_public_url
        receives = requests.webhooks and (public is None or share.worker_index == 0)
        self.live = LiveCounts()
        self.events_file = self.events = None
        if receives or requests.poll_status:
            self.events_file = RecordWriter(results_dir / f"events-{share.name}.jsonl")
            self.events = CountedEvents(self.events_file, self.live)
        self.created: set[str] = set()  # request_ids of this process's 202s, for the receiver
        self.results_dir = results_dir
        self.receiver = self._receiver(share, run_tag) if receives else None
        self.poller = self._poller(host, token, share) if requests.poll_status else None
        base = requests.webhook_public_url or (self.receiver.url if self.receiver else None)
        self.plan = PayloadPlan(scenario, webhook_base=base, run_tag=run_tag)
        arrivals = self.schedule.arrivals(share.worker_index, share.worker_count)
        self.starts = Starts(arrivals, share.epoch, self.plan.endpoint)
        self.pause_until = 0.0
        budget = self.schedule.budget(share.worker_index, share.worker_count)
        self.guard = SendGuard(budget, self.window_s) if self.respect and budget else None
        self._greenlets: list[gevent.Greenlet] = []

    def _receiver(self, share: Share, run_tag: str) -> WebhookReceiver:
        if self.scenario.requests.webhook_public_url is None:
            return WebhookReceiver(
                self.events, share.name, run_tag, known=self.created.__contains__
            )
        # One public address, forwarded (by a tunnel) to one port: worker 0 takes every
        # worker's callbacks (so it cannot tell an unknown request_id); the analysis joins
        # them to requests by request_id, whoever sent them.
        port = self.scenario.requests.webhook_port
        return WebhookReceiver(self.events, share.name, run_tag, port=port)

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
        # Each request allocates dozens of short-lived containers: with the default
        # gen-0 threshold (700) the collector ran every few requests and was a top
        # native frame in py-spy; frozen start-up objects are not rescanned.
        gc.freeze()
        gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
        if self.receiver:
            self.receiver.start()
        if self.poller:
            self.poller.start()
        self._greenlets = [gevent.spawn(self._flush_forever)]

    def stop(self) -> None:
        """stop records every start that came due unsent and writes every record; safe twice."""
        gevent.killall(self._greenlets, block=True, timeout=5)
        for start in self.starts.overdue(time.time()):  # no user was free before the end
            self._record_unsent(start, DROPPED)
        for part in (self.receiver, self.poller):
            if part:
                part.stop()
        if self.receiver:
            path = self.results_dir / f"webhooks-{self.share.name}.json"
            path.write_bytes(orjson.dumps(self.receiver.counts()))
        for writer in (self.records, self.events_file):
            if writer:
                writer.close()

    # Taking starts --------------------------------------------------------------

    def next_start(self, endpoint: str) -> Start | None:
        """next_start is endpoint's next start for a free user (None: the schedule is over).

        The user sleeps until it is due (in Locust's wait, where a stopping run kills it
        and on_stop gives the start back), then asks ready().
        """
        start, dropped = self.starts.take(endpoint, time.time())
        for missed in dropped:
            self._record_unsent(missed, DROPPED)
        return start

    def ready(self, start: Start) -> bool:
        """ready is whether a start that came due is to be sent; if not, it is recorded unsent."""
        if not self.starts.mine(start):
            return False  # re-split while its user slept: another worker sends and records it
        if self.budget_left is not None and self.budget_left <= 0:
            self._record_unsent(start, OVER_BUDGET)
        elif self.respect and time.time() < self.pause_until:
            self._record_unsent(start, BACKOFF)
        else:
            return True
        return False

    def give_back(self, start: Start) -> None:
        """give_back returns a start taken by a user that was stopped before sending it."""
        self.starts.give_back(start)

    def resplit(self, position: int, count: int, from_s: float) -> None:
        """resplit makes this process position of count in the schedule from from_s on.

        The master sends it when workers join or leave, so the shares still add up
        to the whole schedule; the guard keeps its recent sends.
        """
        arrivals = self.schedule.arrivals(position, count)
        self.starts.switch(self.share.epoch + from_s, (a for a in arrivals if a.due_s >= from_s))
        budget = self.schedule.budget(position, count)
        if self.guard and budget:
            self.guard = self.guard.resized(budget)

    # Sending ------------------------------------------------------------------

    def send(self, client, start: Start) -> None:
        """send posts one start's request with a Locust FastHttpUser client and records it."""
        request = self.plan.request(start.arrival.index)
        body = request.json
        with self.guard.turn() if self.guard else nullcontext():
            sent = time.time()
            started = time.perf_counter()
            with client.post(
                request.path, data=body, headers=JSON, name=request.endpoint, catch_response=True
            ) as response:
                latency_s = time.perf_counter() - started
                status, request_id = _answer(response)
                outcome = outcome_of(status)
                self._judge(response, status, outcome)
        if status == 429 and self.respect:
            self._back_off(response.headers.get("retry-after"))
        self.live.start(request.endpoint, outcome)
        if status == 202 and self.budget_left is not None:
            self.budget_left -= 1
        if status == 202 and request_id and self.events:
            self.created.add(request_id)
            self.live.accepted(request.endpoint, request_id, sent)
            if self.poller:
                self.poller.track(request_id, sent)
        self._record(
            start,
            request.endpoint,
            outcome,
            region=request.region,
            players=request.players,
            t_send=round(sent, 6),
            status=status,
            latency_ms=round(latency_s * 1000, 3),
            latency_sched_ms=round((sent + latency_s - start.due) * 1000, 3),
            request_id=request_id,
        )

    def _judge(self, response, status: int, outcome: str) -> None:
        if status == 202:
            response.success()
        elif status == 0:
            error = getattr(response, "error", None)  # set only when the client raised
            cause = type(error).__name__ if error else "connection closed mid-response"
            response.failure(f"transport error: {cause}")
        else:
            response.failure(f"{outcome.replace('_', ' ')} ({status})")

    def _back_off(self, retry_after: str | None) -> None:
        try:
            wait = float(retry_after) if retry_after else 1.0
        except ValueError:
            wait = 1.0
        self.pause_until = max(self.pause_until, time.time() + min(wait, 60.0))

    def _record_unsent(self, start: Start, outcome: str) -> None:
        self.live.start(start.endpoint, outcome)
        self._record(start, start.endpoint, outcome)

    def _record(
        self,
        start: Start,
        endpoint: str,
        outcome: str,
        region: str | None = None,
        players: int | None = None,
        t_send: float | None = None,
        status: int | None = None,
        latency_ms: float | None = None,
        latency_sched_ms: float | None = None,
        request_id: str | None = None,
    ) -> None:
        """_record writes a start's line (results/README.md); a send's fields are None if unsent."""
        arrival = start.arrival
        self.records.add(
            {
                "index": arrival.index,
                "t_sched": round(start.due, 6),
                "endpoint": endpoint,
                "region": region,
                "players": players,
                "worker": self._worker,
                "stage": arrival.stage,
                "offered_rate": round(arrival.offered_rate, 4),
                "t_send": t_send,
                "status": status,
                "outcome": outcome,
                "latency_ms": latency_ms,
                "latency_sched_ms": latency_sched_ms,
                "request_id": request_id,
            }
        )

    def _flush_forever(self) -> None:
        while True:
            gevent.sleep(1.0)
            for writer in (self.records, self.events_file):
                if writer:
                    writer.flush()


def _answer(response) -> tuple[int, str | None]:
    """_answer is a response's status (0: no answer, in effect) and its request_id, if any."""
    status = response.status_code or 0
    request_id = _request_id(response) if status in (202, 422) else None
    if status and request_id is None and _cut_short(response):
        return 0, None  # the connection closed mid-response
    return status, request_id


def _cut_short(response) -> bool:
    """_cut_short is whether a response's body ended before its Content-Length."""
    declared = response.headers.get("content-length")
    try:
        return declared is not None and len(response.content or b"") < int(declared)
    except ValueError:
        return False
    except Exception:  # the client raises its own kinds for a cut-off body
        return True


def _request_id(response) -> str | None:
    try:
        value = orjson.loads(response.content or b"").get("request_id")
    except Exception:  # not JSON, not an object, or cut off (the client raises its own kinds)
        return None
    return value if isinstance(value, str) else None
