"""Writes example.jsonl: a small match log to replay, made from a seed (never by hand).

    .venv/bin/python scenarios/replays/make_example.py [OUT]   # default: example.jsonl beside it

Three minutes of a matchmaker's output: matches form as a Poisson process at 3/s with a
rush at 10/s in the second minute, in three regions; each match names 2 to 8 players,
as public IP addresses of their country (the blocks the emulator locates) or as
coordinates near a city; one match in five is a fleet deploy.
"""

from __future__ import annotations

import ipaddress
import random
import sys
from pathlib import Path

import orjson

from geo import country_ipv4_blocks

SEED = 2026
SECONDS = 180
REGIONS = {
    "north-america": (["US", "CA"], [(41.8781, -87.6298), (45.5017, -73.5673)]),
    "europe": (["DE", "FR", "GB"], [(50.1109, 8.6821), (48.8566, 2.3522), (51.5072, -0.1276)]),
    "asia": (["JP", "SG"], [(35.6762, 139.6503), (1.3521, 103.8198)]),
}


def rate_at(t: float) -> float:
    return 10.0 if 60 <= t < 120 else 3.0


def player(rng: random.Random, country: str, city: tuple[float, float]):
    """player is an address of the country, or a position near the city (the players of a
    match come from one country and city, as a matchmaker's region pools them)."""
    if rng.random() < 0.6:
        firsts, sizes = country_ipv4_blocks()[country]
        block = rng.randrange(len(firsts))
        return str(ipaddress.IPv4Address(firsts[block] + rng.randrange(sizes[block])))
    return [round(coordinate + rng.uniform(-0.2, 0.2), 5) for coordinate in city]


def matches(rng: random.Random):
    t = 0.0
    while True:
        t += rng.expovariate(10.0)  # thinning: candidates at the top rate, kept by the rate
        if t >= SECONDS:
            return
        if rng.random() < rate_at(t) / 10.0:
            region = rng.choice(list(REGIONS))
            countries, cities = REGIONS[region]
            index = rng.randrange(len(countries))
            country, city = countries[index], cities[min(index, len(cities) - 1)]
            players = [player(rng, country, city) for _ in range(rng.randint(2, 8))]
            yield {"t": round(t, 3), "players": players, "region": region,
                   "fleet": rng.random() < 0.2}  # fmt: skip


if __name__ == "__main__":
    rng = random.Random(SEED)
    lines = [orjson.dumps(match) for match in matches(rng)]
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("example.jsonl")
    out.write_bytes(b"\n".join(lines) + b"\n")
    print(f"{out}: {len(lines)} matches over {SECONDS} s")
