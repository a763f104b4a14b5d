"""The record contract: the fields of every line a run writes, its files' names, and how
an Arrow log is read. The traffic and the simulator write by it (edgebench.records), the
analysis reads by it (analysis.load); neither room imports the other. results/README.md
documents each field; tests/test_records.py checks the three agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple


class Field(NamedTuple):
    """Field is one key of a record line: its name, its JSON type, and whether it may be null."""

    name: str
    kind: type
    nullable: bool = False


REQUEST_FIELDS = (
    Field("index", int),
    Field("t_sched", float),
    Field("endpoint", str),
    Field("region", str, nullable=True),
    Field("players", int, nullable=True),
    Field("worker", str),
    Field("stage", int),
    Field("offered_rate", float),
    Field("t_send", float, nullable=True),
    Field("status", int, nullable=True),
    Field("outcome", str),
    Field("latency_ms", float, nullable=True),
    Field("latency_sched_ms", float, nullable=True),
    Field("request_id", str, nullable=True),
    Field("cause", str, nullable=True),
    Field("match", int),
    Field("attempt", int),
    Field("queue_ms", float, nullable=True),
    Field("final", str, nullable=True),
    Field("location", str, nullable=True),
    Field("host", str, nullable=True),
)
READING_FIELDS = (
    Field("t", float),
    Field("active", int, nullable=True),
    Field("holding_capacity", int, nullable=True),
    Field("deployments_created", int, nullable=True),
    Field("private_host_changes", dict),
    Field("by_location", dict),
    Field("fleet_private", int),
    Field("fleet_cloud", int),
    Field("allocation_failures", dict),
)
READINGS_FILE = "emulator-metrics.jsonl"
# A simulation's fleet deploys, where each went and its draws (numpy columns): what sizes
# every fleet from one simulation (edgebench.advise.onepass).
PLACEMENTS_FILE = "fleet-placements.npz"
# A simulation's matches as a queue meets them: each one's due time and the rest of its wait
# once sent (edgebench.advise.limitpass: every limit from one simulation).
DEMAND_FILE = "queued-demand.npz"
# Every record file a run folder may hold: what `prune` removes, a probe does not keep.
RECORD_FILES = (
    "requests-*.jsonl", "events-*.jsonl", "requests-*.arrow", "events-*.arrow", READINGS_FILE,
    PLACEMENTS_FILE, DEMAND_FILE,
)  # fmt: skip
EVENT_FIELDS = (
    Field("t_received", float),
    Field("event", str),
    Field("request_id", str),
    Field("current_status", str, nullable=True),
    Field("source", str),
    Field("worker", str),
    Field("location", str, nullable=True),
    Field("host", str, nullable=True),
)
# Few distinct values: stored as codes and their dictionary, about a byte a record.
DICTIONARY_FIELDS = {
    "endpoint", "region", "worker", "outcome", "cause", "final", "location", "host",
    "event", "current_status", "source",
}  # fmt: skip
ARROW_TYPES = {int: "int64", float: "float64", str: "string"}  # a field's kind, in Arrow


def log_name(kind: str, run_id: str, worker: str, suffix: str = "jsonl") -> str:
    """log_name is the file a worker writes a kind of record to.

    >>> log_name("requests", "3fa9c2e1", "w0")
    'requests-3fa9c2e1-w0.jsonl'
    """
    return f"{kind}-{run_id}-{worker}.{suffix}"


def run_logs(folder: Path, kind: str, run_id: str | None) -> list[Path]:
    """run_logs are a run's files of one kind, JSON lines or Arrow (every such file when
    the run has no id)."""
    stem = f"{kind}-{run_id}-*" if run_id else f"{kind}-*"
    return sorted([*folder.glob(f"{stem}.jsonl"), *folder.glob(f"{stem}.arrow")])


class ArrowLog:
    """ArrowLog reads an Arrow stream's whole batches, stopping at a killed writer's torn
    last batch (or at a stream that cannot be opened): `torn` is then 1, what a reader counts
    as skipped.

        log = ArrowLog(path)
        for batch in log: ...
        log.schema, log.torn
    """

    def __init__(self, path: Path) -> None:
        self.path, self.schema, self.torn = path, None, 0

    def __iter__(self) -> Iterator[Any]:
        import pyarrow as pa

        with pa.OSFile(str(self.path), "rb") as source:
            try:
                reader = pa.ipc.open_stream(source)
            except (OSError, pa.ArrowInvalid):
                self.torn = 1
                return
            self.schema = reader.schema
            while True:
                try:
                    yield reader.read_next_batch()
                except StopIteration:
                    return
                except (OSError, pa.ArrowInvalid):
                    self.torn = 1
                    return
