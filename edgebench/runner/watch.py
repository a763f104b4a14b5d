"""Watched checks: judged during a run over a sliding window of the records as they come.

    watcher = Watcher(scenario.watches)
    watcher.add(record)            # each request record as it is read (runner.progress)
    breach = watcher.breached()    # a Watch to abort on, once one holds over its window

A watch holds when its check is true of the requests sent in its last `for` seconds
(the window ends at the latest send read); it is judged only once the run has been
sending for a whole window and the window holds MIN_SENT requests, so a run's first
seconds or a quiet spell cannot trip it. Each watch that holds is kept in `breaches`,
once; only those with abort stop the run.
"""

from __future__ import annotations

import math

from checks import OPERATORS, Watch
from checks.outcomes import SHARES

MIN_SENT = 5
# Against a host that is not loopback the real API should not be hammered by a run that
# is failing anyway: this one is on unless the scenario watches share_error itself.
REMOTE_DEFAULT = "abort if share_error > 0.5 for 10s"


class Watcher:
    """Watcher keeps the recent sends and tells when a watched check holds."""

    def __init__(self, watches: tuple[Watch, ...] | list[Watch]) -> None:
        self.watches = list(watches)
        self.breaches: list[tuple[Watch, float]] = []  # (watch, the latest send when it held)
        self._span = max((w.for_s for w in self.watches), default=0.0)
        self._sent: list[tuple[float, str, float]] = []  # (t_send, outcome, latency_ms)
        self._first = math.inf
        self._latest = -math.inf

    def add(self, record: dict) -> None:
        sent = record.get("t_send")
        if not self.watches or sent is None:
            return
        self._sent.append((sent, record.get("outcome") or "", record.get("latency_ms") or 0.0))
        self._first, self._latest = min(self._first, sent), max(self._latest, sent)

    def breached(self) -> Watch | None:
        """breached is the first watch with abort that holds now (None: carry on)."""
        horizon = self._latest - self._span
        self._sent = [sent for sent in self._sent if sent[0] > horizon]
        held = [w for w, _ in self.breaches]
        for watch in self.watches:
            if watch not in held and self._holds(watch):
                self.breaches.append((watch, self._latest))
                if watch.abort:
                    return watch
        return None

    def _holds(self, watch: Watch) -> bool:
        if self._latest - self._first < watch.for_s:
            return False
        window = [sent for sent in self._sent if sent[0] > self._latest - watch.for_s]
        if len(window) < MIN_SENT:
            return False
        check = watch.check
        assert check.number is not None  # a watch compares with a number, never a baseline
        return OPERATORS[check.op](window_value(check.metric, window), check.number)


def window_value(metric: str, window: list[tuple[float, str, float]]) -> float:
    """window_value is a watchable metric over a window's sends (t_send, outcome, latency)."""
    if metric in SHARES:
        return sum(o in SHARES[metric] for _, o, _ in window) / len(window)
    latencies = sorted(latency for _, _, latency in window)
    rank = float(metric.removeprefix("p").removesuffix("_ms")) / 100
    return latencies[min(len(latencies) - 1, math.ceil(rank * len(latencies)) - 1)]
