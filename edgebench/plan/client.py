"""The client between matchmaker and API: what a studio's backend does with a match.

A ClientPolicy says whether matches wait in a first-in-first-out queue for the rate
limiter (respect mode's limit) and for how long before the players give up, and which
answers are retried, how often and after how long. Presets follow what is known of
real clients (../shared/notes/capacity-planning.md):

    edgegap-sdk          Edgegap's Unity SDK: retries 429 and 5xx, honours Retry-After
                         (else about 1 s), plus up to 0.1 s of jitter; 3 attempts; 3 s
                         request timeout (Runtime/SafeHttpRequest.cs).
    edgegap-matchmaker   Edgegap's matchmaker: up to 3 deployment retries (4 attempts)
                         when a deployment cannot start (422, 5xx); its deploys share the
                         organisation's 40/s (agent-skills references/matchmaker.md).
    naive                no queue and no retry: each match one request, as exceed mode
                         sent before clients were modelled.

    policy = ClientPolicy.preset("edgegap-sdk")
    policy.retry_delay(attempt=1, status=429, retry_after="2", unit=0.5)   # 2.05

What the client does with each answer is decided here once, as pure functions of the
answer and the time, and the live run (edgebench.traffic.run) and the simulation
(edgebench.simulate.engine) only supply the time:

    rules = ClientRules.of(scenario)
    rules.decide(match=7, attempt=1, status=429, retry_after="1", now=12.0)
    # Decision(final=None, retry_at=13.0..., pause_until=None)
    window_opens(ready=12.0, oldest_answer=11.5, window_s=1.0, deadline=None)   # 12.5
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from edgebench.plan.draws import unit_hash
from edgebench.records import FAILED, SERVED

MAX_RETRY_AFTER_S = 60.0
PAUSE_WITHOUT_RETRY_AFTER_S = 1.0  # a 429 that does not say how long: about a second
RETRY_KEY = 0x5245545259  # the retry jitter's draws among a seed's ("RETRY")


def jitter_unit(seed: int, match: int, attempt: int) -> float:
    """jitter_unit is the draw in [0, 1) for the jitter after a match's attempt: the same
    in a live run and a simulated one."""
    return unit_hash(seed ^ RETRY_KEY, match * 64 + attempt)


def answer_kind(status: int) -> str | None:
    """answer_kind is how a retry policy names an answer (None: not a failure it names).

    >>> [answer_kind(s) for s in (429, 503, 0, 422, 202, 400)]
    ['429', '5xx', 'transport', '422', None, None]
    """
    if status == 0:
        return "transport"
    if status >= 500:
        return "5xx"
    return {429: "429", 422: "422"}.get(status)


@dataclass(frozen=True)
class ClientPolicy:
    """ClientPolicy is the resolved [client]: a preset with the scenario's keys over it."""

    queue: bool = False  # matches wait first-in-first-out for the limiter (respect mode)
    max_queue_wait_s: float | None = None  # a match waiting longer is abandoned
    retry_on: tuple[str, ...] = ()
    attempts: int = 1  # in all, the first one included
    backoff: str = "fixed"  # or "exponential": base, 2 x base, 4 x base ... up to max
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    jitter_s: float = 0.0  # up to this much added to every delay, uniformly
    retry_after: bool = True  # a Retry-After header, when there is one, sets the delay
    timeout_s: float = 10.0  # a request unanswered this long is a transport error

    @classmethod
    def preset(cls, name: str) -> ClientPolicy:
        return PRESETS[name]

    def with_keys(self, **keys: Any) -> ClientPolicy:
        """with_keys is the policy with the keys that are set (None: keep the preset's)."""
        return replace(self, **{k: v for k, v in keys.items() if v is not None})

    def retry_delay(
        self, attempt: int, status: int, retry_after: str | None, unit: float
    ) -> float | None:
        """retry_delay is how long before attempt + 1, or None when it is not retried.

        unit is a draw in [0, 1) for the jitter (from the run's seed: reproducible).

        >>> sdk = ClientPolicy.preset("edgegap-sdk")
        >>> sdk.retry_delay(1, 429, None, 0.5), sdk.retry_delay(1, 429, "3", 0.0)
        (1.05, 3.0)
        >>> sdk.retry_delay(3, 429, None, 0.5) is None, sdk.retry_delay(1, 422, None, 0) is None
        (True, True)
        """
        if attempt >= self.attempts or answer_kind(status) not in self.retry_on:
            return None
        jitter = self.jitter_s * unit
        told = _seconds(retry_after) if self.retry_after else None
        if told is not None:
            return min(told, MAX_RETRY_AFTER_S) + jitter
        if self.backoff == "exponential":
            doubled = self.backoff_base_s * 2.0 ** (attempt - 1)
            return min(self.backoff_max_s, doubled) + jitter
        return self.backoff_base_s + jitter


class Decision(NamedTuple):
    """Decision is what the client does after an answer to one of a match's attempts."""

    final: str | None  # SERVED, FAILED, or None: the match tries again at retry_at
    retry_at: float | None  # when the next attempt enters the client (None: none follows)
    pause_until: float | None  # respect mode without a [client]: nothing sent before then


_SERVED = Decision(SERVED, None, None)


@dataclass(frozen=True)
class ClientRules:
    """ClientRules are the client's decisions for one run: its policy, its seed's jitter, and
    whether a 429 pauses every send (respect mode with no [client]: the old sender's rule).

    >>> rules = ClientRules(ClientPolicy.preset("edgegap-sdk"), seed=1, pauses=False)
    >>> rules.decide(match=0, attempt=1, status=202, retry_after=None, now=5.0)
    Decision(final='served', retry_at=None, pause_until=None)
    >>> rules.decide(match=0, attempt=3, status=429, retry_after="2", now=5.0).final
    'failed'
    >>> rules.deadline(due=10.0) is None
    True
    """

    policy: ClientPolicy
    seed: int
    pauses: bool

    @classmethod
    def of(cls, scenario: Any) -> ClientRules:
        respect = scenario.rate.mode == "respect"
        policy = scenario.client_policy or ClientPolicy()
        return cls(policy, scenario.seed, respect and scenario.client is None)

    def deadline(self, due: float) -> float | None:
        """deadline is when a match due then is abandoned if still queued (None: never)."""
        wait = self.policy.max_queue_wait_s
        return None if wait is None else due + wait

    def decide(
        self, match: int, attempt: int, status: int, retry_after: str | None, now: float
    ) -> Decision:
        """decide is the client's answer to `status` on `attempt` of `match`, answered at now."""
        if status == 202:  # most answers: made once
            return _SERVED
        pause = None
        if status == 429 and self.pauses:
            told = _seconds(retry_after)
            pause = now + min(PAUSE_WITHOUT_RETRY_AFTER_S if told is None else told,
                              MAX_RETRY_AFTER_S)  # fmt: skip
        unit = jitter_unit(self.seed, match, attempt)
        delay = self.policy.retry_delay(attempt, status, retry_after, unit)
        if delay is None:
            return Decision(FAILED, None, pause)
        return Decision(None, now + delay, pause)


def window_opens(
    ready: float, oldest_answer: float | None, window_s: float, deadline: float | None
) -> float | None:
    """window_opens is when a send ready at `ready` may go (None: after its deadline).

    Respect mode's rule for a sender's window: a send goes once the answer to the send
    `quota` places before it is `window_s` old (oldest_answer; None while fewer than
    `quota` were sent). The API handled each request before answering it, so counting
    from the answers never passes the API's own window.

    >>> window_opens(5.0, None, 1.0, None), window_opens(5.0, 4.5, 1.0, None)
    (5.0, 5.5)
    >>> window_opens(5.0, 4.5, 1.0, deadline=5.2) is None
    True
    """
    send = ready if oldest_answer is None else max(ready, oldest_answer + window_s)
    if deadline is not None and send > deadline:
        return None
    return send


def _seconds(value: str | None) -> float | None:
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None


PRESETS = {
    "naive": ClientPolicy(),
    "edgegap-sdk": ClientPolicy(
        queue=True,
        retry_on=("429", "5xx"),
        attempts=3,
        backoff_base_s=1.0,
        jitter_s=0.1,
        retry_after=True,
        timeout_s=3.0,
    ),
    "edgegap-matchmaker": ClientPolicy(
        queue=True,
        retry_on=("422", "5xx"),
        attempts=4,
        backoff_base_s=1.0,
        jitter_s=0.5,
        retry_after=True,
    ),
}
