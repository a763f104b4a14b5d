"""Positions on the globe: great-circle geometry, and where an IP address is (public API).

The traffic generator uses this module too, so that an address it makes for a country
is placed in that country by the emulator: both read the same data.

IP addresses are located with geoip2fast's bundled data (IPv4 and IPv6 in one
file) to a country, and the country to its geographic centre as published by
countryinfo. Both ship their data inside the package: nothing is downloaded.
"""

from __future__ import annotations

import functools
import ipaddress
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import numpy as np

EARTH_RADIUS_KM = 6371.0088

# geoip2fast's file with both address families; its module keeps one database
# per process, so every lookup in edgebench goes through `ip_country` below.
GEOIP_DATA_FILE = "geoip2fast-ipv6.dat.gz"


class Position(NamedTuple):
    """Position is a point on the globe in decimal degrees (a tuple: cheap to make per player)."""

    latitude: float
    longitude: float

    def unit_vector(self) -> tuple[float, float, float]:
        lat, lon = math.radians(self.latitude), math.radians(self.longitude)
        return (math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat))


def great_circle_km(a: Position, b: Position) -> float:
    """great_circle_km is the haversine distance between two positions."""
    lat1, lat2 = math.radians(a.latitude), math.radians(b.latitude)
    dlat = lat2 - lat1
    dlon = math.radians(b.longitude - a.longitude)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


_UNIT_VECTORS: dict[Position, tuple[float, float, float]] = {}
UNIT_VECTORS_KEPT = 1_000_000


def _unit_vector(point: Position) -> tuple[float, float, float]:
    if len(_UNIT_VECTORS) >= UNIT_VECTORS_KEPT:
        _UNIT_VECTORS.clear()
    vector = _UNIT_VECTORS[point] = Position(*point).unit_vector()
    return vector


def centre(positions: Iterable[Position]) -> Position | None:
    """centre is the spherical mean of positions: the players' centre of gravity.

    >>> middle = centre([Position(0, 10), Position(0, 20)])
    >>> round(middle.latitude, 6), round(middle.longitude, 6)
    (0.0, 15.0)
    """
    points = list(positions)
    if len(points) <= 1:
        return points[0] if points else None
    x = y = z = 0.0
    # This runs for every request; players come back, so their vectors are remembered.
    vectors, unit = _UNIT_VECTORS, _unit_vector
    for point in points:
        px, py, pz = vectors.get(point) or unit(point)
        x += px
        y += py
        z += pz
    norm = math.sqrt(x * x + y * y + z * z)
    if norm < 1e-9:
        # Antipodal players have no centre; the first player's position decides.
        return points[0]
    return Position(math.degrees(math.asin(z / norm)), math.degrees(math.atan2(y, x)))


ANTIPODAL = object()  # centres(): a row with no mean direction, which centre() decides


def centres(vectors: np.ndarray) -> list[Position | object | None]:
    """centres is centre() of many parties at once, from their players' unit vectors.

    vectors has a row of players per party, each a unit vector, NaN where a player could
    not be located or the row has no player in that column. A row whose vectors cancel
    out is ANTIPODAL: centre() of its positions says which player decides. A row of one
    player may differ from that player's position in the last bits of a float.

    >>> import numpy
    >>> vectors = numpy.array([[Position(0, 10).unit_vector(), Position(0, 20).unit_vector()]])
    >>> [round(value, 6) for value in centres(vectors)[0]]
    [0.0, 15.0]
    """
    import numpy as np

    located = ~np.isnan(vectors[:, :, 0])
    x, y, z = np.where(located[:, :, None], vectors, 0.0).sum(axis=1).T
    norm = np.sqrt(x * x + y * y + z * z)
    with np.errstate(divide="ignore", invalid="ignore"):
        latitude = np.degrees(np.arcsin(z / norm)).tolist()
    longitude = np.degrees(np.arctan2(y, x)).tolist()
    rows = zip(latitude, longitude, norm.tolist(), located.any(axis=1).tolist(), strict=True)
    result: list[Position | object | None] = []
    for lat, lon, length, seen in rows:
        if not seen:
            result.append(None)
        elif length < 1e-9:
            result.append(ANTIPODAL)
        else:
            result.append(Position(lat, lon))
    return result


@functools.cache
def _geoip() -> Any:  # geoip2fast ships no types
    from geoip2fast import GeoIP2Fast

    return GeoIP2Fast(verbose=False, geoip2fast_data_file=GEOIP_DATA_FILE)


# Territories geoip2fast knows and countryinfo lacks (centres from their capitals).
_TERRITORIES = {
    "AQ": Position(-75.0, 0.0),
    "AX": Position(60.1, 19.94),
    "BL": Position(17.9, -62.83),
    "BQ": Position(12.18, -68.25),
    "BV": Position(-54.43, 3.38),
    "CW": Position(12.17, -68.99),
    "MF": Position(18.08, -63.05),
    "SX": Position(18.04, -63.07),
    "TC": Position(21.75, -71.58),
    "UM": Position(19.3, 166.6),
    "VG": Position(18.43, -64.62),
    "VI": Position(18.34, -64.93),
    "XK": Position(42.6, 20.9),
}


@functools.cache
def country_positions() -> dict[str, Position]:
    """country_positions maps ISO 3166 alpha-2 codes to each country's centre."""
    from countryinfo import all_countries

    positions = dict(_TERRITORIES)
    for country in all_countries():
        latlng = country.latlng()
        code = (country.iso() or {}).get("alpha2")
        if code and latlng and len(latlng) == 2:
            positions[code.upper()] = Position(float(latlng[0]), float(latlng[1]))
    return positions


@functools.cache
def country_names() -> dict[str, str]:
    """country_names maps ISO alpha-2 codes to English names ("CA" -> "Canada")."""
    from countryinfo import all_countries

    names = {}
    for country in all_countries():
        code = (country.iso() or {}).get("alpha2")
        if code and country.name():
            names[code.upper()] = country.name()
    return names


@functools.cache
def country_alpha3() -> dict[str, str]:
    """country_alpha3 maps ISO 3166 alpha-3 codes to alpha-2 ("DEU" -> "DE")."""
    from countryinfo import all_countries

    codes = {}
    for country in all_countries():
        iso = country.iso() or {}
        if iso.get("alpha3") and iso.get("alpha2"):
            codes[iso["alpha3"].upper()] = iso["alpha2"].upper()
    return codes


@functools.cache
def country_regions() -> dict[str, str]:
    """country_regions maps ISO alpha-2 codes to countryinfo's region (continent)."""
    from countryinfo import all_countries

    regions = {}
    for country in all_countries():
        code = (country.iso() or {}).get("alpha2")
        if code:
            regions[code.upper()] = country.region() or ""
    return regions


def warm_up() -> None:
    """warm_up loads the IP and country data now, so no request pays for it."""
    _geoip()
    country_positions()


def is_public_address(text: str) -> bool:
    """is_public_address is true for a globally routable unicast IPv4 or IPv6 address."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return address.is_global and not address.is_multicast


@functools.lru_cache(maxsize=65536)
def ip_country(text: str) -> str | None:
    """ip_country is the ISO alpha-2 code geoip2fast gives an address, or None."""
    if not is_public_address(text):
        return None
    code = _geoip().lookup(text).country_code
    return code if len(code) == 2 and code.isalpha() else None


def locate_ip(text: str) -> Position | None:
    """locate_ip is the centre of the address's country, or None when unknown."""
    code = ip_country(text)
    return country_positions().get(code) if code else None


@functools.lru_cache(maxsize=65536)
def parse_and_locate_ip(text: str) -> tuple[bool, Position | None]:
    """parse_and_locate_ip is (is it an IP address at all, where its country is)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False, None
    return True, locate_ip(text)


def geoip_country_codes() -> list[str]:
    """geoip_country_codes lists the ISO codes geoip2fast's data can answer with."""
    _geoip()
    from geoip2fast import geoip2fast as data

    codes = (name.split(":")[0] for name in data.mainListNamesCountry)
    return sorted(code for code in codes if len(code) == 2 and code.isalpha())


@functools.cache
def country_ipv4_blocks() -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
    """country_ipv4_blocks maps ISO codes to their IPv4 blocks: (first addresses, sizes).

    Read from geoip2fast's own tables (pinned by the lock file), so every address
    in a block geolocates to that block's country here and in the emulator.
    """
    _geoip()
    from geoip2fast import geoip2fast as data

    names = [name.split(":")[0] for name in data.mainListNamesCountry]
    firsts: dict[str, list[int]] = {}
    sizes: dict[str, list[int]] = {}
    tables = zip(
        data.mainListFirstIP, data.mainListNetlength, data.mainListIDCountryCodes, strict=True
    )
    for first_ips, prefix_lengths, country_ids in tables:
        for first, prefix, country_id in zip(first_ips, prefix_lengths, country_ids, strict=True):
            code = names[country_id]
            if first < 2**32 and prefix <= 32 and len(code) == 2 and code.isalpha():
                firsts.setdefault(code, []).append(first)
                sizes.setdefault(code, []).append(2 ** (32 - prefix))
    return {code: (tuple(firsts[code]), tuple(sizes[code])) for code in firsts}
