"""Loading a run: every worker's request and event logs merged into DataFrames.

Arrow's JSON reader parses the logs (a million records in about a second;
pandas.read_json took 13 s and 3 GB here). Lines that do not parse (a process
killed mid-write leaves a torn last line) are counted and skipped, never fatal.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
from pyarrow import json as pa_json

from analysis._errors import AnalysisError
from checks.records import (
    ARROW_TYPES,
    EVENT_FIELDS,
    READING_FIELDS,
    READINGS_FILE,
    REQUEST_FIELDS,
    ArrowLog,
    Field,
    run_logs,
)


def _schema(fields: tuple[Field, ...]) -> pa.Schema:
    """_schema is the contract's fields as Arrow columns; names absent from a log: nulls
    (objects, as readings' counts by place, are read apart)."""
    return pa.schema([(field.name, getattr(pa, ARROW_TYPES[field.kind])()) for field in fields])


REQUEST_SCHEMA = _schema(REQUEST_FIELDS)
EVENT_SCHEMA = _schema(EVENT_FIELDS)
LEAN_LEAVES_OUT = {"index", "worker", "stage", "players"}
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)
BIG_LOGS = 1 << 30  # logs over 1 GiB (about 3.5 million records): memory before time
ARROW_TO_TEXT = 14  # an Arrow log's records as JSON lines: about 14 times its bytes
BLOCK_BYTES = 16 * 2**20  # the JSON reader's block: the most of a log's text held at once
# A log up to this size is parsed whole, its blocks in parallel (0.6 s for 500k records against
# 0.8-1.1 block by block); a bigger one block by block, to hold less of it in memory.
WHOLE_LOG_BYTES = 256 * 2**20
PANDAS_TYPES = {pa.int64(): pd.Int64Dtype(), pa.string(): pd.StringDtype("pyarrow")}
EMULATOR_SCHEMA = _schema(tuple(f for f in READING_FIELDS if f.kind is not dict))
# Few distinct values: categories cost a byte or two a row instead of a Python string.
CATEGORIES = {
    "endpoint",
    "outcome",
    "region",
    "worker",
    "event",
    "current_status",
    "source",
    "cause",
    "final",
    "location",
    "host",
}


@dataclass
class Run:
    """Run is one results folder, loaded."""

    folder: Path
    requests: pd.DataFrame
    events: pd.DataFrame
    emulator: pd.DataFrame  # the emulator's readings, when the run had one (else empty)
    manifest: dict = field(default_factory=dict)
    skipped_lines: int = 0
    skipped_requests: int = 0  # of skipped_lines, the request records' (a start's fate lost)
    callbacks: dict = field(default_factory=dict)  # the webhook receivers' counts, added up
    foreign_files: list[str] = field(default_factory=list)  # another run's records: not read
    fleets: pd.DataFrame = field(default_factory=pd.DataFrame)  # private slots held per fleet
    host_cities: pd.DataFrame = field(default_factory=pd.DataFrame)  # private slots per city
    locations: pd.DataFrame = field(default_factory=pd.DataFrame)  # slots held per city
    derived: dict = field(default_factory=dict)  # made once from the records (analysis.metrics)


def load_run(
    folder: str | Path, progress: Callable[[int], None] | None = None, lean: bool = False
) -> Run:
    """load_run reads a run folder's logs (requests, events, emulator readings) and manifest.

    progress, if given, is called with the bytes of each log as it is read. lean
    leaves out the request columns the analysis does not use (LEAN_LEAVES_OUT;
    request_id too when there are no events to join it with): a fifth of the parse.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise AnalysisError(f"{folder}: not a folder; pass a run's results folder")
    if records_text_bytes(folder) > BIG_LOGS:
        _return_freed_arrays()
    manifest = _manifest(folder)
    if manifest.get("pruned_at"):
        raise AnalysisError(
            f"{folder}: its records were pruned (edgebench prune, {manifest['pruned_at']}); "
            "its summary.json and report.html remain: read those"
        )
    logs = {kind: run_logs(folder, kind, manifest.get("run_id")) for kind in ("requests", "events")}
    if not manifest and not logs["requests"]:
        raise AnalysisError(
            f"{folder}: not a run folder (no manifest.json, no requests-*.jsonl or .arrow); "
            "pass a folder made by edgebench run"
        )
    schema = _lean(manifest, bool(logs["events"])) if lean else REQUEST_SCHEMA
    requests, skipped_requests = _frame(logs["requests"], schema, progress)
    events, skipped_events = _frame(logs["events"], EVENT_SCHEMA, progress)
    emulator, skipped_readings = _frame(folder.glob(READINGS_FILE), EMULATOR_SCHEMA)
    skipped = skipped_requests + skipped_events + skipped_readings
    _placed_by_events(requests, events)
    run = Run(folder, requests, events, emulator, manifest, skipped, skipped_requests)
    run.callbacks = _callbacks(folder, manifest.get("run_id"))
    run.foreign_files = _foreign_files(folder, logs)
    run.fleets, run.host_cities, run.locations = _held_by(_readings(folder), manifest)
    return run


def run_of_records(folder: Path, requests: list, events: list, readings: list[dict]) -> Run:
    """run_of_records is a run whose records were never written, as load_run(lean=True)
    reads them written: a simulation's held in memory (Arrow batches of the requests' and
    the events' fields, as the Arrow log holds them; the readings' dicts). The folder holds
    its manifest."""
    manifest = _manifest(folder)
    schema = _lean(manifest, bool(events))
    frames = [
        _joined_frame(_compact(_projected(batches, each), each), each)
        for batches, each in ((requests, schema), (events, EVENT_SCHEMA))
    ]
    table = pa.Table.from_pylist(readings, schema=EMULATOR_SCHEMA)
    emulator = _joined_frame(_compact(table.to_batches(), EMULATOR_SCHEMA), EMULATOR_SCHEMA)
    _placed_by_events(*frames)
    run = Run(folder, frames[0], frames[1], emulator, manifest)
    run.fleets, run.host_cities, run.locations = _held_by(iter(readings), manifest)
    return run


def _lean(manifest: dict, events: bool) -> pa.Schema:
    """_lean is the request columns the analysis uses (LEAN_LEAVES_OUT left out; request_id
    too when there are no events to join it with; players where egress is billed by them)."""
    unused = LEAN_LEAVES_OUT | (set() if events else {"request_id"})
    if (manifest.get("costs") or {}).get("egress_player_hour"):
        unused -= {"players"}  # egress is billed per player-hour
    return pa.schema([f for f in REQUEST_SCHEMA if f.name not in unused])


def _placed_by_events(requests: pd.DataFrame, events: pd.DataFrame) -> None:
    """_placed_by_events fills in where a live run's deployments went (`location`, `host`):
    its request lines cannot say (the 202 does not), the status polls and webhooks did."""
    if events.empty or "request_id" not in requests or events["location"].isna().all():
        return
    told = events.dropna(subset=["location"]).drop_duplicates("request_id")
    ids = requests["request_id"].astype(object)
    for column in ("location", "host"):
        known = told.set_index("request_id")[column].astype(object)
        filled = requests[column].astype(object).fillna(ids.map(known))
        requests[column] = filled.astype("category")


@functools.cache
def _return_freed_arrays() -> None:
    """_return_freed_arrays makes glibc give a freed big array back to the system.

    glibc's malloc raises its mmap threshold each time a big block is freed, after which
    big arrays come from the heap and stay there when freed: loading 10 million records
    block by block held 2.2 GB for a frame of 0.8 GB, and the summary's temporaries added
    to it. A fixed threshold (its starting value, 128 KiB) keeps big arrays mapped, and
    returned when freed: 1.7 GB at the peak of the load, 1.2 GB after it. It costs time
    (every big array is mapped afresh: a million records analysed 15% slower), so it is
    taken only for logs over BIG_LOGS, where memory is what runs out.
    """
    with contextlib.suppress(OSError, AttributeError):  # not glibc: its allocator decides
        ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, 128 * 1024)


def _readings(folder: Path):
    """_readings are the emulator's readings of a folder, a line at a time (a torn or
    foreign line: left out)."""
    path = folder / READINGS_FILE
    if not path.exists():
        return
    with path.open("rb") as lines:
        for line in lines:
            try:
                reading = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(reading, dict):
                yield reading


def _held_by(readings, manifest: dict) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """_held_by are, from the emulator's readings, the slots held over time (t, then a
    column a name) by each fleet's private hosts (a host the manifest names no fleet of:
    under "private hosts"), by the private hosts of each city (one the manifest does not
    place: under its id), and in each city (`by_location`, private hosts included).

    Hosts are added up as they are read: a day of a second's readings of thousands of hosts
    is never a frame of them. A reading names the hosts changed since the one before
    (`private_host_changes`), or in earlier folders every busy host (`by_private_host`).
    """
    hosts = HostGroups(((manifest.get("emulator") or {}).get("world") or {}).get("private_hosts"))
    cities: list[dict] = []
    for reading in readings:
        hosts.read(reading)
        if isinstance(reading.get("by_location"), dict):
            cities.append({"t": reading.get("t")} | reading["by_location"])
    return *hosts.frames(), _held_frame(cities)


class HostGroups:
    """HostGroups adds up the private hosts' slots held, reading by reading, by fleet and
    by city (the manifest's world: each host's fleet and city)."""

    def __init__(self, known: object) -> None:
        self._known = known if isinstance(known, dict) else {}
        self._held: dict[str, int] = {}  # each host's slots held now
        self._groups: dict[str, tuple[str, str]] = {}  # host: (its fleet, its city)
        self._by_fleet: dict[str, int] = {}  # slots held now
        self._by_city: dict[str, int] = {}
        self._fleet_rows: list[dict] = []  # a row a reading
        self._city_rows: list[dict] = []

    def read(self, reading: dict) -> None:
        """read takes one reading's hosts (none named: a reading of no hosts, not a row)."""
        changes = reading.get("private_host_changes")
        if not isinstance(changes, dict):
            whole = reading.get("by_private_host")
            if not isinstance(whole, dict):
                return
            changes = {host: 0 for host in self._held if host not in whole} | whole
        state, by_fleet, by_city = self._held, self._by_fleet, self._by_city
        for host, told in changes.items():  # a day's millions: kept to the bone
            held = told if isinstance(told, int) else 0
            change = held - state.get(host, 0)
            state[host] = held
            fleet, city = self._groups.get(host) or self._group(host)
            by_fleet[fleet] = by_fleet.get(fleet, 0) + change
            by_city[city] = by_city.get(city, 0) + change
        t = reading.get("t")
        self._fleet_rows.append({"t": t} | by_fleet)
        self._city_rows.append({"t": t} | by_city)

    def _group(self, host: str) -> tuple[str, str]:
        told = self._known.get(host) or {}
        group = (told.get("fleet") or "private hosts", told.get("location") or host)
        self._groups[host] = group
        return group

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """frames are (by fleet, by city): t, then a column a fleet or a city."""
        return _held_frame(self._fleet_rows), _held_frame(self._city_rows)


def _held_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).fillna(0) if rows else pd.DataFrame(columns=["t"])


def _foreign_files(folder: Path, logs: dict[str, list[Path]]) -> list[str]:
    """_foreign_files are record files in the folder that belong to another run: left unread."""
    ours = {path for paths in logs.values() for path in paths}
    found = [
        *folder.glob("requests-*.jsonl"),
        *folder.glob("events-*.jsonl"),
        *folder.glob("requests-*.arrow"),
        *folder.glob("events-*.arrow"),
    ]
    return sorted(path.name for path in found if path not in ours)


def _callbacks(folder: Path, run_id: str | None) -> dict:
    """_callbacks adds up the run's webhooks-*.json: callbacks recorded, rejected by reason."""
    total: dict = {}
    for path in sorted(folder.glob(f"webhooks-{run_id}-*.json" if run_id else "webhooks-*.json")):
        try:
            counts = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError:
            continue
        if not isinstance(counts, dict):
            continue
        total["recorded"] = total.get("recorded", 0) + int(counts.get("recorded", 0))
        rejected = total.setdefault("rejected", {})
        for reason, count in (counts.get("rejected") or {}).items():
            rejected[reason] = rejected.get(reason, 0) + int(count)
    return total


def records_text_bytes(folder: Path) -> int:
    """records_text_bytes is about how big the run's logs would be as JSON lines: the size
    that says how many records there are (an Arrow log is about a fourteenth of it)."""
    return log_bytes(folder, arrow_weight=ARROW_TO_TEXT)


def log_bytes(folder: str | Path, arrow_weight: int = 1) -> int:
    """log_bytes is the size of a run's logs (an Arrow log's times arrow_weight): what
    load_run reports progress against."""
    folder = Path(folder)
    logs = [*folder.glob("*-*.jsonl"), *folder.glob("*-*.arrow")]
    return sum(
        p.stat().st_size * (arrow_weight if p.suffix == ".arrow" else 1)
        for p in logs
        if p.is_file()
    )


def _frame(paths, schema: pa.Schema, progress=None) -> tuple[pd.DataFrame, int]:
    """_frame loads logs into one frame, block by block: each block of records is made
    compact (few-valued text as codes, numbers as arrays) as it is read, so neither the
    logs' text nor an Arrow table of them is ever whole in memory (10 million records:
    about 1 GB at the peak, not 3.3 GB)."""
    pieces: dict[str, list] = {name: [] for name in schema.names}
    skipped = 0
    for path in sorted(paths):
        compact, bad = _read_log(path, schema)
        for name, parts in compact.items():
            pieces[name] += parts
        skipped += bad
        if progress:
            progress(path.stat().st_size)
    return _joined_frame(pieces, schema), skipped


def _joined_frame(pieces: dict[str, list], schema: pa.Schema) -> pd.DataFrame:
    """_joined_frame is each column's pieces joined, as one frame."""
    columns = {}
    for name in schema.names:
        parts, pieces[name] = pieces.get(name, []), []  # each column's pieces go once joined
        columns[name] = _joined(name, parts, schema.field(name).type)
    return pd.DataFrame(columns, copy=False)  # no copy into 2-D blocks


def _read_log(path: Path, schema: pa.Schema) -> tuple[dict[str, list], int]:
    """_read_log parses one log with Arrow's JSON reader, or line by line if it must:
    (each column's compact pieces, lines skipped).

    A killed writer leaves at most a torn last line: a tail after the last newline
    that does not parse is cut off and counted; a whole one is kept. Anything worse
    falls back to parsing each line on its own.
    """
    size = path.stat().st_size
    if size == 0:
        return {}, 0
    if path.suffix == ".arrow":
        return _read_columnar(path, schema)
    source, skipped = str(path), 0
    if not _ends_whole(path):
        source, skipped = _mend_tail(path.read_bytes())
        if source.size() == 0:
            return {}, skipped
    options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    read = pa_json.ReadOptions(block_size=BLOCK_BYTES)
    try:
        if size <= WHOLE_LOG_BYTES:  # its blocks parsed on every core at once
            table = pa_json.read_json(source, read_options=read, parse_options=options)
            return _compact(table.to_batches(), schema), skipped
        reader = pa_json.open_json(source, read_options=read, parse_options=options)
        return _compact(reader, schema), skipped
    except pa.ArrowInvalid:
        table, skipped = _read_lines(path.read_bytes(), schema)
        return _compact(table.to_batches(), schema), skipped


def _read_columnar(path: Path, schema: pa.Schema) -> tuple[dict[str, list], int]:
    """_read_columnar reads an Arrow stream's columns of the schema, batch by batch (a column
    it lacks: nulls), and 1 when a killed writer's torn last batch was left out."""
    log = ArrowLog(path)
    pieces = _compact(_projected(log, schema), schema)
    return (pieces if log.schema is not None else {}), log.torn


def _projected(batches, schema: pa.Schema):
    """_projected are the batches' columns of the schema (a column one lacks: nulls)."""
    for batch in batches:
        columns = [
            batch.column(name)
            if name in batch.schema.names
            else pa.nulls(batch.num_rows, field.type)
            for name, field in zip(schema.names, schema, strict=True)
        ]
        yield pa.RecordBatch.from_arrays(columns, names=schema.names)


def _compact(batches, schema: pa.Schema) -> dict[str, list]:
    """_compact is each column's pieces, one a batch, made as each batch is read."""
    pieces: dict[str, list] = {name: [] for name in schema.names}
    for batch in batches:
        for name, column in zip(schema.names, batch.columns, strict=True):
            pieces[name].append(_codes(column) if name in CATEGORIES else _array(column))
    return pieces


def _codes(column: pa.Array) -> tuple:
    """_codes is a block's text column as (int32 codes, -1 for null; its values)."""
    encoded = column.dictionary_encode()
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype("int32")
    return codes, encoded.dictionary.to_pylist()


def _array(column: pa.Array) -> pd.Series:
    """_array is a block's column for pandas; numbers are copied out of Arrow's memory, so the
    block's buffers go back to Arrow's pool for the next block instead of living on."""
    series = column.to_pandas(types_mapper=PANDAS_TYPES.get)
    return series if isinstance(series.dtype, pd.StringDtype) else series.copy(deep=True)


def _joined(name: str, parts: list, kind: pa.DataType):
    """_joined is one column of the frame from its blocks' pieces."""
    if name in CATEGORIES:
        return _categorical(parts)
    if not parts:
        return pa.chunked_array([], type=kind).to_pandas(types_mapper=PANDAS_TYPES.get)
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def _mend_tail(data: bytes) -> tuple[pa.BufferReader, int]:
    """_mend_tail ends a log that lacks its last newline: a whole record is kept, a torn one cut.

    >>> [(reader.size(), skipped) for reader, skipped in (_mend_tail(b'{}\\n{"a": 1}'),
    ...                                                   _mend_tail(b'{}\\n{"a'))]
    [(12, 0), (3, 1)]
    """
    cut = data.rfind(b"\n") + 1
    try:
        whole = isinstance(orjson.loads(data[cut:]), dict)
    except orjson.JSONDecodeError:
        whole = False
    if whole:
        return pa.BufferReader(data + b"\n"), 0
    return pa.BufferReader(data[:cut]), 1


def _ends_whole(path: Path) -> bool:
    """_ends_whole is whether a (non-empty) log ends with a newline: no tail to look at."""
    with path.open("rb") as log:
        log.seek(-1, 2)
        return log.read(1) == b"\n"


def _read_lines(data: bytes, schema: pa.Schema) -> tuple[pa.Table, int]:
    rows, skipped = [], 0
    for line in data.splitlines():
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            rows.append(_conform(record, schema))
        elif line.strip():
            skipped += 1
    return pa.Table.from_pylist(rows, schema=schema), skipped


def _conform(record: dict, schema: pa.Schema) -> dict:
    """_conform nulls the values of a line that do not fit their column's type."""
    row = {}
    for name, kind in zip(schema.names, schema.types, strict=True):
        value = record.get(name)
        fits = (
            (pa.types.is_string(kind) and isinstance(value, str))
            or (pa.types.is_integer(kind) and type(value) is int)
            or (pa.types.is_floating(kind) and type(value) in (int, float))
        )
        row[name] = value if fits else None
    return row


def _categorical(parts: list[tuple]) -> pd.Categorical:
    """_categorical joins blocks' codes into one categorical with plain Python categories.

    Arrow-backed categories would turn every comparison into a million-string array.
    """
    categories: dict[str, int] = {}
    joined = []
    for codes, values in parts:
        known = [categories.setdefault(v, len(categories)) for v in values]
        mapping = np.array([*known, -1], dtype="int32")
        joined.append(mapping[codes])  # -1 (null) picks the last entry: -1 again
    codes = np.concatenate(joined) if joined else np.empty(0, "int32")
    return pd.Categorical.from_codes(codes, categories=pd.Index(list(categories), dtype=object))


def _manifest(folder: Path) -> dict:
    path = folder / "manifest.json"
    if not path.exists():
        return {}
    try:
        manifest = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise AnalysisError(f"{path}: not valid JSON ({exc}); restore or delete it") from None
    return manifest if isinstance(manifest, dict) else {}
