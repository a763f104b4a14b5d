"""Seeded draws without a random generator per draw: splitmix64 streams and hashes.

Seeding a Mersenne Twister costs more than everything else a request body
needs; a splitmix64 hash of (seed, key) starting a 64-bit linear congruential
stream gives each key its own reproducible draws for a few integer operations.

    draw = unit_draws(seed, key).__next__
    draw()                      # a float in [0, 1), the same for (seed, key) every time
    unit_hash(seed, key)        # one such float, with no stream; hash64: its 64 bits
"""

from __future__ import annotations

from collections.abc import Iterator

_MASK64 = 2**64 - 1
_GOLDEN = 0x9E3779B97F4A7C15


def unit_draws(seed: int, key: int) -> Iterator[float]:
    """unit_draws is the endless stream of floats in [0, 1) of (seed, key).

    The stream starts at hash64(seed, key) and steps as Knuth's MMIX linear
    congruential generator, of which it keeps the high 53 bits (the low bits of
    such a generator are the weak ones).

    >>> a, b = unit_draws(1, 7), unit_draws(1, 7)
    >>> [next(a) for _ in range(3)] == [next(b) for _ in range(3)] != [next(unit_draws(1, 8))] * 3
    True
    """
    state = hash64(seed, key)
    while True:
        state = (state * 6364136223846793005 + 1442695040888963407) & _MASK64
        yield (state >> 11) * 2**-53


def unit_hash(seed: int, key: int) -> float:
    """unit_hash maps (seed, key) to [0, 1) evenly.

    >>> unit_hash(1, 2) == unit_hash(1, 2) != unit_hash(1, 3)
    True
    """
    return hash64(seed, key) / 2**64


def hash64(seed: int, key: int) -> int:
    """hash64 maps (seed, key) to a 64-bit integer (splitmix64's finaliser)."""
    return _finalise((seed * _GOLDEN + (key + 1) * 0xBF58476D1CE4E5B9) & _MASK64)


def _finalise(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)
