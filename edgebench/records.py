"""The per-request record: the one contract between traffic and analysis.

Every scheduled start becomes one JSON line in `requests-<worker>.jsonl`; every
webhook callback one line in `webhooks-<worker>.jsonl`. results/README.md
documents every field. Lines are buffered and written at least once a second,
so a killed process loses at most its last second, and a reader skips a
truncated last line.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import IO

import orjson

FLUSH_EVERY_S = 1.0

OUTCOMES = {
    202: "accepted",
    400: "bad_request",
    401: "unauthorized",
    422: "allocation_failure",
    429: "rate_limited",
}
# Outcomes of a start that was never sent.
DROPPED = "dropped"  # no free user when it was due
BACKOFF = "backoff"  # due while honouring a 429's Retry-After (respect mode)
OVER_BUDGET = "over_budget"  # due after the run's deployment budget was used up
NOT_SENT = (DROPPED, BACKOFF, OVER_BUDGET)


def outcome_of(status: int) -> str:
    """outcome_of names the category of an HTTP status (0: a transport error).

    >>> outcome_of(202), outcome_of(404), outcome_of(503), outcome_of(0)
    ('accepted', 'client_error', 'server_error', 'transport_error')
    """
    if status in OUTCOMES:
        return OUTCOMES[status]
    if status == 0:
        return "transport_error"
    if 400 <= status < 500:
        return "client_error"
    if status >= 500:
        return "server_error"
    return "unexpected_status"


class RecordWriter:
    """RecordWriter appends JSON lines to a file, in batches, safe to share between greenlets.

    writer = RecordWriter(path)
    writer.add({"outcome": "accepted"})  # buffered
    writer.flush()                      # written; flush() runs at least every second
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: IO[bytes] = path.open("ab")
        self._pending: list[bytes] = []
        self._lock = threading.Lock()

    def add(self, record: dict) -> None:
        self._pending.append(orjson.dumps(record) + b"\n")

    def flush(self) -> None:
        with self._lock:
            lines, self._pending = self._pending, []
            if lines and not self._file.closed:
                self._file.write(b"".join(lines))
                self._file.flush()

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._file.close()


def read_records(path: Path) -> tuple[list[dict], int]:
    """read_records reads a JSON-lines file: (records, number of unreadable lines skipped)."""
    records, skipped = [], 0
    with path.open("rb") as lines:
        for line in lines:
            try:
                records.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                skipped += 1
    return records, skipped
