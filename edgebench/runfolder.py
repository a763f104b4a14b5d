"""The results folder of a run: where it goes by default, and whether it can take the records."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from edgebench._errors import EdgebenchError
from edgebench.plan.schedule import Schedule

RESULTS = Path("results")
BYTES_PER_RECORD = 600  # a record line is about 300 bytes: twice that, for the events and slack
MIN_FREE_BYTES = 50 * 1024 * 1024


def default_results_dir(scenario_name: str, now: datetime | None = None) -> Path:
    """default_results_dir is results/<UTC timestamp>-<scenario>.

    >>> default_results_dir("smoke", datetime(2026, 11, 28, 9, 30, tzinfo=UTC)).as_posix()
    'results/20261128T093000Z-smoke'
    """
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return RESULTS / f"{stamp}-{scenario_name}"


def expected_bytes(schedule: Schedule) -> int:
    """expected_bytes is a generous size of the run's records, from the schedule's peak."""
    seconds = schedule.duration_s
    peak = max((schedule.rate_at(t) for t in range(int(seconds) + 1)), default=0.0)
    return int(peak * seconds * BYTES_PER_RECORD)


def check_results_dir(folder: Path, needed: int) -> None:
    """check_results_dir fails before any traffic if the folder cannot take the records."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_bytes(b"x" * 4096)
        probe.unlink()
    except OSError as exc:
        raise EdgebenchError(
            f"--results-dir {folder}: cannot write there ({exc.strerror}); "
            "pick a writable folder or fix its permissions"
        ) from None
    free = shutil.disk_usage(folder).free
    if free < needed + MIN_FREE_BYTES:
        raise EdgebenchError(
            f"--results-dir {folder}: {free // 2**20} MB free, the run needs about "
            f"{(needed + MIN_FREE_BYTES) // 2**20} MB; free some space or pick another folder"
        )
