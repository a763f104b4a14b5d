"""Loading a run: every worker's request and event logs merged into DataFrames.

Arrow's JSON reader parses the logs (a million records in about a second;
pandas.read_json took 13 s and 3 GB here). Lines that do not parse (a process
killed mid-write leaves a torn last line) are counted and skipped, never fatal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pandas as pd
import pyarrow as pa
from pyarrow import json as pa_json

from analysis._errors import AnalysisError

# The columns of results/README.md; names absent from a log come out as nulls.
REQUEST_SCHEMA = pa.schema(
    [
        ("index", pa.int64()),
        ("t_sched", pa.float64()),
        ("t_send", pa.float64()),
        ("endpoint", pa.string()),
        ("status", pa.int64()),
        ("outcome", pa.string()),
        ("latency_ms", pa.float64()),
        ("latency_sched_ms", pa.float64()),
        ("request_id", pa.string()),
        ("region", pa.string()),
        ("players", pa.int64()),
        ("worker", pa.string()),
        ("stage", pa.int64()),
        ("offered_rate", pa.float64()),
        ("cause", pa.string()),
        ("match", pa.int64()),
        ("attempt", pa.int64()),
        ("queue_ms", pa.float64()),
        ("final", pa.string()),
    ]
)
EVENT_SCHEMA = pa.schema(
    [
        ("t_received", pa.float64()),
        ("event", pa.string()),
        ("request_id", pa.string()),
        ("current_status", pa.string()),
        ("source", pa.string()),
        ("worker", pa.string()),
    ]
)
LEAN_LEAVES_OUT = {"index", "worker", "stage", "players"}
PANDAS_TYPES = {pa.int64(): pd.Int64Dtype(), pa.string(): pd.StringDtype("pyarrow")}
EMULATOR_SCHEMA = pa.schema(
    [
        ("t", pa.float64()),
        ("active", pa.int64()),
        ("holding_capacity", pa.int64()),
        ("deployments_created", pa.int64()),
        ("fleet_private", pa.int64()),
        ("fleet_cloud", pa.int64()),
    ]
)
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
    callbacks: dict = field(default_factory=dict)  # the webhook receivers' counts, added up
    foreign_files: list[str] = field(default_factory=list)  # another run's records: not read
    hosts: pd.DataFrame = field(default_factory=pd.DataFrame)  # slots held per private host
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
    manifest = _manifest(folder)
    logs = {kind: run_logs(folder, kind, manifest.get("run_id")) for kind in ("requests", "events")}
    if not manifest and not logs["requests"]:
        raise AnalysisError(
            f"{folder}: not a run folder (no manifest.json, no requests-*.jsonl); "
            "pass a folder made by edgebench run"
        )
    schema = REQUEST_SCHEMA
    if lean:
        unused = LEAN_LEAVES_OUT | (set() if logs["events"] else {"request_id"})
        schema = pa.schema([f for f in REQUEST_SCHEMA if f.name not in unused])
    requests, skipped_requests = _frame(logs["requests"], schema, progress)
    events, skipped_events = _frame(logs["events"], EVENT_SCHEMA, progress)
    emulator, skipped_readings = _frame(folder.glob("emulator-metrics.jsonl"), EMULATOR_SCHEMA)
    skipped = skipped_requests + skipped_events + skipped_readings
    run = Run(folder, requests, events, emulator, manifest, skipped)
    run.callbacks = _callbacks(folder, manifest.get("run_id"))
    run.foreign_files = _foreign_files(folder, logs)
    run.hosts = _private_hosts(folder)
    return run


def _private_hosts(folder: Path) -> pd.DataFrame:
    """_private_hosts is the slots each private host held at each emulator reading (t, hosts...).

    Its keys are the world's host ids, so they are read line by line (a reading a second).
    """
    path = folder / "emulator-metrics.jsonl"
    rows = []
    if path.exists():
        for line in path.read_bytes().splitlines():
            try:
                reading = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(reading, dict) and isinstance(reading.get("by_private_host"), dict):
                rows.append({"t": reading.get("t")} | reading["by_private_host"])
    return pd.DataFrame(rows).fillna(0) if rows else pd.DataFrame(columns=["t"])


def run_logs(folder: Path, kind: str, run_id: str | None) -> list[Path]:
    """run_logs are a run's logs of one kind: named with its id (every such log when it has none).

    The same rule as edgebench.records.run_logs, which the analysis does not import.
    """
    pattern = f"{kind}-{run_id}-*.jsonl" if run_id else f"{kind}-*.jsonl"
    return sorted(folder.glob(pattern))


def _foreign_files(folder: Path, logs: dict[str, list[Path]]) -> list[str]:
    """_foreign_files are record files in the folder that belong to another run: left unread."""
    ours = {path for paths in logs.values() for path in paths}
    found = [*folder.glob("requests-*.jsonl"), *folder.glob("events-*.jsonl")]
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


def log_bytes(folder: str | Path) -> int:
    """log_bytes is the size of a run's logs: what load_run reports progress against."""
    return sum(p.stat().st_size for p in Path(folder).glob("*-*.jsonl") if p.is_file())


def _frame(paths, schema: pa.Schema, progress=None) -> tuple[pd.DataFrame, int]:
    tables, skipped = [], 0
    for path in sorted(paths):
        table, bad = _read_log(path, schema)
        tables.append(table)
        skipped += bad
        if progress:
            progress(path.stat().st_size)
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    return _to_pandas(table), skipped


def _read_log(path: Path, schema: pa.Schema) -> tuple[pa.Table, int]:
    """_read_log parses one log with Arrow's JSON reader, or line by line if it must.

    A killed writer leaves at most a torn last line: a tail after the last newline
    that does not parse is cut off and counted; a whole one is kept. Anything worse
    falls back to parsing each line on its own.
    """
    if path.stat().st_size == 0:
        return schema.empty_table(), 0
    source, skipped = str(path), 0
    if not _ends_whole(path):
        source, skipped = _mend_tail(path.read_bytes())
        if source.size() == 0:
            return schema.empty_table(), skipped
    options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    try:
        return pa_json.read_json(source, parse_options=options), skipped
    except pa.ArrowInvalid:
        return _read_lines(path.read_bytes(), schema)


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


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    columns = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if name in CATEGORIES:
            columns[name] = _categorical(column)
        else:
            columns[name] = column.to_pandas(types_mapper=PANDAS_TYPES.get)
    return pd.DataFrame(columns)


def _categorical(column: pa.ChunkedArray) -> pd.Categorical:
    """_categorical keeps a few-valued text column as codes, with plain Python categories.

    Arrow-backed categories would turn every comparison into a million-string array.
    """
    encoded = column.combine_chunks().dictionary_encode()
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    categories = pd.Index(encoded.dictionary.to_pylist(), dtype=object)
    return pd.Categorical.from_codes(codes.astype("int32"), categories=categories)


def _manifest(folder: Path) -> dict:
    path = folder / "manifest.json"
    if not path.exists():
        return {}
    try:
        manifest = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise AnalysisError(f"{path}: not valid JSON ({exc}); restore or delete it") from None
    return manifest if isinstance(manifest, dict) else {}
