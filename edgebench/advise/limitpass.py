"""Every limit from one simulation: a queueing client sends its matches first in first out,
at most `limit` in any window of the limit, so the n-th send goes at

    d(n) = max(a(n), d(n - limit) + window)

(a: the matches' due times in order; min-plus, solved in closed form for each of the limit's
chains n mod limit: d = j window + the running max of a - j window). A simulation gives
each match's due time and the rest of its wait once sent (the answer, retries, the boot:
what the limit does not move), so every limit's players' waits and unserved share follow.

    demand = QueuedDemand.of(run)                 # a simulation's run (analysis.load)
    demand.save(folder); QueuedDemand.load(folder)   # what a probe process hands over
    demand.figures(limit=52, max_wait_s=30.0)     # wait_p99_s, share_unserved, ...

Where matches give up (the client's max_queue_wait), the queue is walked match by match
instead (one that leaves takes no turn). What it leaves out: the answers' latency in the
window (milliseconds). `edgebench advise` confirms the limit it picks by simulation, and one below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgebench.plan.schedule import WINDOW_S
from edgebench.records import DEMAND_FILE

if TYPE_CHECKING:
    from analysis.load import Run

LIMIT_METRICS = ("wait_p50_s", "wait_p95_s", "wait_p99_s", "share_unserved", "share_abandoned")


@dataclass(frozen=True)
class QueuedDemand:
    """QueuedDemand is a simulation's matches as a queue in front of the limit meets them."""

    due: np.ndarray  # every match's due time, in order
    rest_s: np.ndarray  # its wait once sent (NaN: never served for a reason of its own)
    window_s: float

    @classmethod
    def of(cls, run: Run, window_s: float = WINDOW_S) -> QueuedDemand:
        """of reads a simulated run's records: each match's due time, its first send, when
        it was ready (or accepted) and its fate."""
        from analysis.metrics import attempts_of, served_waits

        order = attempts_of(run)
        requests = run.requests
        first = order.rows[order.first]
        due = requests["t_sched"].to_numpy(dtype=float)[first]
        sent = requests["t_send"].to_numpy(dtype=float, na_value=np.nan)[first]
        waits, served = served_waits(run, order)
        queued = sent - due
        rest = np.full(len(due), np.nan)
        rest[served] = waits - queued[served]
        # A match the limit left unsent (abandoned in its queue) takes the others' typical rest.
        outcome = requests["outcome"].astype(object).to_numpy()[order.rows[order.last]]
        abandoned = outcome == "abandoned"
        typical = float(np.nanmedian(rest)) if np.isfinite(rest).any() else 0.0
        rest[abandoned & np.isnan(rest)] = typical
        ordering = np.argsort(due, kind="stable")
        return cls(due[ordering], rest[ordering], window_s)

    def save(self, folder: Path) -> None:
        """save keeps the demand in the folder (DEMAND_FILE): a probe process hands it over."""
        np.savez(folder / DEMAND_FILE, due=self.due, rest_s=self.rest_s, window_s=self.window_s)

    @classmethod
    def load(cls, folder: Path) -> QueuedDemand:
        """load is the demand a probe saved in the folder."""
        with np.load(folder / DEMAND_FILE) as saved:
            return cls(saved["due"], saved["rest_s"], float(saved["window_s"]))

    def sends(self, limit: int) -> np.ndarray:
        """sends are the matches' send times under the limit (min-plus, by chain)."""
        count = len(self.due)
        chains = math.ceil(count / limit)
        padded = np.full(chains * limit, np.inf)
        padded[:count] = self.due
        arrivals = padded.reshape(chains, limit)  # row j, column c: the match j * limit + c
        steps = np.arange(chains)[:, None] * self.window_s
        sends = np.maximum.accumulate(arrivals - steps, axis=0) + steps
        return sends.reshape(-1)[:count]

    def figures(self, limit: int, max_wait_s: float | None) -> dict[str, float | None]:
        """figures are the checks' figures on matches at the limit: the players' wait
        percentiles (an unserved match as never), the unserved and abandoned shares."""
        import pandas as pd

        from analysis.metrics import wait_percentiles

        queued = self.sends(limit) - self.due
        abandoned = np.zeros(len(queued), bool)
        if max_wait_s is not None and (queued > max_wait_s).any():
            queued, abandoned = self._walk_leaving(limit, max_wait_s)  # no longer closed form
        served = ~abandoned & np.isfinite(self.rest_s)
        unserved = int(len(queued) - served.sum())
        waits = wait_percentiles(pd.Series(queued[served] + self.rest_s[served]), unserved)
        total = max(len(queued), 1)
        return {
            **{f"wait_p{p}_s": waits[f"p{p}"] for p in (50, 95, 99)},
            "share_unserved": unserved / total,
            "share_abandoned": int(abandoned.sum()) / total,
        }

    def _walk_leaving(self, limit: int, max_wait_s: float) -> tuple[np.ndarray, np.ndarray]:
        """_walk_leaving is the queue when matches give up after max_wait_s: one that would
        wait longer leaves and takes no turn (each match's wait, and who left)."""
        window = self.window_s
        turns = [-math.inf] * limit  # the last `limit` sends, a ring
        queued = np.empty(len(self.due))
        left = np.zeros(len(self.due), bool)
        oldest = 0
        for n, due in enumerate(self.due.tolist()):
            send = max(due, turns[oldest] + window)
            if send - due > max_wait_s:
                left[n], queued[n] = True, max_wait_s
                continue
            queued[n] = send - due
            turns[oldest] = send
            oldest = (oldest + 1) % limit
        return queued, left

    def least_limit(self, passes, high: int) -> int | None:
        """least_limit is the least limit whose figures pass (a higher one never waits
        longer: bisection), None when even `high` does not."""
        if not passes(high):
            return None
        low = 0  # fails: no sends at all
        while high - low > 1:
            middle = (low + high) // 2
            if passes(middle):
                high = middle
            else:
                low = middle
        return high
