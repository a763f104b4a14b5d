"""Loading a run: every worker's request and event logs merged into DataFrames.

Lines that do not parse (a process killed mid-write leaves a torn last line)
are counted and skipped, never fatal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pandas as pd

REQUEST_COLUMNS = {
    "index": "Int64",
    "t_sched": "float64",
    "t_send": "float64",
    "endpoint": "string",
    "status": "Int64",
    "outcome": "string",
    "latency_ms": "float64",
    "latency_sched_ms": "float64",
    "request_id": "string",
    "region": "string",
    "players": "Int64",
    "worker": "string",
    "stage": "Int64",
    "offered_rate": "float64",
}
EVENT_COLUMNS = {
    "t_received": "float64",
    "event": "string",
    "request_id": "string",
    "current_status": "string",
    "source": "string",
    "worker": "string",
}


class AnalysisError(Exception):
    """AnalysisError is a run folder the analysis cannot read: it names the folder and the fix."""


@dataclass
class Run:
    """Run is one results folder, loaded."""

    folder: Path
    requests: pd.DataFrame
    events: pd.DataFrame
    manifest: dict = field(default_factory=dict)
    skipped_lines: int = 0


def load_run(folder: str | Path) -> Run:
    """load_run reads requests-*.jsonl, events-*.jsonl and manifest.json from a run folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AnalysisError(f"{folder}: not a folder; pass a run's results folder")
    requests, skipped_requests = _frame(sorted(folder.glob("requests-*.jsonl")), REQUEST_COLUMNS)
    events, skipped_events = _frame(sorted(folder.glob("events-*.jsonl")), EVENT_COLUMNS)
    requests = requests.sort_values("t_sched", kind="stable").reset_index(drop=True)
    return Run(folder, requests, events, _manifest(folder), skipped_requests + skipped_events)


def _frame(paths: list[Path], columns: dict[str, str]) -> tuple[pd.DataFrame, int]:
    rows, skipped = [], 0
    for path in paths:
        for line in path.read_bytes().splitlines():
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                skipped += 1
                continue
            if isinstance(record, dict):
                rows.append(record)
            else:
                skipped += 1
    frame = pd.DataFrame(rows, columns=list(columns))
    return frame.astype(columns), skipped


def _manifest(folder: Path) -> dict:
    path = folder / "manifest.json"
    if not path.exists():
        return {}
    try:
        manifest = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise AnalysisError(f"{path}: not valid JSON ({exc}); restore or delete it") from None
    return manifest if isinstance(manifest, dict) else {}
