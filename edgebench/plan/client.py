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
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from edgebench.plan.draws import unit_hash

MAX_RETRY_AFTER_S = 60.0
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

    def with_keys(self, **keys) -> ClientPolicy:
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
            return min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1)) + jitter
        return self.backoff_base_s + jitter


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
