"""Realistic players: IP addresses from their country's real blocks, coordinates near cities.

Addresses are drawn from the IPv4 blocks geoip2fast assigns to each country (the
data the emulator locates players with), so an address made for Brazil is
placed in Brazil. Private, reserved and multicast ranges carry their own labels
in that data, not a country's, so they are never drawn (tests/test_players.py
checks samples of every kind).
Coordinates scatter uniformly within `jitter_km` of a city (or of the country's
centre when a region lists only countries).

Each region has a population of distinct players (`players.population`), and a
request's party is drawn from it, so players come back for more matches as in
a live game. Player j of a region is made from a stream of draws keyed by
(seed, region, j) (edgebench.plan.draws) the first time it is drawn, and kept as
its JSON: the same player whichever request, process or worker draws it first.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import orjson

from edgebench.plan.draws import hash64, unit_draws
from geo import EARTH_RADIUS_KM, Position, country_ipv4_blocks, country_positions

if TYPE_CHECKING:
    import numpy as np

    from edgebench.plan._schema import Region, Scenario

Draw = Callable[[], float]  # a float in [0, 1) per call, from a seeded stream
Item = TypeVar("Item")


class PartyDraws(NamedTuple):
    """PartyDraws are PlayerFactory.party's choices for many arrivals (party_draws)."""

    regions: np.ndarray  # each row's region: its index in PlayerFactory.regions
    sizes: np.ndarray  # each row's party size
    slots: np.ndarray  # each row's players: the first `size` columns are its slots
    redraw: np.ndarray  # the rows whose first draws name a player twice: party() draws again


@dataclass(frozen=True, slots=True)
class CountryBlocks:
    """CountryBlocks draws addresses from a country's blocks, weighted by block size."""

    code: str
    firsts: tuple[int, ...]
    cumulative: tuple[int, ...]

    @classmethod
    def of(cls, code: str) -> CountryBlocks:
        firsts, sizes = country_ipv4_blocks().get(code, ((), ()))
        return cls(code, firsts, tuple(itertools.accumulate(sizes)))

    def address(self, draw: Draw) -> str | None:
        """address is an address of the country's, or None if it has no block."""
        if not self.cumulative:
            return None
        point = int(draw() * self.cumulative[-1])
        block = bisect.bisect_right(self.cumulative, point)
        offset = point - (self.cumulative[block - 1] if block else 0)
        return socket.inet_ntoa((self.firsts[block] + offset).to_bytes(4, "big"))


def scatter(centre: Position, radius_km: float, draw: Draw) -> Position:
    """scatter is a point drawn uniformly from the disc of radius_km around centre."""
    distance = radius_km * math.sqrt(draw()) / EARTH_RADIUS_KM
    bearing = 2 * math.pi * draw()
    lon1, sin_lat1, cos_lat1 = _trig(centre)
    sin_d, cos_d = math.sin(distance), math.cos(distance)
    sin_lat2 = sin_lat1 * cos_d + cos_lat1 * sin_d * math.cos(bearing)
    lon2 = lon1 + math.atan2(math.sin(bearing) * sin_d * cos_lat1, cos_d - sin_lat1 * sin_lat2)
    longitude = (math.degrees(lon2) + 540) % 360 - 180
    return Position(round(math.degrees(math.asin(sin_lat2)), 6), round(longitude, 6))


@functools.lru_cache(maxsize=4096)
def _trig(centre: Position) -> tuple[float, float, float]:
    latitude = math.radians(centre.latitude)
    return math.radians(centre.longitude), math.sin(latitude), math.cos(latitude)


class RegionPlayers:
    """RegionPlayers makes the users of one scenario region, and keeps its population's."""

    def __init__(self, region: Region, seed: int = 0) -> None:
        self.region = region
        self._seed = seed
        self._population: dict[int, bytes] = {}
        countries = region.countries or sorted({city.country for city in region.cities})
        self._blocks = [CountryBlocks.of(code) for code in countries]
        self._blocks = [blocks for blocks in self._blocks if blocks.cumulative]
        self._places = [Position(c.latitude, c.longitude) for c in region.cities] or [
            country_positions()[code] for code in region.countries
        ]

    def user(self, draw: Draw) -> dict[str, Any]:
        """user is one `users[]` item: an ip_address user or a geo_coordinates user."""
        if self._blocks and draw() < self.region.ip_share:
            address = _pick(self._blocks, draw).address(draw)
            if address is not None:
                return {"user_type": "ip_address", "user_data": {"ip_address": address}}
        position = scatter(_pick(self._places, draw), self.region.jitter_km, draw)
        return {
            "user_type": "geo_coordinates",
            "user_data": {"latitude": position.latitude, "longitude": position.longitude},
        }

    def player(self, slot: int) -> bytes:
        """player is the JSON `users[]` item of the population's player `slot`."""
        player = self._population.get(slot)
        if player is None:
            draw = unit_draws(self._seed, slot).__next__
            # orjson's bytes keep its 4 KiB write buffer allocated: a copy of the exact size
            # is what a population of 10,000 a region can afford to keep (40 MB otherwise).
            player = memoryview(orjson.dumps(self.user(draw))).tobytes()
            self._population[slot] = player
        return player


class PlayerFactory:
    """PlayerFactory picks a region by weight, then a party of distinct players from it."""

    def __init__(self, scenario: Scenario) -> None:
        self.regions = [
            RegionPlayers(region, _region_seed(scenario.seed, number))
            for number, region in enumerate(scenario.regions)
        ]
        self.region_weights = list(itertools.accumulate(r.weight for r in scenario.regions))
        players = scenario.players
        self._sizes = players.sizes
        self._size_weights = list(itertools.accumulate(players.weights or [1] * len(players.sizes)))
        self.population = players.population
        self.most_players = max(self._sizes)

    def party(
        self, draw: Draw, region_weights: list[float] | None = None
    ) -> tuple[str, list[bytes]]:
        """party is (region name, its players' JSON) for a request; draw() is a float in [0, 1).

        region_weights (cumulative, in the scenario's order) replace the regions' own
        weights: a forecast's regions move over the day.
        """
        weights = region_weights or self.region_weights
        region = self.regions[_weighted_index(weights, draw())]
        size = self._sizes[_weighted_index(self._size_weights, draw())]
        slots: list[int] = []
        while len(slots) < size:
            slot = int(draw() * self.population)
            if slot not in slots:
                slots.append(slot)
        return region.region.name, [region.player(slot) for slot in slots]

    def party_draws(self, draws: np.ndarray, region_weights: np.ndarray | None) -> PartyDraws:
        """party_draws is party() for many arrivals at once: row i of draws holds the first
        draws of an arrival's stream (2 + most_players of them, edgebench.plan.draws'
        unit_draws_matrix), row i of region_weights its regions' cumulative weights (None:
        the regions' own). A row to redraw is drawn one by one with party()."""
        import numpy as np

        weights = np.array(self.region_weights) if region_weights is None else region_weights
        regions = _weighted_indices(weights, draws[:, 0])
        sizes = np.array(self._sizes)[_weighted_indices(np.array(self._size_weights), draws[:, 1])]
        slots = (draws[:, 2 : 2 + self.most_players] * self.population).astype(np.int64)
        return PartyDraws(regions, sizes, slots, _repeats(slots, sizes))


def _region_seed(seed: int, number: int) -> int:
    return hash64(seed, -1 - number)  # apart from the arrivals' streams (keys >= 0)


def _pick(items: list[Item], draw: Draw) -> Item:
    return items[int(draw() * len(items))]


def _weighted_index(cumulative: list[float], unit: float) -> int:
    """_weighted_index is the index that unit (in [0, 1)) falls on by cumulative weights."""
    return bisect.bisect_right(cumulative, unit * cumulative[-1])


def _weighted_indices(cumulative: np.ndarray, units: np.ndarray) -> np.ndarray:
    """_weighted_indices is _weighted_index of each unit: by one set of cumulative weights,
    or by a row of them for each unit."""
    import numpy as np

    if cumulative.ndim == 1:
        return np.asarray(np.searchsorted(cumulative, units * cumulative[-1], side="right"))
    points = units * cumulative[:, -1]
    return np.asarray((cumulative <= points[:, None]).sum(axis=1))


def _repeats(slots: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """_repeats marks the rows whose first `size` slots name a player twice."""
    import numpy as np

    columns = np.arange(slots.shape[1])[None, :]
    unused = -1 - columns  # distinct and negative: never equal to a slot or each other
    ordered = np.sort(np.where(columns < sizes[:, None], slots, unused), axis=1)
    return np.asarray((np.diff(ordered, axis=1) == 0).any(axis=1))
