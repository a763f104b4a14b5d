"""The results folder of a run: where it goes by default, and whether it can take the records.

A results folder holds one run: a run refuses a folder that holds another run's records
(or, with --overwrite, clears the files edgebench writes there first), and every record
file carries the run's id in its name (edgebench.records.log_name).
"""

from __future__ import annotations

import errno
import itertools
import shutil
from datetime import UTC, datetime
from pathlib import Path

from edgebench._errors import EdgebenchError
from edgebench.plan.schedule import Schedule

RESULTS = Path("results")
# The Locust process's exit code when the records could not be written (a full disk).
RESULTS_UNWRITABLE_EXIT = 3
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)  # the errors of a write with no room left
# What marks a folder as holding a run, and every file a run and its analysis write there.
RECORDS = ("manifest.json", "requests-*.jsonl", "events-*.jsonl")
RUN_FILES = (
    *RECORDS,
    "webhooks-*.json",
    "emulator-metrics.jsonl",
    "emulator.log",
    "locust.log",
    "locust_*.csv",
    "locust.html",
    "cleanup.json",
    "summary.json",
    "report.html",
    "junit.xml",
    "*.png",
    "*.svg",
)
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


def run_tag(results_dir: Path) -> str:
    """run_tag is the tag every deployment of a run carries: what a cleanup sweeps by.

    >>> run_tag(Path("results/20261128T093000Z-smoke"))
    'edgebench-20261128T093000Z-smoke'
    """
    return f"edgebench-{results_dir.name}"


def holds_a_run(folder: Path) -> bool:
    """holds_a_run is whether a folder has a manifest or records already."""
    return folder.is_dir() and any(any(folder.glob(pattern)) for pattern in RECORDS)


def next_run_folder(parent: Path) -> Path:
    """next_run_folder is where the web UI's next run writes (`edgebench run --web-wait`,
    a run each START): the results folder while it holds no run, else its first free
    run-2, run-3, ... So every run started from the form has a folder of its own.

    >>> next_run_folder(Path("/nonexistent/results")).as_posix()
    '/nonexistent/results'
    """
    if not holds_a_run(parent):
        return parent
    return next(
        folder for n in itertools.count(2) if not holds_a_run(folder := parent / f"run-{n}")
    )


def run_folders(parent: Path) -> list[Path]:
    """run_folders are the runs the web UI started under a results folder, in order: the
    folder itself, then run-2, run-3, ... (those whose run began: a manifest with an epoch)."""
    from edgebench.manifest import read_manifest

    numbered = sorted(
        (p for p in parent.glob("run-*") if p.name[4:].isdigit()), key=lambda p: int(p.name[4:])
    )
    return [folder for folder in (parent, *numbered) if "epoch" in read_manifest(folder)]


def refuse_used(folder: Path, option: str = "--results-dir") -> None:
    """refuse_used fails when the folder holds another run's records: one folder, one run."""
    if holds_a_run(folder):
        raise EdgebenchError(
            f"{option} {folder}: holds the records of an earlier run; pass another folder, "
            "or --overwrite to clear its run files first"
        )


def clear_run_files(folder: Path) -> int:
    """clear_run_files deletes the files a run and its analysis wrote (RUN_FILES); a count."""
    removed = 0
    for pattern in RUN_FILES:
        for path in folder.glob(pattern):
            if path.is_file():
                path.unlink()
                removed += 1
    return removed


SEARCH_FILES = ("probe-*", "confirm", "sensitivity*", "{kind}.json", "{kind}.html", "{kind}.png")


def prepare_search_dir(folder: Path, kind: str, overwrite: bool) -> None:
    """prepare_search_dir makes the folder ready for a search or advice (kind): one holding
    an earlier one is refused, or with --overwrite cleared first (as a run's folder is)."""
    if (folder / f"{kind}.json").exists():
        if not overwrite:
            raise EdgebenchError(
                f"--results-dir {folder}: holds an earlier {kind}; pass another folder, or "
                "--overwrite to clear it first"
            )
        for pattern in SEARCH_FILES:
            for path in folder.glob(pattern.format(kind=kind)):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    folder.mkdir(parents=True, exist_ok=True)


def prepare_results_dir(folder: Path, needed: int, overwrite: bool = False) -> None:
    """prepare_results_dir makes the folder ready for one run, or fails before any traffic."""
    if overwrite and folder.is_dir():
        clear_run_files(folder)
    refuse_used(folder)
    check_results_dir(folder, needed)


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
