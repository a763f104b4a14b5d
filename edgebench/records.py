"""The record contract between traffic and analysis: the fields of every line, and the writer.

Every scheduled start becomes one JSON line of `requests-<run>-<worker>.jsonl`
(REQUEST_FIELDS, built by request_record); every webhook callback or status poll
that tells a deployment's fate one line of `events-<run>-<worker>.jsonl` (EVENT_FIELDS,
built by event_record); each second's reading of the emulator (a live run's embedded
one, or the simulator's model) one line of `emulator-metrics.jsonl` (READING_FIELDS,
built by emulator_reading). `<run>` is the run's id (manifest.json's `run_id`), so a
reader takes only the files of the run the manifest describes. results/README.md
documents each field. The fields, the files' names and the Arrow reader are
checks.records', which the analysis reads by too (it imports nothing of the traffic
code). Lines are buffered and written at least once a
second, so a killed process loses at most its last second, and a reader skips a torn
last line.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

import orjson

from checks.outcomes import (
    ABANDONED,
    ACCEPTED,
    ALLOCATION_FAILURE,
    BACKOFF,
    DROPPED,
    NOT_SENT,
    OVER_BUDGET,
    RATE_LIMITED,
    SENT,
)
from checks.records import (
    ARROW_TYPES,
    DEMAND_FILE,
    DICTIONARY_FIELDS,
    EVENT_FIELDS,
    PLACEMENTS_FILE,
    READING_FIELDS,
    READINGS_FILE,
    RECORD_FILES,
    REQUEST_FIELDS,
    ArrowLog,
    Field,
    log_name,
    run_logs,
)

__all__ = [
    "ABANDONED",
    "BACKOFF",
    "CLOUD",
    "DEMAND_FILE",
    "DROPPED",
    "EVENTS",
    "EVENT_FIELDS",
    "EVENT_NAMES",
    "FAILED",
    "FLUSH_EVERY_S",
    "NOT_SENT",
    "OUTCOMES",
    "OVER_BUDGET",
    "PLACEMENTS_FILE",
    "READINGS_FILE",
    "READING_FIELDS",
    "RECORD_FILES",
    "REQUEST_FIELDS",
    "REQUEST_NAMES",
    "SENT_OUTCOMES",
    "SERVED",
    "ColumnarWriter",
    "Field",
    "HostChanges",
    "RecordWriter",
    "attempt_row",
    "drop_records",
    "emulator_reading",
    "event_record",
    "log_name",
    "match_head",
    "outcome_of",
    "placement_of",
    "read_columnar",
    "read_records",
    "request_record",
    "run_logs",
    "scheduled_fields",
]

Record = dict[str, Any]  # one JSON line
Row = tuple[Any, ...]  # a record's values in its fields' order (attempt_row)
FLUSH_EVERY_S = 1.0  # every writer of a run flushes at least this often (a live run: TrafficRun)


CLOUD = "cloud"  # a record's `host` when Edgegap's cloud ran the deployment, not a private host

# Outcomes of a sent request, by status; outcome_of names the rest. Every outcome and its
# group (sent or not, an error or not) is checks.outcomes', which every room counts from.
OUTCOMES = {
    202: ACCEPTED,
    400: "bad_request",
    401: "unauthorized",
    422: ALLOCATION_FAILURE,
    429: RATE_LIMITED,
}
SENT_OUTCOMES = SENT
# A match's fate, on the record of its last attempt (null on the attempts before it).
SERVED, FAILED = "served", "failed"
EVENTS = ("ready", "error", "terminated")


REQUEST_NAMES = tuple(field.name for field in REQUEST_FIELDS)  # a row's values, in order
EVENT_NAMES = tuple(field.name for field in EVENT_FIELDS)


def outcome_of(status: int) -> str:
    """outcome_of names the category of an HTTP status (0: a transport error).

    >>> outcome_of(202), outcome_of(404), outcome_of(503), outcome_of(0), outcome_of(200)
    ('accepted', 'client_error', 'server_error', 'transport_error', 'unexpected_status')
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


def request_record(
    *,
    index: int,
    t_sched: float,
    endpoint: str,
    worker: str,
    stage: int,
    offered_rate: float,
    outcome: str,
    region: str | None = None,
    players: int | None = None,
    **attempt: Any,
) -> Record:
    """request_record is an attempt's line; a send's fields stay None when it was never sent
    (attempt_row's fields, by name).

    The match is the arrival (index); attempt counts its requests from 1.
    """
    head = match_head(index, t_sched, endpoint, region, players, worker, stage, offered_rate)
    return dict(zip(REQUEST_NAMES, attempt_row(head, outcome, **attempt), strict=True))


def match_head(
    index: int,
    t_sched: float,
    endpoint: str,
    region: str | None,
    players: int | None,
    worker: str,
    stage: int,
    offered_rate: float,
) -> Row:
    """match_head is what every attempt's row of a match begins with (REQUEST_FIELDS'
    order): made once a match."""
    return (
        index, round(t_sched, 6), endpoint, region, players, worker, stage,
        round(offered_rate, 4),
    )  # fmt: skip


def attempt_row(
    head: Row,
    outcome: str,
    t_send: float | None = None,
    status: int | None = None,
    latency_ms: float | None = None,
    latency_sched_ms: float | None = None,
    request_id: str | None = None,
    cause: str | None = None,
    attempt: int = 1,
    queue_ms: float | None = None,
    final: str | None = None,
    location: str | None = None,
    host: str | None = None,
) -> Row:
    """attempt_row is an attempt's record as a row of REQUEST_FIELDS' values, in order: what
    the simulator hands its sink (a day's millions: a tuple costs a third of a dict)."""
    return (
        *head, t_send, status, outcome, latency_ms, latency_sched_ms, request_id, cause,
        head[0], attempt, queue_ms, final, location, host,
    )  # fmt: skip


class Scheduled(Protocol):
    """Scheduled is what a record reads of an arrival (edgebench.plan.schedule.Arrival)."""

    @property
    def index(self) -> int: ...
    @property
    def stage(self) -> int: ...
    @property
    def offered_rate(self) -> float: ...


def scheduled_fields(arrival: Scheduled, due: float, worker: str) -> Record:
    """scheduled_fields are what an attempt's record says of its match, sent or not: the
    arrival (edgebench.plan.schedule.Arrival), when it was due (unix time) and who had it."""
    return {
        "index": arrival.index,
        "t_sched": due,
        "worker": worker,
        "stage": arrival.stage,
        "offered_rate": arrival.offered_rate,
    }


def event_record(
    *,
    t_received: float,
    event: str,
    request_id: str,
    current_status: str | None,
    source: str,
    worker: str,
    location: str | None = None,
    host: str | None = None,
) -> Record:
    """event_record is the line of a callback or poll that told a deployment's state (and
    where it runs, when the status said)."""
    return {
        "t_received": round(t_received, 6),
        "event": event,
        "request_id": request_id,
        "current_status": current_status,
        "source": source,
        "worker": worker,
        "location": location,
        "host": host,
    }


def placement_of(status: dict[str, Any]) -> tuple[str | None, str | None]:
    """placement_of is (city, private host id or "cloud") of a /v1/status body or webhook
    ((None, None) where it names no location yet).

    >>> placement_of({"location": {"city": "Paris"}, "private_host_id": None})
    ('Paris', 'cloud')
    """
    location = status.get("location")
    city = location.get("city") if isinstance(location, dict) else None
    if not isinstance(city, str):
        return None, None
    host = status.get("private_host_id")
    return city, host if isinstance(host, str) and host else CLOUD


def emulator_reading(
    *,
    t: float,
    active: int | None,
    holding_capacity: int | None,
    deployments_created: int | None,
    private_host_changes: dict[str, int],
    by_location: dict[str, int],
    fleet_private: int,
    fleet_cloud: int,
    allocation_failures: dict[str, int],
) -> Record:
    """emulator_reading is one reading of the emulator's platform at unix time t: of the
    private hosts, those whose slots held changed since the reading before (HostChanges)."""
    return {
        "t": round(t, 3),
        "active": active,
        "holding_capacity": holding_capacity,
        "deployments_created": deployments_created,
        "private_host_changes": private_host_changes,
        "by_location": by_location,
        "fleet_private": fleet_private,
        "fleet_cloud": fleet_cloud,
        "allocation_failures": allocation_failures,
    }


class HostChanges:
    """HostChanges turns each reading's slots held per private host into the hosts changed
    since the reading before (0: idle now): a reading a second of a fleet of thousands of
    hosts stays a line of the few that changed.

    >>> changes = HostChanges()
    >>> changes({"a": 2, "b": 1}), changes({"a": 2}), changes({"a": 3})
    ({'a': 2, 'b': 1}, {'b': 0}, {'a': 3})
    """

    def __init__(self) -> None:
        self._held: dict[str, int] = {}

    def __call__(self, held: dict[str, int]) -> dict[str, int]:
        changed = {host: n for host, n in held.items() if self._held.get(host) != n}
        changed |= {host: 0 for host in self._held if host not in held}
        self._held = {host: n for host, n in held.items() if n}
        return changed


class RecordWriter:
    """RecordWriter appends JSON lines to a file, in batches, safe to share between greenlets.

    writer = RecordWriter(path)
    writer.add({"outcome": "accepted"})  # buffered
    writer.flush()                      # written; flush() runs at least every second

    With `ship`, a flush hands the lines to ship(file name, bytes) instead (a Locust
    worker sends them to its master, which appends them to the file of that name).
    """

    def __init__(self, path: Path, ship: Callable[[str, bytes], None] | None = None) -> None:
        self.path = path
        self._ship = ship
        self._file: IO[bytes] | None = None
        if ship is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("ab")
        self._pending: list[bytes] = []
        self._lock = threading.Lock()
        self.closed = False
        self.failed: OSError | None = None  # a write failed (a full disk): none follows

    def add(self, record: Record) -> None:
        self._pending.append(orjson.dumps(record) + b"\n")

    def flush(self) -> None:
        """flush writes the pending lines; an OSError (a full disk) is raised once, and from
        then on nothing is written: the file ends with the last whole line (or a torn one,
        which readers count and skip)."""
        with self._lock:
            lines, self._pending = self._pending, []
            if not lines or self.closed or self.failed:
                return
            if self._ship:
                self._ship(self.path.name, b"".join(lines))
            elif self._file is not None:
                try:
                    self._file.write(b"".join(lines))
                    self._file.flush()
                except OSError as exc:
                    exc.filename = exc.filename or str(self.path)
                    self.failed = exc
                    raise

    def close(self) -> None:
        try:
            self.flush()
        finally:
            with self._lock:
                self.closed = True
                if self._file:
                    with contextlib.suppress(OSError):  # what a failed flush left buffered
                        self._file.close()


BATCH = 65_536  # records an Arrow batch holds at most (one is also written each second)


class ColumnarWriter:
    """ColumnarWriter writes records as an Arrow IPC stream (zstd): the same fields as the
    JSON lines (`fields`: REQUEST_FIELDS or EVENT_FIELDS), a batch at each flush (its user
    flushes at least once a second, as RecordWriter's does), so a killed process loses at
    most its last second (every whole batch before a torn one reads). About a fourteenth
    of the JSON lines' bytes. The simulator's records; pyarrow loads only when one is made.

    writer = ColumnarWriter(path, REQUEST_FIELDS)
    writer.add(row)      # the fields' values in order; held until a batch is full, or flushed
    writer.close()       # every row written

    With no path, the batches are kept in memory (`batches`), never written: a simulation
    that keeps only its summary (analysis.load.run_of_records reads them).
    """

    def __init__(self, path: Path | None, fields: tuple[Field, ...]) -> None:
        import pyarrow as pa

        self.path, self._pa = path, pa
        self._schema = pa.schema([(f.name, self._type(f)) for f in fields])
        # Each column converts in Arrow's C++, the few-valued texts as plain strings first,
        # dictionary-encoded after.
        self._plain = [getattr(pa, ARROW_TYPES[f.kind])() for f in fields]
        self._rows: list[Row] = []
        self._file: Any = None
        self._writer: Any = None
        self.batches: list[Any] = []

    def _type(self, field: Field) -> Any:
        kind = getattr(self._pa, ARROW_TYPES[field.kind])()
        return (
            self._pa.dictionary(self._pa.int32(), kind) if field.name in DICTIONARY_FIELDS else kind
        )

    def add(self, row: Row) -> None:
        self._rows.append(row)
        if len(self._rows) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """flush writes the records held as a batch (none: nothing)."""
        if not self._rows:
            return
        rows, self._rows = self._rows, []
        columns = zip(zip(*rows, strict=True), self._plain, self._schema, strict=True)
        arrays = [
            self._column(self._pa.array(values, plain), f.type) for values, plain, f in columns
        ]
        batch = self._pa.RecordBatch.from_arrays(arrays, schema=self._schema)
        if self.path is None:
            self.batches.append(batch)
            return
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self._pa.OSFile(str(self.path), "wb")
            options = self._pa.ipc.IpcWriteOptions(compression="zstd")
            self._writer = self._pa.ipc.new_stream(self._file, self._schema, options=options)
        self._writer.write_batch(batch)

    def close(self) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.close()
            self._file.close()

    def _column(self, column: Any, kind: Any) -> Any:
        """_column is a converted column as the schema holds it (a dictionary's text encoded)."""
        if not self._pa.types.is_dictionary(kind):
            return column
        return column.dictionary_encode().cast(kind)


def drop_records(folder: Path, kept: frozenset[str] = frozenset()) -> None:
    """drop_records removes a folder's record files (RECORD_FILES) but the patterns kept:
    what a probe that keeps only its summary leaves."""
    for pattern in set(RECORD_FILES) - kept:
        for path in folder.glob(pattern):
            path.unlink()


def read_columnar(path: Path) -> tuple[Any, int]:
    """read_columnar is an Arrow stream's whole batches as a table, and 1 when a torn last
    batch (a killed writer's) was left out, else 0."""
    import pyarrow as pa

    log = ArrowLog(path)
    batches = list(log)
    if log.schema is None:
        return None, 1
    return pa.Table.from_batches(batches, schema=log.schema), log.torn


def read_records(path: Path) -> tuple[list[Record], int]:
    """read_records reads a JSON-lines or Arrow file: (records, unreadable lines or batches
    skipped)."""
    if path.suffix == ".arrow":
        table, torn = read_columnar(path)
        return ([] if table is None else table.to_pylist()), torn
    records: list[Record] = []
    skipped = 0
    with path.open("rb") as lines:
        for line in lines:
            try:
                records.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                skipped += 1
    return records, skipped
