"""Seeded draws without a random generator per draw: splitmix64 streams and hashes.

Seeding a Mersenne Twister costs more than everything else a request body
needs; a splitmix64 hash of (seed, key) starting a 64-bit linear congruential
stream gives each key its own reproducible draws for a few integer operations.

    draw = unit_draws(seed, key).__next__
    draw()                      # a float in [0, 1), the same for (seed, key) every time
    unit_hash(seed, key)        # one such float, with no stream; hash64: its 64 bits

Each has a block form beside it, worked out with numpy for thousands at once and
giving the same bits (the simulator draws millions): hash64_array, unit_draws_matrix
(the first draws of many streams), unit_draw_blocks (one stream, a block at a time).
numpy is imported by the block forms only: a live run's senders never load it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

_MASK64 = 2**64 - 1
_GOLDEN = 0x9E3779B97F4A7C15
LCG_A, LCG_C = 6364136223846793005, 1442695040888963407  # Knuth's MMIX


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
        state = (state * LCG_A + LCG_C) & _MASK64
        yield (state >> 11) * 2**-53


def unit_draws_matrix(seed: int, keys: np.ndarray, count: int) -> np.ndarray:
    """unit_draws_matrix is the first `count` draws of unit_draws(seed, key) for each key.

    >>> import numpy
    >>> row = unit_draws_matrix(42, numpy.array([7]), 3)[0].tolist()
    >>> row == [next(d) for d in [unit_draws(42, 7)] for _ in range(3)]
    True
    """
    import numpy as np

    state = hash64_array(seed, keys)
    draws = np.empty((len(keys), count))
    a, c = np.uint64(LCG_A), np.uint64(LCG_C)
    with np.errstate(over="ignore"):
        for column in range(count):
            state = state * a + c
            draws[:, column] = (state >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return draws


def unit_draw_blocks(seed: int, key: int, size: int) -> Iterator[np.ndarray]:
    """unit_draw_blocks is the stream unit_draws(seed, key), `size` draws at a time."""
    import numpy as np

    powers, offsets = _jumps(size)
    state = np.uint64(hash64(seed, key))
    while True:
        with np.errstate(over="ignore"):
            states = powers * state + offsets
        yield (states >> np.uint64(11)).astype(np.float64) * 2.0**-53
        state = states[-1]


@functools.cache
def _jumps(size: int) -> tuple[np.ndarray, np.ndarray]:
    """_jumps are the LCG's multipliers and offsets 1..size steps ahead (mod 2**64)."""
    import numpy as np

    powers, offsets, a, c = [], [], 1, 0
    for _ in range(size):
        a, c = (a * LCG_A) & _MASK64, (c * LCG_A + LCG_C) & _MASK64
        powers.append(a)
        offsets.append(c)
    return np.array(powers, dtype=np.uint64), np.array(offsets, dtype=np.uint64)


def unit_hash(seed: int, key: int) -> float:
    """unit_hash maps (seed, key) to [0, 1) evenly.

    >>> unit_hash(1, 2) == unit_hash(1, 2) != unit_hash(1, 3)
    True
    """
    return hash64(seed, key) / 2**64


def hash64(seed: int, key: int) -> int:
    """hash64 maps (seed, key) to a 64-bit integer (splitmix64's finaliser)."""
    return _finalise((seed * _GOLDEN + (key + 1) * 0xBF58476D1CE4E5B9) & _MASK64)


def hash64_array(seed: int, keys: np.ndarray) -> np.ndarray:
    """hash64_array is hash64(seed, key) of each key, as uint64.

    >>> import numpy
    >>> hash64_array(3, numpy.array([0, 9])).tolist() == [hash64(3, 0), hash64(3, 9)]
    True
    """
    import numpy as np

    with np.errstate(over="ignore"):
        z = np.uint64((seed * _GOLDEN) & _MASK64) + (
            keys.astype(np.uint64) + np.uint64(1)
        ) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _finalise(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)
