"""Parties in bulk: what PayloadPlan.party draws for each arrival, for thousands at once.

A simulated day is millions of matches, and drawing each party in Python costs more than
the platform's whole placement. Every draw of a party comes from the arrival's own
splitmix64 stream (edgebench.plan.draws), so a block of arrivals can be drawn with numpy:
the same 64-bit integers, the same doubles, the same choices as PayloadPlan.party makes
one by one (tests/test_simulate.py compares them). The few parties whose first draws name
the same player twice, which the one-by-one loop draws again, are drawn one by one.

A party comes out as the players' centre (the spherical mean of their unit vectors; each
population player is located once, by the emulator's own users[] check), with its
endpoint, region, size and kind: what the platform's placement reads of a body.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import orjson

from edgebench.plan.draws import _GOLDEN, _MASK64, hash64
from edgebench.plan.payloads import DEPLOY, FLEET_DEPLOY, PayloadPlan
from edgebench.plan.schedule import POISSON_KEY, Arrival, Schedule
from emulator import locate_user
from geo import Position, centre

LCG_A, LCG_C = 6364136223846793005, 1442695040888963407
EXTRA_DRAWS = 1  # after the slots: whether the body asks for cached locations
UNLOCATED = np.array([np.nan, np.nan, np.nan])
ANTIPODAL = object()


@dataclass(frozen=True, slots=True)
class DrawnParty:
    """DrawnParty is one arrival's party as the platform reads it."""

    endpoint: str
    region: str
    players: int
    kind: str  # "deploy", "cached" or "fleet"
    centre: Position | None  # None: no player could be located


class BatchParties:
    """BatchParties draws the parties of blocks of arrivals, exactly as PayloadPlan does."""

    def __init__(self, plan: PayloadPlan) -> None:
        scenario = plan.scenario
        self.plan, self.seed = plan, scenario.seed
        players = plan.players
        self._regions = players.regions
        self._fixed_weights = np.array(players._region_weights, dtype=float)
        self._sizes = np.array(players._sizes)
        self._size_weights = np.array(players._size_weights, dtype=float)
        self._population = players._population
        self._draws = 2 + int(self._sizes.max()) + EXTRA_DRAWS
        self._fleet_share = scenario.mix.shares[1]
        self._cached_share = scenario.requests.require_cached_share
        self._forecast = _forecast_regions(scenario)
        # Each region's players' unit vectors, filled as they are first drawn (NaN: not yet).
        self._vectors = [np.full((self._population, 3), np.inf) for _ in self._regions]

    def parties(self, indices: np.ndarray, due_s: np.ndarray) -> list[DrawnParty]:
        """parties are the parties of arrivals `indices` due at run times `due_s`."""
        draws = unit_draws_matrix(self.seed, indices, self._draws)
        region = _weighted(self._region_cumulative(due_s), draws[:, 0])
        size = self._sizes[_weighted(self._size_weights, draws[:, 1])]
        slots = (draws[:, 2 : 2 + self._sizes.max()] * self._population).astype(np.int64)
        redraw = _repeats(slots, size)
        endpoints = self._endpoints(indices)
        cached = draws[np.arange(len(indices)), 2 + size] < self._cached_share
        centres = self._centres(region, size, slots)
        parties = []
        for row, index in enumerate(indices.tolist()):
            if redraw[row] or centres[row] is ANTIPODAL:
                parties.append(self.one(index, float(due_s[row])))
                continue
            endpoint = endpoints[row]
            kind = "fleet" if endpoint == FLEET_DEPLOY else "cached" if cached[row] else "deploy"
            name = self._regions[region[row]].region.name
            parties.append(DrawnParty(endpoint, name, int(size[row]), kind, centres[row]))
        return parties

    def one(self, index: int, due_s: float) -> DrawnParty:
        """one is a party drawn one by one (PayloadPlan.party), placed as the emulator does."""
        party = self.plan.party(index, due_s)
        located = (locate_user(orjson.loads(user)) for user in party.users)
        middle = centre([position for position in located if position is not None])
        return DrawnParty(party.endpoint, party.region, len(party.users), party.kind, middle)

    def _region_cumulative(self, due_s: np.ndarray) -> np.ndarray:
        """_region_cumulative is each arrival's regions' cumulative weights (rows)."""
        if self._forecast is None:
            return np.broadcast_to(self._fixed_weights, (len(due_s), len(self._fixed_weights)))
        times, start, columns = self._forecast
        at = start + due_s
        players = np.stack([np.interp(at, times, values) for values in columns], axis=1)
        total = players.sum(axis=1, keepdims=True)
        shares = np.divide(players, total, out=np.zeros_like(players), where=total > 0)
        cumulative = np.cumsum(shares, axis=1)
        cumulative[total[:, 0] <= 0] = self._fixed_weights
        return cumulative

    def _endpoints(self, indices: np.ndarray) -> list[str]:
        share = self._fleet_share
        if share in (0.0, 1.0):
            return [FLEET_DEPLOY if share else DEPLOY] * len(indices)
        fleet = hash64_array(self.seed, indices).astype(np.float64) / 2.0**64 < share
        return [FLEET_DEPLOY if f else DEPLOY for f in fleet.tolist()]

    def _centres(self, region, size, slots) -> list[Position | None]:
        """_centres are the parties' centres: the mean of their players' unit vectors."""
        width = slots.shape[1]
        taken = np.arange(width)[None, :] < size[:, None]
        vectors = np.zeros((len(region), width, 3))
        for number, table in enumerate(self._vectors):
            rows = region == number
            if not rows.any():
                continue
            wanted = slots[rows]
            self._locate(number, np.unique(wanted[taken[rows]]))
            vectors[rows] = table[wanted]
        vectors[~taken] = 0.0
        located = ~np.isnan(vectors[:, :, 0]) & taken
        x, y, z = np.where(located[:, :, None], vectors, 0.0).sum(axis=1).T
        norm = np.sqrt(x * x + y * y + z * z)
        with np.errstate(divide="ignore", invalid="ignore"):
            latitude = np.degrees(np.arcsin(z / norm)).tolist()
        longitude = np.degrees(np.arctan2(y, x)).tolist()
        centres = []
        for lat, lon, length, seen in zip(latitude, longitude, norm.tolist(),
                                          located.any(axis=1).tolist(), strict=True):  # fmt: skip
            if not seen:
                centres.append(None)
            elif length < 1e-9:
                centres.append(ANTIPODAL)  # geo.centre's rule for it is taken one by one
            else:
                centres.append(Position(lat, lon))
        return centres

    def _locate(self, number: int, slots: np.ndarray) -> None:
        """_locate fills in the unit vectors of the region's players not seen yet."""
        table = self._vectors[number]
        region = self._regions[number]
        for slot in slots[np.isinf(table[slots, 0])].tolist():
            vector = self._unit(locate_user(orjson.loads(region.player(slot))))
            table[slot] = UNLOCATED if vector is None else vector

    @staticmethod
    def _unit(position: Position | None):
        return None if position is None else position.unit_vector()


def hash64_array(seed: int, keys: np.ndarray) -> np.ndarray:
    """hash64_array is edgebench.plan.draws.hash64 of each key, as uint64."""
    with np.errstate(over="ignore"):
        z = np.uint64((seed * _GOLDEN) & _MASK64) + (
            keys.astype(np.uint64) + np.uint64(1)
        ) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def unit_draws_matrix(seed: int, keys: np.ndarray, count: int) -> np.ndarray:
    """unit_draws_matrix is the first `count` draws of unit_draws(seed, key) for each key."""
    state = hash64_array(seed, keys)
    draws = np.empty((len(keys), count))
    a, c = np.uint64(LCG_A), np.uint64(LCG_C)
    with np.errstate(over="ignore"):
        for column in range(count):
            state = state * a + c
            draws[:, column] = (state >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return draws


def _weighted(cumulative: np.ndarray, units: np.ndarray) -> np.ndarray:
    """_weighted is bisect_right(cumulative, unit * cumulative[-1]) for each row."""
    if cumulative.ndim == 1:
        return np.searchsorted(cumulative, units * cumulative[-1], side="right")
    points = units * cumulative[:, -1]
    return (cumulative <= points[:, None]).sum(axis=1)


def _repeats(slots: np.ndarray, size: np.ndarray) -> np.ndarray:
    """_repeats marks the rows whose first `size` slots name a player twice."""
    columns = np.arange(slots.shape[1])[None, :]
    unused = -1 - columns  # distinct and negative: never equal to a slot or each other
    ordered = np.sort(np.where(columns < size[:, None], slots, unused), axis=1)
    return (np.diff(ordered, axis=1) == 0).any(axis=1)


def _forecast_regions(scenario):
    """_forecast_regions is (times, the span's start, each scenario region's players) of a
    forecast with per-region columns, else None (the regions' fixed weights)."""
    if not (scenario.demand and scenario.demand.region_ccu):
        return None
    from edgebench.plan.forecast import Forecast

    forecast = Forecast.of(scenario)
    times = np.array(forecast.times, dtype=float)
    zeros = np.zeros(len(times))
    columns = [
        np.array(forecast.regions[r.name], dtype=float) if r.name in forecast.regions else zeros
        for r in scenario.regions
    ]
    return times, forecast.span[0], columns


def arrival_blocks(schedule: Schedule, size: int) -> Iterator[list[Arrival]]:
    """arrival_blocks are schedule.arrivals() of a single worker, `size` at a time, each block
    worked out with numpy: the same positions on the rate's integral (the same Poisson
    draws, summed in the same order), the same inversion to times, the same floats.

    A schedule whose guard spaces arrivals one after another (respect mode without a
    client's queue) or a replay is taken one by one from the schedule itself.
    """
    if schedule.replay or (schedule.limit is not None and schedule.guard):
        arrivals = schedule.arrivals()
        while block := list(itertools.islice(arrivals, size)):
            yield block
        return
    segments = [s for s in schedule.segments if s.duration_s > 0]
    totals = np.array([s.arrivals_by(s.end_s) for s in segments])
    index = 0
    for positions in _positions(schedule, size):
        which = np.searchsorted(totals, positions, side="left")
        kept = which < len(segments)  # past the last segment's total: the schedule is over
        due = np.empty(int(kept.sum()))
        rate = np.empty_like(due)
        for number in np.unique(which[kept]).tolist():
            rows = which[: len(due)] == number
            due[rows], rate[rows] = _times(segments[number], positions[: len(due)][rows])
        if schedule.tick_s:
            due = np.ceil(due / schedule.tick_s - 1e-9) * schedule.tick_s
        over = np.flatnonzero(due >= schedule.duration_s)
        end = int(over[0]) if len(over) else len(due)
        stages = [segments[n].stage for n in which[:end].tolist()]
        block = list(map(Arrival._make, zip(range(index, index + end), due[:end].tolist(),
                                            stages, rate[:end].tolist(), strict=True)))  # fmt: skip
        if block:
            yield block
        index += end
        if end < len(positions):
            return


def _times(segment, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """_times are Segment.time_of and rate_at for many positions, in the same operations."""
    due = n - segment.arrivals_before
    rs = segment.rate_start
    slope = (segment.rate_end - rs) / segment.duration_s
    if abs(slope) < 1e-12:
        t = segment.start_s + due / rs
    else:
        root = np.sqrt(np.maximum(0.0, rs**2 + 2 * slope * due))
        t = segment.start_s + 2 * due / (rs + root)
    t = np.maximum(segment.start_s, t)
    share = (t - segment.start_s) / segment.duration_s
    return t, rs + (segment.rate_end - rs) * share


def _positions(schedule: Schedule, size: int) -> Iterator[np.ndarray]:
    """_positions are Schedule._positions a block at a time."""
    if schedule.arrivals_kind == "uniform":
        for first in itertools.count(0, size):
            yield np.arange(first, first + size, dtype=np.float64) + 0.5
    powers, offsets = _jumps(size)
    state = np.uint64(hash64(schedule.seed, POISSON_KEY))
    total = 0.0
    with np.errstate(over="ignore"):
        while True:
            states = powers * state + offsets
            units = (states >> np.uint64(11)).astype(np.float64) * 2.0**-53
            gaps = np.array([-math.log(1.0 - u) for u in units.tolist()])  # math.log: the same
            gaps[0] += total
            positions = np.cumsum(gaps)  # in order, as itertools.accumulate adds
            total, state = float(positions[-1]), states[-1]
            yield positions


@functools.cache
def _jumps(size: int) -> tuple[np.ndarray, np.ndarray]:
    """_jumps are the LCG's multipliers and offsets 1..size steps ahead (mod 2**64)."""
    powers, offsets, a, c = [], [], 1, 0
    for _ in range(size):
        a, c = (a * LCG_A) & _MASK64, (c * LCG_A + LCG_C) & _MASK64
        powers.append(a)
        offsets.append(c)
    return np.array(powers, dtype=np.uint64), np.array(offsets, dtype=np.uint64)
