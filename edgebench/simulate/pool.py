"""Simulated probes, several at once: one process each, forked from the search's own.

    with ProbePool(2, simulate_one) as pool:     # simulate_one: edgebench.simulate.command
        summaries = pool.run([Job(scenario, folder), ...])

Each probe is `edgebench simulate` into its folder, summarised (summary.json), its records
kept or removed (the work the pool is given); a probe is independent of the others, so
`jobs` of them run at once in a pool of forked processes (the modules already loaded: no
start-up per probe). One job, or one probe: in this process.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from edgebench.plan.scenario import Scenario


@dataclass(frozen=True)
class Job:
    """Job is one probe: the scenario as varied, its folder, how it starts, what it keeps."""

    scenario: Scenario
    folder: Path
    warm_start: bool | None = None
    keep_records: bool = True
    time_scale: float = 1.0
    latency_ms: str | None = None  # simulate's --latency-ms (None: its default)
    placements: bool = False  # keep each fleet deploy's placement (a one-pass sizing)
    match_waits: bool = False  # keep each match's due time and rest of wait (the limit's pass)


def default_jobs() -> int:
    """default_jobs is the machine's cores (those this process may use)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class ProbePool:
    """ProbePool is a search's processes, made once and reused by every round of probes
    (a pool a round cost more than the probes of a short scenario).

    with ProbePool(2, simulate_one) as pool:
        summaries = pool.run([Job(...), Job(...)])
    """

    def __init__(self, workers: int, work: Callable[[Job], dict]) -> None:
        self.workers = workers
        self.work = work  # a job's summary (module-level: a forked process takes it by name)
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> ProbePool:
        if self.workers > 1:
            # What a probe loads, loaded before the fork: each process has it from the start
            # (the work's own module is loaded: it was handed over).
            import analysis.metrics  # noqa: F401

            context = get_context("fork")  # the parent's modules, already imported
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=context, initializer=_one_core
            )
        return self

    def __exit__(self, *_: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def run(self, jobs: list[Job]) -> list[dict]:
        """run is each job's summary, in order, at once in the pool (a single one there too:
        its processes have run probes before, this one may not have)."""
        if self._pool is None:
            return [self.work(job) for job in jobs]
        return list(self._pool.map(self.work, jobs))


def _one_core() -> None:
    """_one_core keeps a probe process to one core: Arrow's thread pools (reading the
    records) would otherwise start one thread a core in every probe at once."""
    import pyarrow

    pyarrow.set_cpu_count(1)
    pyarrow.set_io_thread_count(1)
