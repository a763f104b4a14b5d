"""Realistic players: IP addresses from their country's real blocks, coordinates near cities.

Addresses are drawn from the IPv4 blocks geoip2fast assigns to each country (the
data the emulator locates players with), so an address made for Brazil is
placed in Brazil. Private, reserved and multicast ranges carry their own labels
in that data, not a country's, so they are never drawn (tests/test_players.py
checks samples of every kind).
Coordinates scatter uniformly within `jitter_km` of a city (or of the country's
centre when a region lists only countries). All draws come from the caller's
seeded random source.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import random
import socket
from dataclasses import dataclass

from emulator.geo import EARTH_RADIUS_KM, Position, country_ipv4_blocks, country_positions


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

    def address(self, rng: random.Random) -> str | None:
        """address is an address of the country's, or None if it has no block."""
        if not self.cumulative:
            return None
        point = int(rng.random() * self.cumulative[-1])
        block = bisect.bisect_right(self.cumulative, point)
        offset = point - (self.cumulative[block - 1] if block else 0)
        return socket.inet_ntoa((self.firsts[block] + offset).to_bytes(4, "big"))


def scatter(centre: Position, radius_km: float, rng: random.Random) -> Position:
    """scatter is a point drawn uniformly from the disc of radius_km around centre."""
    distance = radius_km * math.sqrt(rng.random()) / EARTH_RADIUS_KM
    bearing = rng.uniform(0, 2 * math.pi)
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
    """RegionPlayers makes the users of one scenario region."""

    def __init__(self, region) -> None:
        self.region = region
        countries = region.countries or sorted({city.country for city in region.cities})
        self._blocks = [CountryBlocks.of(code) for code in countries]
        self._blocks = [blocks for blocks in self._blocks if blocks.cumulative]
        self._places = [Position(c.latitude, c.longitude) for c in region.cities] or [
            country_positions()[code] for code in region.countries
        ]

    def user(self, rng: random.Random) -> dict:
        """user is one `users[]` item: an ip_address user or a geo_coordinates user."""
        if self._blocks and rng.random() < self.region.ip_share:
            address = rng.choice(self._blocks).address(rng)
            if address is not None:
                return {"user_type": "ip_address", "user_data": {"ip_address": address}}
        position = scatter(rng.choice(self._places), self.region.jitter_km, rng)
        return {
            "user_type": "geo_coordinates",
            "user_data": {"latitude": position.latitude, "longitude": position.longitude},
        }


class PlayerFactory:
    """PlayerFactory picks a region by weight, then a party of players from it."""

    def __init__(self, scenario) -> None:
        self.regions = [RegionPlayers(region) for region in scenario.regions]
        self._region_weights = list(itertools.accumulate(r.weight for r in scenario.regions))
        players = scenario.players
        self._sizes = players.sizes
        self._size_weights = list(itertools.accumulate(players.weights or [1] * len(players.sizes)))

    def party(self, rng: random.Random) -> tuple[str, list[dict]]:
        """party is (region name, users) for one request."""
        region = self.regions[_weighted_index(self._region_weights, rng)]
        size = self._sizes[_weighted_index(self._size_weights, rng)]
        return region.region.name, [region.user(rng) for _ in range(size)]


def _weighted_index(cumulative: list[float], rng: random.Random) -> int:
    """_weighted_index draws an index by cumulative weights (random.choices, minus its overhead)."""
    return bisect.bisect_right(cumulative, rng.random() * cumulative[-1])
