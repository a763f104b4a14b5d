"""Finding the knee: bracket, then bisect, a value against checks that hold on one side of it.

The search is pure: `probe(value)` runs whatever a value means (a simulation, a live run)
and says whether every check held. Two shapes of question:

- "higher": the highest value that passes (an offered rate: the checks hold below the knee);
- "lower": the lowest value that passes (a capacity: the checks hold above the knee).

    search = Knee(probe, start=1.0, wants="higher", precision=0.02, max_probes=12)
    answer = search.run()   # the best passing value, or None when even the floor fails

From `start`, the search steps by doubling (or halving) until the verdict flips, so the
knee is bracketed between a passing and a failing value, then halves that bracket until
its width is within `precision` of the passing end (or one unit, for whole numbers).
With `jobs` > 1 and `probe_many`, each round probes `jobs` values at once: the bracket's
next steps, then `jobs` points splitting the bracket in `jobs + 1` (k-section).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Probe:
    """Probe is one value tried: whether every check held, and what it measured."""

    value: float
    passed: bool
    metrics: dict = field(default_factory=dict)


@dataclass
class Knee:
    """Knee searches one value; `probes` keeps every one tried, in order."""

    probe: Callable[[float], Probe]
    start: float
    wants: str  # "higher" or "lower"
    precision: float = 0.02  # relative width of the final bracket
    max_probes: int = 12
    whole: bool = False  # whole numbers only (slots on a host or at a city)
    floor: float = 0.0  # the least value the question allows (exclusive for fractions)
    ceiling: float = math.inf
    step: float = 2.0  # how far each bracketing probe moves: x2 (or /2), or nearer from a guess
    jobs: int = 1  # probes a round: with more than one, k-section instead of bisection
    probe_many: Callable[[list[float]], list[Probe]] | None = None  # several probes at once
    probes: list[Probe] = field(default_factory=list)

    def run(self) -> float | None:
        """run is the best value that passed (None: none did within the bounds and probes)."""
        passing, failing = self._bracket()
        if passing is None:
            return None
        while failing is not None and not self._narrow_enough(passing, failing):
            inside = self._inside(passing, failing)[: self.max_probes - len(self.probes)]
            if not inside:
                break
            # Monotone: from the passing end, values pass until the first that fails.
            for result in self._try_many(inside):
                if not result.passed:
                    failing = result.value
                    break
                passing = result.value
        return passing

    def _inside(self, passing: float, failing: float) -> list[float]:
        """_inside are the values to try within the bracket, from the passing end: its
        middle (bisection), or with `jobs` probes at once its k-section."""
        if self.jobs <= 1:
            values = [self._middle(passing, failing)]
        else:
            k = self.jobs + 1
            values = [self._rounded(passing + (failing - passing) * i / k) for i in range(1, k)]
        tried = {p.value for p in self.probes}
        return list(dict.fromkeys(v for v in values if v not in (passing, failing, *tried)))

    def _bracket(self) -> tuple[float | None, float | None]:
        """_bracket steps from start until a passing and a failing value are known: one
        value a round, or `jobs` values a round (start, then further the same way)."""
        toward_fail = self.step if self.wants == "higher" else 1 / self.step
        value = self._valid(self.start)
        results = self._try_many(self._chain(value, toward_fail, include=True))
        passing, failing = self._walked(results, None, None, toward_fail, toward_fail)
        step = toward_fail if results[0].passed else 1 / toward_fail
        if not results[0].passed:
            results = results[:1]  # the speculative steps went the wrong way
        while (passing is None or failing is None) and len(self.probes) < self.max_probes:
            chain = self._chain(results[-1].value, step)
            if not chain:
                break
            results = self._try_many(chain)
            passing, failing = self._walked(results, passing, failing, step, toward_fail)
        return passing, failing

    def _chain(self, value: float, step: float, include: bool = False) -> list[float]:
        """_chain is up to `jobs` values stepping from value (value itself first if asked),
        within bounds, none tried before, no more than the probes left."""
        chain = [value] if include else []
        left = self.max_probes - len(self.probes)
        while len(chain) < min(self.jobs, left):
            value = self._valid(self._stepped(value, step))
            tried = {p.value for p in self.probes}
            if value in chain or value in tried or not self._in_bounds(value):
                break
            chain.append(value)
        return chain

    @staticmethod
    def _walked(results, passing, failing, step: float, toward_fail: float):
        """_walked reads a round stepping one way: toward failure, the passing values move
        the passing end out until one fails; toward passing, the failing end moves until
        one passes."""
        for result in results:
            if result.passed:
                passing = result.value
                if step != toward_fail:
                    break
            else:
                failing = result.value
                if step == toward_fail:
                    break
        return passing, failing

    def _stepped(self, value: float, step: float) -> float:
        """_stepped is the next value to bracket with: doubled or halved (whole numbers move
        by one at least, so 0 and 1 slots are not stuck)."""
        if not self.whole:
            return value * step
        return max(value * step, value + 1) if step > 1 else min(value * step, value - 1)

    def _try_many(self, values: list[float]) -> list[Probe]:
        """_try_many probes the values (at once, with probe_many) and keeps the results."""
        if self.probe_many is not None and len(values) > 1:
            results = self.probe_many(values)
        else:
            results = [self.probe(value) for value in values]
        self.probes.extend(results)
        return results

    def _middle(self, passing: float, failing: float) -> float:
        return self._rounded((passing + failing) / 2)

    def _rounded(self, value: float) -> float:
        """_rounded is a value within the bracket, whole when the question is (toward the
        failing end: floor for "higher", ceiling for "lower")."""
        if self.whole:
            return float(math.floor(value) if self.wants == "higher" else math.ceil(value))
        return value

    def _narrow_enough(self, passing: float, failing: float) -> bool:
        width = abs(failing - passing)
        if self.whole:
            return width <= max(1.0, self.precision * passing)
        return width <= self.precision * passing

    def _valid(self, value: float) -> float:
        value = min(max(value, self.floor), self.ceiling)
        return float(round(value)) if self.whole else value

    def _in_bounds(self, value: float) -> bool:
        if self.whole:
            return self.floor <= value <= self.ceiling
        return self.floor < value <= self.ceiling


def cheapest(
    probe: Callable[[float], Probe],
    start: float,
    cost: Callable[[Probe], float],
    max_probes: int,
    ceiling: float = math.inf,
) -> list[Probe]:
    """cheapest walks whole values up from start (the least that passes: more only helps the
    checks) to the one of least cost, a cost that falls then rises (private hosts replace
    cloud deployments until they stand idle). It is every probe tried, the cheapest among
    the passing ones being the answer (probe: a value already tried comes back as it was).

    Up by a step that doubles while the cost falls, then thirds of the valley's bracket.
    """
    tried: dict[float, Probe] = {}

    def at(value: float) -> Probe:
        if value not in tried:
            tried[value] = probe(value)
        return tried[value]

    def worth(value: float) -> float:
        result = at(value)
        return cost(result) if result.passed else math.inf

    low, step = start, max(1.0, round(start * 0.1))
    high = min(ceiling, start + step)
    while len(tried) < max_probes and high > low and worth(high) < worth(low):
        low, step = high, step * 2
        high = min(ceiling, low + step)
    left = max(start, low - step / 2)  # the valley lies between the last fall's start and high
    while high - left > 2 and len(tried) + 2 <= max_probes:
        first, second = left + (high - left) // 3, high - (high - left) // 3
        if worth(first) <= worth(second):
            high = second
        else:
            left = first
    for value in range(int(left), int(high) + 1):
        if len(tried) >= max_probes:
            break
        worth(float(value))
    return list(tried.values())
