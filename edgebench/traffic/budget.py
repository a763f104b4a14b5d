"""The run's deployment budget (`--max-deployments`), global over every process of a run.

A send takes one deployment from the budget before it goes, and gives it back only when
the answer says nothing was created (a 4xx): a 5xx or a lost answer may have created
one, so it stays spent. So the deployments a run created never exceed the budget,
whatever is in flight.

With workers, the budget stays with the master (Ledger) and is lent out in leases: a
worker asks for the next lease while it still has half of the last one, so a due send
rarely waits. A worker that leaves takes its unused lease with it (never handed out
twice), so a distributed run may stop short of the budget by at most one lease a worker.

    budget = Budget(20)                        # one process: the whole budget here
    budget = Budget(0, lease=5, ask=send_ask)  # a worker: leases from the master
    budget.take()      # True taken, False none left anywhere, None a lease is on its way
    budget.give_back() # the answer created nothing
"""

from __future__ import annotations

from collections.abc import Callable

MAX_LEASE = 100


def lease_size(total: int, workers: int) -> int:
    """lease_size is how much a worker borrows at once: a quarter of its share, 1 to 100.

    >>> lease_size(20, 2), lease_size(100_000, 4), lease_size(3, 4)
    (2, 100, 1)
    """
    return max(1, min(MAX_LEASE, total // (4 * max(1, workers))))


class Budget:
    """Budget is this process's part of the run's deployment budget."""

    def __init__(self, left: int, lease: int = 0, ask: Callable[[int], None] | None = None):
        self.left = left
        self.lease = lease
        self._ask = ask
        self.exhausted = ask is None  # nothing more will come: what is here is all there is
        self.asking = False
        self._ask_ahead()

    def take(self) -> bool | None:
        """take spends one: True taken, False none left anywhere, None none here yet (asked)."""
        if self.left > 0:
            self.left -= 1
            self._ask_ahead()
            return True
        return False if self.exhausted else None

    def give_back(self) -> None:
        """give_back returns one a send took whose answer created nothing."""
        self.left += 1

    def granted(self, count: int, exhausted: bool) -> None:
        """granted adds a lease from the master; exhausted: the master has nothing more."""
        self.left += count
        self.asking = False
        self.exhausted = exhausted
        self._ask_ahead()

    def _ask_ahead(self) -> None:
        if self._ask and not (self.asking or self.exhausted) and self.left <= self.lease // 2:
            self.asking = True
            self._ask(self.lease)


class Ledger:
    """Ledger is the master's whole budget: what is not lent out yet."""

    def __init__(self, total: int) -> None:
        self.left = total

    def lend(self, wanted: int) -> tuple[int, bool]:
        """lend is (how many a worker gets, whether nothing is left after it)."""
        count = max(0, min(wanted, self.left))
        self.left -= count
        return count, self.left == 0
