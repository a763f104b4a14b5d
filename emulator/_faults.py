"""Fault injection: make the emulator misbehave like a real API on a bad day."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

from emulator._distributions import Distribution, parse_distribution
from emulator._errors import ConfigError

SHARES = ("error_share", "drop_share", "lost_answer_share")


@dataclass(frozen=True, slots=True)
class Faults:
    """Faults says what share of API requests misbehave, and how.

    latency_ms: extra delay before every API answer (None: none);
    error_share: share of requests answered 500 {message};
    drop_share: share of requests whose connection closes mid-response;
    lost_answer_share: share of requests handled in full (a deploy creates its deployment)
        whose answer is then lost: the connection closes before it reaches the client.
    """

    latency_ms: Distribution | None = None
    error_share: float = 0.0
    drop_share: float = 0.0
    lost_answer_share: float = 0.0

    @property
    def active(self) -> bool:
        shares = self.error_share + self.drop_share + self.lost_answer_share
        return self.latency_ms is not None or shares > 0

    def updated(self, changes: dict) -> Faults:
        """updated applies a JSON body of POST /_emulator/faults; raises ConfigError."""
        unknown = sorted(set(changes) - {"latency_ms", *SHARES})
        if unknown:
            raise ConfigError(unknown[0], "unknown fault", f"use latency_ms, {', '.join(SHARES)}")
        faults = self
        if "latency_ms" in changes:
            latency = changes["latency_ms"]
            parsed = None if latency is None else parse_distribution(latency, "latency_ms")
            faults = replace(faults, latency_ms=parsed)
        for key in SHARES:
            if key in changes:
                shares: dict[str, Any] = {key: share(changes[key], key)}
                faults = replace(faults, **shares)
        if faults.error_share + faults.drop_share + faults.lost_answer_share > 1:
            raise ConfigError("error_share", "the fault shares add up to more than 1", "lower them")
        return faults

    def describe(self) -> dict:
        latency = self.latency_ms
        return {
            "latency_ms": None if latency is None else latency.describe(),
            "error_share": self.error_share,
            "drop_share": self.drop_share,
            "lost_answer_share": self.lost_answer_share,
        }


def share(value: object, key: str) -> float:
    """share checks a fraction in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigError(key, "must be a number in [0, 1]", "e.g. 0.05 for 5%")
    return float(value)


def draw_fault(faults: Faults, rng: random.Random) -> tuple[float, str | None]:
    """draw_fault is (extra delay in seconds, "error" | "drop" | "lost" | None) for one request."""
    delay = faults.latency_ms.sample(rng) / 1000 if faults.latency_ms else 0.0
    roll = rng.random()
    if roll < faults.error_share:
        return delay, "error"
    if roll < faults.error_share + faults.drop_share:
        return delay, "drop"
    if roll < faults.error_share + faults.drop_share + faults.lost_answer_share:
        return delay, "lost"
    return delay, None
