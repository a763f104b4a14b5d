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
    probes: list[Probe] = field(default_factory=list)

    def run(self) -> float | None:
        """run is the best value that passed (None: none did within the bounds and probes)."""
        passing, failing = self._bracket()
        if passing is None:
            return None
        while failing is not None and not self._narrow_enough(passing, failing):
            if len(self.probes) >= self.max_probes:
                break
            middle = self._middle(passing, failing)
            if middle in (passing, failing):
                break
            if self._try(middle).passed:
                passing = middle
            else:
                failing = middle
        return passing

    def _bracket(self) -> tuple[float | None, float | None]:
        """_bracket steps from start until a passing and a failing value are known."""
        value = self._valid(self.start)
        first = self._try(value)
        passing, failing = (value, None) if first.passed else (None, value)
        toward_fail = self.step if self.wants == "higher" else 1 / self.step
        step = toward_fail if first.passed else 1 / toward_fail
        while (passing is None or failing is None) and len(self.probes) < self.max_probes:
            value = self._valid(self._stepped(value, step))
            if value == self.probes[-1].value or not self._in_bounds(value):
                break
            if self._try(value).passed:
                passing = value
            else:
                failing = value
        return passing, failing

    def _stepped(self, value: float, step: float) -> float:
        """_stepped is the next value to bracket with: doubled or halved (whole numbers move
        by one at least, so 0 and 1 slots are not stuck)."""
        if not self.whole:
            return value * step
        return max(value * step, value + 1) if step > 1 else min(value * step, value - 1)

    def _try(self, value: float) -> Probe:
        result = self.probe(value)
        self.probes.append(result)
        return result

    def _middle(self, passing: float, failing: float) -> float:
        middle = (passing + failing) / 2
        if self.whole:
            middle = math.floor(middle) if self.wants == "higher" else math.ceil(middle)
        return middle

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
