"""Match starts from a forecast of matches in progress: the renewal equation.

With M(t) / p matches in progress wanted at time t, S the survival of a match's length and
survivors(t) the matches already running at the forecast's start, the starts a(t) solve

    M(t) / p = survivors(t) + integral_0^t a(u) S(t - u) du

(../shared/notes/capacity-planning.md). Little's law, a = M / (p L), is its steady state; while
M grows the matchmaker must also start the matches that grow it, and when M falls faster than
matches end no start is made (a >= 0) and more matches run than the forecast has.

It is solved on a grid of `dt` seconds by forward substitution with the clamp at zero: starts
are at a constant rate within a cell, and a match started in a cell is still running m grid
points later with the probability w[m], the survival averaged over the cell's ages (exact for
any S: w[m] = (E[min(L, m dt)] - E[min(L, (m - 1) dt)]) / dt). Each column (a region) is its
own M(t), all solved at once.

    solution = solve(wanted, before, kernel, dt)   # numpy arrays; see Renewal.of
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

GRID_STEPS = 20_000  # the most cells of the grid over a whole forecast
STEPS_S = (1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0)  # the grid's step: the finest that fits
TAIL = 1e-7  # the kernel ends where a match's survival falls below this
EXCESS = 1e-6  # a point holds more than wanted when above it by this share (rounding aside)


@dataclass(frozen=True)
class Length:
    """Length is a match length's law: "lognormal" (median, sigma), "fixed" (value) or
    "exponential" (mean), in seconds."""

    kind: str
    a: float
    b: float = 0.0

    @classmethod
    def of(cls, table: dict[str, Any]) -> Length:
        """of reads a distribution table in the worlds' grammar (Demand.lifetime())."""
        kind = table["distribution"]
        if kind == "lognormal":
            return cls(kind, float(table["median"]), float(table["sigma"]))
        if kind == "exponential":
            return cls(kind, float(table["mean"]))
        return cls("fixed", float(table["value"]))

    @property
    def mean(self) -> float:
        if self.kind == "lognormal":
            return self.a * math.exp(self.b**2 / 2)
        return self.a

    def survival(self, x: float) -> float:
        """survival is the share of matches longer than x."""
        if x < 0:
            return 1.0
        if self.kind == "fixed":
            return 1.0 if x < self.a else 0.0
        if self.kind == "exponential":
            return math.exp(-x / self.a)
        if x == 0:
            return 1.0
        return 0.5 * math.erfc(math.log(x / self.a) / (self.b * math.sqrt(2)))

    def partial_mean(self, x: float) -> float:
        """partial_mean is E[min(L, x)], the integral of the survival from 0 to x.

        >>> round(Length("lognormal", 600, 0.3).partial_mean(1e6) / 600, 6)  # the mean
        1.046028
        >>> Length("fixed", 60).partial_mean(30), Length("fixed", 60).partial_mean(90)
        (30, 60)
        """
        if x <= 0:
            return 0.0
        if self.kind == "fixed":
            return min(self.a, x)
        if self.kind == "exponential":
            return self.a * -math.expm1(-x / self.a)
        z = (math.log(x / self.a) - self.b**2) / self.b
        return self.mean * 0.5 * math.erfc(-z / math.sqrt(2)) + x * self.survival(x)

    def longest(self) -> float:
        """longest is where the survival falls below TAIL: the kernel's reach."""
        if self.kind == "fixed":
            return self.a
        if self.kind == "exponential":
            return self.a * math.log(1 / TAIL)
        return self.a * math.exp(self.b * 5.2)  # 0.5 erfc(5.2 / sqrt 2) = 1e-7


def step_for(span_s: float) -> float:
    """step_for is the grid's step: the finest of STEPS_S with at most GRID_STEPS cells.

    >>> step_for(3600), step_for(86400), step_for(7 * 86400)
    (1.0, 5.0, 60.0)
    """
    return next((dt for dt in STEPS_S if span_s / dt <= GRID_STEPS), STEPS_S[-1])


def kernel(length: Length, dt: float, cells: int) -> np.ndarray:
    """kernel is w[0..K]: w[m] the survival averaged over ages ((m - 1) dt, m dt] (w[0] = 1),
    K the cells until the survival is below TAIL (at most `cells`)."""
    import numpy as np

    reach = min(cells, max(1, math.ceil(length.longest() / dt) + 1))
    partial = np.array([length.partial_mean(m * dt) for m in range(reach + 1)])
    weights = np.diff(partial) / dt
    return np.concatenate([[1.0], np.clip(weights, 0.0, 1.0)])


def before_start(first: np.ndarray, length: Length, dt: float, points: int) -> np.ndarray:
    """before_start are the survivors at each grid point of the matches running at the
    forecast's start (`first` of them, per column), started at the steady rate first / L:
    first x (1 - E[min(L, t)] / L)."""
    import numpy as np

    left = np.array([1.0 - length.partial_mean(i * dt) / length.mean for i in range(points)])
    survivors: np.ndarray = np.clip(left, 0.0, 1.0)[:, None] * first[None, :]
    return survivors


def solve(
    wanted: np.ndarray, before: np.ndarray, weights: np.ndarray, dt: float
) -> tuple[np.ndarray, np.ndarray]:
    """solve is (starts, held): the starts a second in each cell, (n, R), that hold `wanted`
    matches in progress at the n + 1 grid points (columns apart) on top of `before`, never
    negative, and the matches in progress they hold there (wanted, or more where the clamp
    bites): forward substitution of held[i] = before[i] + dt sum_j starts[j] w[i - j]."""
    import numpy as np

    points, columns = wanted.shape
    starts = np.zeros((points - 1, columns))
    held = before.copy()
    reach = len(weights) - 1
    unit = dt * weights[1]  # what one start a second in the last cell holds at the point
    scaled = np.ascontiguousarray(weights[:0:-1]) / weights[1]  # w[K], ..., w[1], over w[1]
    need = (wanted - before) / unit
    for i in range(1, points):
        low = max(0, i - reach)
        past = scaled[reach - i + low : reach - 1] @ starts[low : i - 1]
        now = np.maximum(need[i] - past, 0.0)
        starts[i - 1] = now
        held[i] += unit * (past + now)
    return starts, held


@dataclass(frozen=True)
class Renewal:
    """Renewal is a forecast's starts on a grid: per column (a region, or "all")."""

    start: float  # forecast time of the grid's first point
    dt: float
    names: tuple[str, ...]
    starts: np.ndarray  # (n, R) starts a second in cell k: [start + k dt, start + (k + 1) dt)
    wanted: np.ndarray  # (n + 1, R) the forecast's matches in progress at the grid points
    held: np.ndarray  # (n + 1, R) the solution's: wanted, or more where starts are 0
    weights: np.ndarray  # the kernel, w[0..K]
    steady: np.ndarray  # (R,) the starts a second that held the forecast's first matches
    total: np.ndarray  # (n,) the starts a second of every column, cell by cell

    @classmethod
    def of(
        cls,
        times: tuple[float, ...],
        columns: dict[str, np.ndarray],
        length: Length,
    ) -> Renewal:
        """of solves the renewal for matches in progress given at `times` (linear between
        them), one column a region."""
        import numpy as np

        start, end = times[0], times[-1]
        dt = step_for(end - start)
        cells = max(1, math.ceil((end - start) / dt - 1e-9))
        grid = start + dt * np.arange(cells + 1)
        wanted = np.stack([np.interp(grid, times, v) for v in columns.values()], axis=1)
        weights = kernel(length, dt, cells + 1)
        before = before_start(wanted[0], length, dt, cells + 1)
        starts, holds = solve(wanted, before, weights, dt)
        return cls(
            start=start,
            dt=dt,
            names=tuple(columns),
            starts=starts,
            wanted=wanted,
            held=holds,
            weights=weights,
            steady=wanted[0] / length.mean,
            total=starts.sum(axis=1),
        )

    @property
    def end(self) -> float:
        return self.start + self.dt * len(self.starts)

    def cell(self, t: float) -> int:
        """cell is the grid cell holding forecast time t (the first or last outside)."""
        return min(len(self.starts) - 1, max(0, int((t - self.start) // self.dt)))

    def cells(self, t: np.ndarray) -> np.ndarray:
        import numpy as np

        index = np.floor((t - self.start) / self.dt).astype(np.int64)
        return np.clip(index, 0, len(self.starts) - 1)

    def rate_at(self, t: float) -> float:
        """rate_at is the starts a second at forecast time t (before the forecast: none;
        past its end: its last cell's)."""
        return 0.0 if t < self.start else float(self.total[self.cell(t)])

    def in_progress_at(self, t: float) -> float:
        """in_progress_at is the matches the solution has running at forecast time t."""
        import numpy as np

        grid = self.start + self.dt * np.arange(len(self.held))
        return float(np.interp(t, grid, self.held.sum(axis=1)))

    def ages_at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """ages_at are the matches running at forecast time t by age: (counts (K, R), the
        ages' cells' lower ends (K,)): a cell's starts, or before the forecast the steady
        rate, times the chance they still run."""
        import numpy as np

        i = min(len(self.starts), max(0, round((t - self.start) / self.dt)))
        reach = len(self.weights) - 1
        ages = np.arange(1, reach + 1)  # m: started m cells before the point
        started = np.where(
            (i - ages >= 0)[:, None],
            self.starts[np.clip(i - ages, 0, max(0, len(self.starts) - 1))],
            self.steady[None, :],
        )
        counts = started * self.dt * self.weights[1:, None]
        return counts, (ages - 1) * self.dt

    def excess(self) -> list[tuple[float, float, float]]:
        """excess are the stretches where the solution holds more matches than wanted
        (players leave faster than matches end): (from, to, the most extra), forecast time."""
        import numpy as np

        extra = (self.held - self.wanted).sum(axis=1)
        over = extra > EXCESS * np.maximum(1.0, self.wanted.sum(axis=1)) + 1e-6
        stretches, index = [], np.flatnonzero(over)
        if not len(index):
            return []
        breaks = np.flatnonzero(np.diff(index) > 1)
        for first, last in zip(
            np.concatenate([[0], breaks + 1]), np.concatenate([breaks, [len(index) - 1]]),
            strict=True,
        ):  # fmt: skip
            a, b = int(index[first]), int(index[last])
            most = float(extra[a : b + 1].max())
            stretches.append((self.start + (a - 1) * self.dt, self.start + b * self.dt, most))
        return stretches
