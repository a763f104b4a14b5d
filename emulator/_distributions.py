"""Distributions of durations (boot delay, match length, extra latency).

A distribution is written in TOML as an inline table:

    boot_s = { distribution = "lognormal", median = 3.0, sigma = 0.25 }
    lifetime_s = { distribution = "uniform", low = 600, high = 1200 }
    terminate_s = { distribution = "fixed", value = 1.0 }
    latency_ms = { distribution = "exponential", mean = 20 }
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

from emulator._errors import ConfigError

_PARAMETERS = {
    "fixed": ("value",),
    "uniform": ("low", "high"),
    "lognormal": ("median", "sigma"),
    "exponential": ("mean",),
}


@dataclass(frozen=True, slots=True)
class Distribution:
    """Distribution draws non-negative durations from a seeded random source.

    Made by name: Distribution.lognormal(median=3.0, sigma=0.25), .fixed(1.0),
    .uniform(600, 1200), .exponential(20); `a` and `b` are the kind's parameters in
    that order (what describe() names).
    """

    kind: str
    a: float
    b: float = 0.0

    @classmethod
    def fixed(cls, value: float) -> Distribution:
        return cls("fixed", value)

    @classmethod
    def uniform(cls, low: float, high: float) -> Distribution:
        return cls("uniform", low, high)

    @classmethod
    def lognormal(cls, median: float, sigma: float) -> Distribution:
        """lognormal has the median and the sigma of the normal whose exponential it is."""
        return cls("lognormal", median, sigma)

    @classmethod
    def exponential(cls, mean: float) -> Distribution:
        return cls("exponential", mean)

    def sample(self, rng: random.Random) -> float:
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        if self.kind == "lognormal":
            # gauss() is the faster normal draw; this runs for every deployment.
            return self.a * math.exp(self.b * rng.gauss())
        return rng.expovariate(1.0 / self.a) if self.a > 0 else 0.0

    def sampler(self, rng: random.Random) -> Callable[[], float]:
        """sampler draws as sample(rng) does, the same values in the same order, without
        asking the kind each time (a simulated day draws millions).

        >>> a, b = random.Random(3), random.Random(3)
        >>> d = Distribution.lognormal(3.0, 0.25)
        >>> [d.sample(a) for _ in range(3)] == [d.sampler(b)() for _ in range(3)]
        True
        """
        a, b = self.a, self.b
        if self.kind == "lognormal":
            gauss, exp = rng.gauss, math.exp
            return lambda: a * exp(b * gauss())
        if self.kind == "fixed":
            return lambda: a
        return functools.partial(self.sample, rng)

    @property
    def mean(self) -> float:
        """mean is the distribution's mean.

        >>> Distribution.fixed(4).mean, Distribution.uniform(2, 6).mean
        (4, 4.0)
        """
        if self.kind == "uniform":
            return (self.a + self.b) / 2
        if self.kind == "lognormal":
            return self.a * math.exp(self.b**2 / 2)
        return self.a  # fixed: its value; exponential: its mean

    def survival(self, x: float) -> float:
        """survival is the share of durations longer than x (1 - F(x)).

        >>> Distribution.exponential(10).survival(10) == math.exp(-1)
        True
        >>> Distribution.lognormal(900, 0.35).survival(900)
        0.5
        """
        if x < 0:
            return 1.0
        if self.kind == "fixed":
            return 1.0 if x < self.a else 0.0
        if self.kind == "uniform":
            return (
                min(1.0, max(0.0, (self.b - x) / (self.b - self.a)))
                if self.b > self.a
                else (1.0 if x < self.a else 0.0)
            )
        if self.kind == "lognormal":
            if x == 0:
                return 1.0
            return 0.5 * math.erfc(math.log(x / self.a) / (self.b * math.sqrt(2)))
        return math.exp(-x / self.a) if self.a > 0 else 0.0

    def residual(self, rng: random.Random) -> float:
        """residual draws what is left of a duration caught at a random moment of it: the
        equilibrium distribution, whose density is (1 - F(x)) / mean. A duration is caught
        in proportion to its length (length-biased), then at a uniform point of it.

        For a lognormal the length-biased draw is the same lognormal with its median
        times exp(sigma^2); a uniform's is sqrt(a^2 + U (b^2 - a^2)); an exponential's
        residual is itself (no memory).
        """
        if self.kind == "exponential":
            return self.sample(rng)
        if self.kind == "lognormal":
            biased = self.a * math.exp(self.b**2) * math.exp(self.b * rng.gauss())
        elif self.kind == "uniform":
            biased = math.sqrt(self.a**2 + rng.random() * (self.b**2 - self.a**2))
        else:
            biased = self.a
        return rng.random() * biased

    def remaining(self, rng: random.Random, age: float) -> float:
        """remaining draws what is left of a duration that has lasted `age` so far: the
        duration given that it is longer than age, less age (inverse transform on the
        survival's tail, so a far tail is drawn as exactly as the body)."""
        if age <= 0:
            return self.sample(rng)
        if self.kind == "exponential":  # no memory
            return self.sample(rng)
        if self.kind == "lognormal":
            tail = self.survival(age) * (1.0 - rng.random())  # in (0, S(age)]
            if tail <= 0.0:  # past the floats' reach: it ends now
                return 0.0
            z = -NormalDist().inv_cdf(min(tail, 1.0 - 1e-16))  # P(Z > z) = tail
            return max(0.0, self.a * math.exp(self.b * z) - age)
        if self.kind == "uniform":
            return max(0.0, rng.uniform(max(self.a, age), max(self.b, age)) - age)
        return max(0.0, self.a - age)

    def describe(self) -> dict[str, str | float]:
        """describe is the TOML/JSON table this distribution is read from."""
        names = _PARAMETERS[self.kind]
        return {"distribution": self.kind} | dict(zip(names, (self.a, self.b), strict=False))


def distribution_option(text: str, option: str) -> Distribution:
    """distribution_option reads a command-line value: a number (fixed) or a TOML inline
    table in the worlds' grammar, e.g. '{ distribution = "lognormal", median = 3, sigma = 0.2 }'.
    """
    import tomllib

    try:
        value = tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        raise ConfigError(
            option,
            f"{text!r} is not a number or a TOML table",
            "write e.g. 2.5 or '{ distribution = \"lognormal\", median = 1.6, sigma = 0.25 }'",
        ) from None
    return parse_distribution(value, option)


def inline_table(distribution: Distribution) -> str:
    """inline_table is the distribution as distribution_option reads it.

    >>> inline_table(Distribution.lognormal(1500.0, 0.35))
    '{ distribution = "lognormal", median = 1500.0, sigma = 0.35 }'
    """
    fields = ", ".join(f"{k} = {v!r}" if k != "distribution" else f'{k} = "{v}"'
                       for k, v in distribution.describe().items())  # fmt: skip
    return "{ " + fields + " }"


def parse_distribution(value: object, where: str) -> Distribution:
    """parse_distribution reads a TOML table into a Distribution, or raises ConfigError."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _checked(Distribution.fixed(float(value)), where)
    if not isinstance(value, dict):
        raise ConfigError(where, "must be a number or a table", _example())
    kind = value.get("distribution", "fixed")
    if kind not in _PARAMETERS:
        raise ConfigError(
            f"{where}.distribution", f"unknown distribution {kind!r}", f"use one of {_kinds()}"
        )
    names = _PARAMETERS[kind]
    unknown = sorted(set(value) - {"distribution", *names})
    if unknown:
        fix = f"a {kind} distribution takes {', '.join(names)}"
        raise ConfigError(f"{where}.{unknown[0]}", "unknown key", fix)
    numbers = [_number(value, name, where) for name in names]
    return _checked(Distribution(kind, *numbers), where)


def _number(table: dict, name: str, where: str) -> float:
    if name not in table:
        raise ConfigError(f"{where}.{name}", "is missing", _example())
    number = table[name]
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise ConfigError(f"{where}.{name}", "must be a number", _example())
    return float(number)


def _checked(dist: Distribution, where: str) -> Distribution:
    if dist.a < 0 or dist.b < 0:
        raise ConfigError(where, "durations cannot be negative", "use values >= 0")
    if dist.kind == "uniform" and dist.b < dist.a:
        raise ConfigError(f"{where}.high", "is below low", "make high >= low")
    if dist.kind == "lognormal" and dist.a <= 0:
        raise ConfigError(f"{where}.median", "must be above 0", "use a positive median")
    return dist


def _kinds() -> str:
    return ", ".join(_PARAMETERS)


def _example() -> str:
    return 'write e.g. { distribution = "lognormal", median = 3.0, sigma = 0.25 }'
