"""A scenario against the emulator's model in virtual time: no HTTP, no Locust, one process.

What is shared with a live run against the embedded emulator, not copied:
- the schedule (edgebench.plan.schedule), the bodies' players, regions and endpoints
  (edgebench.plan.payloads), the client's rules (edgebench.plan.client: retries, their
  delays and jitter draws);
- the platform: emulator._model.ApiModel (injected faults, rate limits, placement,
  lifecycle), the very code the emulator's HTTP app calls; each population player is
  located once by the emulator's own users[] check (emulator.locate_user).

What stands in for HTTP and Locust (results/README.md, "Simulated runs"):
- time is virtual: wall seconds from the run's epoch; platform time is that times
  `time_scale`, as in the emulator;
- a request's latency is drawn from a distribution (DEFAULT_LATENCY_MS: measured against
  the embedded emulator on this machine); the API handles a request when it is sent
  (after an injected fault's delay) and answers a latency later; an answer later than
  the client's timeout is a transport error, as it is live;
- respect mode's guard is the live one's rule (edgebench.plan.client.window_opens): a send
  waits, first in first out, until the answer to the send `quota` places before it is
  `window` old; a match whose wait passes max_queue_wait is abandoned at that moment;
- there is no user pool, so no start is ever dropped;
- a webhook arrives at the deployment's ready time plus a latency draw; polling sees
  readiness at the first poll after it (one every poll_interval from the 202).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import orjson

from edgebench.collector import few_collections
from edgebench.plan.client import ClientRules, window_opens
from edgebench.plan.payloads import FLEET_DEPLOY, PayloadPlan
from edgebench.plan.schedule import WINDOW_S, Arrival, Schedule
from edgebench.records import (
    ABANDONED,
    BACKOFF,
    CLOUD,
    FAILED,
    attempt_row,
    emulator_reading,
    event_record,
    match_head,
    outcome_of,
)
from edgebench.simulate.batch import BatchParties, DrawnParty
from emulator import (
    DEPLOY_GROUP,
    FLEET_DEPLOY_GROUP,
    ApiModel,
    BadRequest,
    Deployment,
    DeployRequest,
    Distribution,
    EmulatorConfig,
    parse_deploy,
    parse_fleet_deploy,
)

DEFAULT_LATENCY_MS = Distribution.lognormal(1.6, 0.25)
WORKER = "sim"
RATE_KEY = "simulated"  # the token the rate limiter counts: one client, one organisation
BLOCK = 4096  # arrivals whose parties are drawn at once, latencies drawn at once
LATENCY_KEY = 0x4C4154  # the latency draws among a seed's ("LAT")
SAMPLE_EVERY_S = 1.0  # the emulator's readings, as `edgebench run` takes them


class Sink:
    """Sink receives what a simulation writes: request records (rows: records.attempt_row),
    event records, emulator readings."""

    def request(self, row: tuple) -> None: ...
    def event(self, record: dict) -> None: ...
    def reading(self, record: dict) -> None: ...


@dataclass(slots=True)
class Match:
    """Match is one arrival on its way through the client: what every attempt needs."""

    arrival: Arrival
    due: float
    endpoint: str
    request: DeployRequest | None  # None: the body does not pass the API's check (a 400)
    deadline: float | None
    head: tuple  # what each attempt's row says of the match (records.match_head)

    def checked(self) -> DeployRequest:
        """checked is the request as the API's body check passes it (raising: a 400)."""
        if self.request is None:
            raise BadRequest("body", "does not pass the API's check")
        return self.request


class VirtualGuard:
    """VirtualGuard is SendGuard's rule (window_opens) in virtual time: answers are known
    when a send goes."""

    def __init__(self, quota: int, window_s: float) -> None:
        self.window_s = window_s
        self._answers: deque[float] = deque(maxlen=max(1, quota))
        self._last = -math.inf  # sends go one at a time, in order

    def admit(self, entered: float, deadline: float | None) -> float | None:
        """admit is when a request that entered at `entered` may go (None: past its deadline)."""
        full = len(self._answers) == self._answers.maxlen
        oldest = self._answers[0] if full else None
        return window_opens(max(entered, self._last), oldest, self.window_s, deadline)

    def took(self, send: float, answered: float) -> None:
        self._last = send
        self._answers.append(answered)


class LatencyDraws:
    """LatencyDraws are a distribution's draws in ms, made a block at a time with numpy
    (a draw one by one cost more than the rest of a request's handling)."""

    def __init__(self, distribution: Distribution, seed: int) -> None:
        self.distribution = distribution
        self._rng = np.random.default_rng([seed, LATENCY_KEY])
        self._block: list[float] = []

    def __call__(self) -> float:
        if not self._block:
            self._block = self._draw(BLOCK).tolist()
            self._block.reverse()
        return self._block.pop()

    def _draw(self, count: int) -> np.ndarray:
        kind, a, b = self.distribution.kind, self.distribution.a, self.distribution.b
        if kind == "fixed":
            return np.full(count, a)
        if kind == "uniform":
            return self._rng.uniform(a, b, count)
        if kind == "lognormal":
            return a * np.exp(b * self._rng.standard_normal(count))
        return self._rng.exponential(a, count) if a > 0 else np.zeros(count)


class Simulation:
    """Simulation runs one scenario's whole schedule through the client and the platform."""

    def __init__(
        self,
        scenario,
        config: EmulatorConfig,
        sink: Sink,
        epoch: float,
        latency_ms: Distribution = DEFAULT_LATENCY_MS,
    ) -> None:
        self.scenario, self.sink, self.epoch = scenario, sink, epoch
        self.time_scale = config.time_scale
        self.now = epoch
        self.model = ApiModel(config, clock=lambda: self.now)
        self.schedule = Schedule.from_scenario(scenario)
        self.plan = PayloadPlan(scenario)
        self.rules = ClientRules.of(scenario)
        self.respect = scenario.rate.mode == "respect"
        self.pause_until = -math.inf
        self.guard = self._guard()
        self._latency = LatencyDraws(latency_ms, scenario.seed)
        self._parties = BatchParties(self.plan)
        self._templates: dict[str, DeployRequest | None] = {}  # kind -> checked (None: a 400)
        self._heap: list = []
        self._order = 0
        requests = scenario.requests
        self._events = "webhook" if requests.webhooks else "poll" if requests.poll_status else None
        self._poll_s = requests.poll_interval
        self.matches = 0
        self.last_arrival: Arrival | None = None

    def _guard(self) -> VirtualGuard | None:
        quota = self.schedule.quota(0, 1)
        if not (self.respect and quota):
            return None
        return VirtualGuard(quota, WINDOW_S)  # from the answers, as TrafficRun's guard

    # The loop ---------------------------------------------------------------

    def run(self, on_progress: Callable[[float], None] | None = None, every: int = 20_000):
        """run simulates every arrival and everything it leads to; on_progress(schedule s)."""
        with few_collections():
            self._run(on_progress, every)

    def _run(self, on_progress, every: int) -> None:
        self._at(self.epoch, self._sample)
        arrivals = self._drawn_arrivals()
        pending = next(arrivals, None)
        heap, steps = self._heap, 0
        while pending is not None or heap:
            if heap and (pending is None or heap[0][0] <= self.epoch + pending[0].due_s):
                self.now, _, action, args = heapq.heappop(heap)
                action(*args)
            elif pending is not None:
                self.now = self.epoch + pending[0].due_s
                self._arrive(*pending)
                self.last_arrival, pending = pending[0], next(arrivals, None)
            steps += 1
            if on_progress and steps % every == 0:
                on_progress(self.now - self.epoch)

    def _drawn_arrivals(self):
        """_drawn_arrivals are (arrival, its party) in time order, arrivals and parties drawn
        a block at a time (a replay's matches carry their own: None)."""
        if self.scenario.replay:
            yield from ((arrival, None) for arrival in self.schedule.arrivals())
            return
        for block in self.schedule.arrival_blocks(BLOCK):
            indices = np.fromiter((a.index for a in block), np.int64, len(block))
            due = np.fromiter((a.due_s for a in block), np.float64, len(block))
            yield from zip(block, self._parties.parties(indices, due), strict=True)

    def _at(self, when: float, action, *args) -> None:
        self._order += 1
        heapq.heappush(self._heap, (when, self._order, action, args))

    def _sample(self) -> None:
        """_sample is the emulator's reading now, as `edgebench run` takes one a second."""
        platform = self.model.platform
        platform.advance(self._platform_now())
        placements = platform.fleet_placements
        self.sink.reading(
            emulator_reading(
                t=self.now,
                active=platform.active_count(),
                holding_capacity=platform.holding_count(),
                deployments_created=platform.created,
                private_host_changes=platform.drain_host_changes(),
                by_location=platform.active_by_location(),
                fleet_private=placements.get("private", 0),
                fleet_cloud=placements.get("cloud", 0),
                allocation_failures=dict(platform.failures),
            )
        )
        if self._heap or self.last_arrival is None or not self._finished():
            self._at(self.now + SAMPLE_EVERY_S, self._sample)

    def _finished(self) -> bool:
        return self.now - self.epoch >= self.schedule.duration_s

    def _platform_now(self) -> float:
        return (self.now - self.epoch) * self.time_scale

    # A match ------------------------------------------------------------------

    def _arrive(self, arrival: Arrival, party: DrawnParty | None) -> None:
        self.matches += 1
        match = self._match(arrival, party)
        if self.now < self.pause_until:
            self._unsent(match, BACKOFF, 1, None, FAILED)
            return
        self._enter(match, 1)

    def _match(self, arrival: Arrival, party: DrawnParty | None) -> Match:
        due = self.epoch + arrival.due_s
        deadline = self.rules.deadline(due)
        if party is None:
            planned = self.plan.request(arrival.index, arrival.due_s)
            request = _checked(planned.endpoint, planned.body)
            endpoint, region, players = planned.endpoint, planned.region, planned.players
        else:
            request = self._request(party, arrival)
            endpoint, region, players = party.endpoint, party.region, party.players
        head = match_head(
            arrival.index, due, endpoint, region, players, WORKER, arrival.stage,
            arrival.offered_rate,
        )  # fmt: skip
        return Match(arrival, due, endpoint, request, deadline, head)

    def _request(self, party: DrawnParty, arrival: Arrival) -> DeployRequest | None:
        """_request is the party's deploy as the API reads it: its kind's fields, checked once
        by the API's own check on a whole body, and the players' centre."""
        if party.kind not in self._templates:
            whole = self.plan.party(arrival.index, arrival.due_s)
            body = orjson.loads(self.plan.body(whole))
            self._templates[party.kind] = _checked(whole.endpoint, body)
        request = self._templates[party.kind]
        if request is None:
            return None
        return DeployRequest(
            request.application,
            request.version,
            party.centre,
            request.require_cached,
            request.private_host_ids,
            request.tags,
            origin=party.region,
        )

    def _enter(self, match: Match, attempt: int) -> None:
        """_enter puts an attempt through the client's guard: it goes now, later, or never."""
        entered = send = self.now
        if self.guard:
            admitted = self.guard.admit(entered, match.deadline)
            if admitted is None:  # only a match with a deadline is ever refused
                deadline = match.deadline or entered
                self._at(deadline, self._unsent, match, ABANDONED, attempt, entered, ABANDONED)
                return
            send = admitted
        delay, fault = self.model.fault()
        latency = self._latency() / 1000
        answered = send + delay + latency
        timeout = self.rules.policy.timeout_s
        if delay + latency > timeout:
            answered = send + timeout
        if self.guard:
            self.guard.took(send, answered)
        if send + delay == self.now:  # the API meets it now: no need to queue the meeting
            self._handle(match, attempt, entered, send, answered, fault)
        else:
            self._at(send + delay, self._handle, match, attempt, entered, send, answered, fault)

    def _handle(self, match, attempt, entered, send, answered, fault) -> None:
        """_handle is the API meeting the request: fault, limit, then the platform."""
        status, retry_after, request_id, cause, dep = self._answer(match, fault)
        if answered - send >= self.rules.policy.timeout_s:
            status, retry_after, request_id, cause, dep = 0, None, None, None, None
        location, host = _placement(dep)
        arrival = match.arrival
        decision = self.rules.decide(arrival.index, attempt, status, retry_after, answered)
        if decision.pause_until is not None:
            self.pause_until = max(self.pause_until, decision.pause_until)
        self.sink.request(
            attempt_row(
                match.head,
                outcome_of(status),
                _micro(send),
                status,
                _ms(answered - send),
                _ms(answered - match.due),
                request_id,
                cause,
                attempt,
                _ms(send - entered) if self.guard else None,
                decision.final,
                location,
                host,
            )
        )
        if decision.retry_at is not None:
            self._at(decision.retry_at, self._enter, match, attempt + 1)

    def _answer(self, match: Match, fault: str | None):
        """_answer is (status, Retry-After, request_id, 422 cause, the accepted deployment):
        ApiModel.deploy's answer, the emulator's own, to the match's request (None: a body
        the API refuses)."""
        group = FLEET_DEPLOY_GROUP if match.endpoint == FLEET_DEPLOY else DEPLOY_GROUP
        answer = self.model.deploy(fault, RATE_KEY, group, match.checked, self._advanced)
        status, dep = answer.status, answer.deployment
        if status == 429:
            told = answer.retry_after
            return 429, None if told is None else str(told), None, None, None
        if status == 422:
            return 422, None, dep.request_id, dep.error_detail, None
        if status == 202:
            if self._events:
                self._tell_ready(dep)
            return 202, None, dep.request_id, None, dep
        return status, None, None, None, None

    def _advanced(self) -> float:
        """_advanced brings the platform to now and is its time."""
        now = self._platform_now()
        self.model.platform.advance(now)
        return now

    def _tell_ready(self, dep) -> None:
        """_tell_ready records when the client learns the deployment is ready."""
        ready = self.epoch + dep.ready_at / self.time_scale
        if self._events == "webhook":
            told = ready + self._latency() / 1000
        else:
            polls = math.ceil(max(0.0, ready - self.now) / self._poll_s)
            told = self.now + max(1, polls) * self._poll_s
        self.sink.event(
            event_record(
                t_received=told,
                event="ready",
                request_id=dep.request_id,
                current_status="Status.READY",
                source=self._events or "",
                worker=WORKER,
                location=dep.location.city,
                host=dep.host.id if dep.host else CLOUD,
            )
        )

    def _unsent(self, match, outcome, attempt, entered, final) -> None:
        queue_ms = None if entered is None else round((self.now - entered) * 1000, 3)
        arrival = match.arrival  # never sent: no body, so no region or players, as live
        head = match_head(
            arrival.index, match.due, match.endpoint, None, None, WORKER, arrival.stage,
            arrival.offered_rate,
        )  # fmt: skip
        self.sink.request(
            attempt_row(head, outcome, attempt=attempt, queue_ms=queue_ms, final=final)
        )


def _micro(seconds: float) -> float:
    """_micro is seconds to the microsecond, as records keep times (round() is several
    times slower, and a record has four of them)."""
    return math.floor(seconds * 1e6 + 0.5) / 1e6


def _ms(seconds: float) -> float:
    """_ms is seconds as milliseconds to the microsecond."""
    return math.floor(seconds * 1e6 + 0.5) / 1e3


def _checked(endpoint: str, body: object) -> DeployRequest | None:
    """_checked is the body as the API's check reads it, or None where the API answers 400."""
    parse = parse_fleet_deploy if endpoint == FLEET_DEPLOY else parse_deploy
    try:
        return parse(body)
    except BadRequest:
        return None


def _placement(dep: Deployment | None) -> tuple[str | None, str | None]:
    """_placement is (city, private host id or "cloud") of an accepted deployment."""
    if dep is None or dep.location is None:
        return None, None
    return dep.location.city, dep.host.id if dep.host else CLOUD
