"""`edgebench simulate`: a scenario in virtual time, written as a live run's results folder.

plan = SimulatePlan(Path("scenarios/launch-forecast.toml"), duration="24h")
exit_code = simulate(plan)   # 0 thresholds met, 1 a threshold failed, 2 bad input

The folder has what `edgebench run` writes (requests-*.jsonl, events-*.jsonl,
emulator-metrics.jsonl, manifest.json), so `analyze`, `compare` and thresholds read it
unchanged; manifest.json says `simulated: true` and gives the model's parameters.
"""

from __future__ import annotations

import io
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click
import orjson

from edgebench._errors import EdgebenchError
from edgebench.costs import cost_basis
from edgebench.manifest import scenario_facts, utc, write_manifest
from edgebench.plan.overrides import Overrides, RunSpec
from edgebench.plan.scenario import Scenario
from edgebench.plan.schedule import Schedule
from edgebench.platform import scenario_warnings, scenario_world
from edgebench.records import (
    EVENT_FIELDS,
    EVENT_NAMES,
    FLUSH_EVERY_S,
    PLACEMENTS_FILE,
    READINGS_FILE,
    REQUEST_FIELDS,
    REQUEST_NAMES,
    ColumnarWriter,
    RecordWriter,
    log_name,
)
from edgebench.runfolder import default_results_dir, expected_bytes, prepare_results_dir
from edgebench.simulate.engine import DEFAULT_LATENCY_MS, WORKER, Simulation, Sink
from edgebench.simulate.pool import Job, ProbePool, default_jobs
from edgebench.verdict import analyse, refuse_baseline_checks
from edgebench.warm import wants_warm, warm_body
from emulator import (
    ConfigError,
    Distribution,
    EmulatorConfig,
    FleetLog,
    RateLimits,
    distribution_option,
    parse_preload,
)

if TYPE_CHECKING:
    from analysis.load import Run

FLUSH_EVERY = 50_000  # records held before they are written (or a second's, if fewer)
CHECK_EVERY = 1024  # records between two looks at the clock


@dataclass
class SimulatePlan:
    """SimulatePlan is what `edgebench simulate` was asked to do."""

    scenario: Path
    results_dir: Path | None = None
    world: Path | None = None
    duration: str | None = None
    seed: int | None = None
    rate_mode: str | None = None
    rate_factor: str | None = None
    limit: int | None = None  # the organisation's limit instead of the scenario's
    costs: Path | None = None  # a prices file instead of the scenario's [costs]
    time_scale: float = 1.0
    latency_ms: str | None = None  # a distribution, as a TOML value (default: measured)
    thresholds_file: Path | None = None
    checks: tuple[str, ...] = ()  # --check: inline, with --thresholds'
    overwrite: bool = False
    plots: bool = True  # draw the report's curves
    warm_start: bool | None = None  # None: warm for a forecast's window (edgebench.warm)
    sensitivity: bool = False  # simulate again over the assumptions (sensitivity.json)
    records: str = "arrow"  # or "jsonl": the live runs' JSON lines
    placements: bool = False  # keep each fleet deploy's placement (fleet-placements.npz)


class FileSink(Sink):
    """FileSink writes a simulation's records where a live run's would be."""

    def __init__(self, folder: Path, run_id: str, columnar: bool = False) -> None:
        self.columnar = columnar
        self.requests: RecordWriter | ColumnarWriter
        self.events: RecordWriter | ColumnarWriter
        if columnar:  # Arrow: a fourteenth of the bytes (results/README.md, "Arrow records")
            self.requests = ColumnarWriter(
                folder / log_name("requests", run_id, WORKER, "arrow"), REQUEST_FIELDS
            )
            self.events = ColumnarWriter(
                folder / log_name("events", run_id, WORKER, "arrow"), EVENT_FIELDS
            )
        else:
            self.requests = RecordWriter(folder / log_name("requests", run_id, WORKER))
            self.events = RecordWriter(folder / log_name("events", run_id, WORKER))
        self.readings = RecordWriter(folder / READINGS_FILE)
        self._held = 0
        self._flushed = time.monotonic()

    def request(self, row: tuple) -> None:
        self._counted(
            self.requests, row if self.columnar else dict(zip(REQUEST_NAMES, row, strict=True))
        )

    def event(self, record: dict) -> None:
        self._counted(self.events, _event_row(record) if self.columnar else record)

    def reading(self, record: dict) -> None:
        self.readings.add(record)

    def _counted(self, writer: RecordWriter | ColumnarWriter, record) -> None:
        writer.add(record)
        self._held += 1
        # At least once a second, as every writer of a run (results/README.md): a killed
        # simulation loses its last second at most. The clock is read every CHECK_EVERY.
        if self._held >= FLUSH_EVERY or (
            self._held % CHECK_EVERY == 0 and time.monotonic() - self._flushed >= FLUSH_EVERY_S
        ):
            self.flush()

    def flush(self) -> None:
        for writer in (self.requests, self.events, self.readings):
            writer.flush()
        self._held = 0
        self._flushed = time.monotonic()

    def close(self) -> None:
        for writer in (self.requests, self.events, self.readings):
            writer.close()


class HeldSink(Sink):
    """HeldSink keeps a simulation's records in memory, never written: the request and event
    records as the Arrow log's batches, the readings as their dicts (a probe that keeps only
    its summary: analysis.load.run_of_records reads them as load_run reads them written)."""

    def __init__(self) -> None:
        self.requests = ColumnarWriter(None, REQUEST_FIELDS)
        self.events = ColumnarWriter(None, EVENT_FIELDS)
        self.readings: list[dict] = []

    def request(self, row: tuple) -> None:
        self.requests.add(row)

    def event(self, record: dict) -> None:
        self.events.add(_event_row(record))

    def reading(self, record: dict) -> None:
        self.readings.append(record)

    def close(self) -> None:
        self.requests.close()
        self.events.close()


def _event_row(record: dict) -> tuple:
    return tuple(record[name] for name in EVENT_NAMES)


def latency_distribution(text: str | None) -> Distribution:
    """latency_distribution reads --latency-ms: a number (fixed) or a TOML inline table."""
    if text is None:
        return DEFAULT_LATENCY_MS
    try:
        return distribution_option(text, "--latency-ms")
    except ConfigError as exc:
        raise EdgebenchError(str(exc)) from None


def model_config(scenario: Scenario, time_scale: float) -> EmulatorConfig:
    """model_config is the platform `edgebench run` would start for the scenario (its world,
    with the scenario's match length; its seed; the emulator's default limits), at
    time_scale."""
    limits = RateLimits(deploy=scenario.rate.limit)  # the organisation's: the scenario's
    return EmulatorConfig(
        world=scenario_world(scenario),
        seed=scenario.seed,
        time_scale=time_scale,
        rate_limits=limits,
    )


def simulate(plan: SimulatePlan, echo=True) -> int:
    """simulate runs the plan, writes its folder and its analysis; the verdict's exit code."""
    spec = RunSpec(str(plan.scenario), Overrides.of(plan).absolute())
    scenario = spec.resolve()
    refuse_baseline_checks(scenario, plan.thresholds_file, plan.checks)
    for line in scenario_warnings(scenario):
        click.echo(f"edgebench: warning: {line}", err=True)
    results = simulate_into(scenario, plan, echo, spec)
    if plan.sensitivity:
        over_assumptions(scenario, plan, results)
    return analyse(results, plan.thresholds_file, plan.plots, plan.checks)


def over_assumptions(scenario: Scenario, plan: SimulatePlan, results: Path) -> dict:
    """over_assumptions simulates the scenario again under each assumption moved
    (edgebench.simulate.sensitivity), the machine's cores at once, and writes
    results/sensitivity.json."""
    from edgebench.simulate.sensitivity import sensitivity

    click.echo("edgebench: simulating again over the world's assumptions", err=True)
    job = Job(scenario, results, plan.warm_start, False, plan.time_scale, plan.latency_ms)
    summary = summary_of(results)
    return sensitivity(scenario, results, summary, job, default_jobs(), simulate_all)


def simulate_all(jobs: list[Job], workers: int) -> list[dict]:
    """simulate_all is each job's summary, in order, `workers` simulated at once (a pool of
    its own: for one round; a search keeps a ProbePool)."""
    with ProbePool(min(workers, len(jobs)), simulate_one) as pool:
        return pool.run(jobs)


def simulate_one(job: Job) -> dict:
    """simulate_one simulates a job into its folder and is its summary (summary.json)."""
    return summarized(job, simulated_run(job))


def simulated_run(job: Job) -> Run:
    """simulated_run simulates a job into its folder and is the run as the analysis reads
    it: loaded from its records, or where the job keeps none, from the records held in
    memory (never written: a day's are about 100 MB, and writing and reading them back
    cost a sixth of a probe)."""
    from analysis.load import load_run, run_of_records

    plan = SimulatePlan(
        Path(job.scenario.source),
        results_dir=job.folder,
        overwrite=True,
        warm_start=job.warm_start,
        time_scale=job.time_scale,
        latency_ms=job.latency_ms,
        placements=job.placements,
    )
    if job.keep_records:
        simulate_into(job.scenario, plan, echo=False)
        return load_run(job.folder, lean=True)
    held = HeldSink()
    simulate_into(job.scenario, plan, echo=False, held=held)
    return run_of_records(job.folder, held.requests.batches, held.events.batches, held.readings)


def summarized(job: Job, run: Run) -> dict:
    """summarized is a job's run's summary, written as its summary.json."""
    from analysis.metrics import summarize

    summary = summarize(run)
    (job.folder / "summary.json").write_bytes(
        orjson.dumps(summary, option=orjson.OPT_SERIALIZE_NUMPY)
    )
    return summary


def summary_of(folder: Path) -> dict:
    """summary_of is a simulated folder's summary (its records, loaded lean)."""
    from analysis.load import load_run
    from analysis.metrics import summarize

    return summarize(load_run(folder, lean=True))


def simulate_into(
    scenario: Scenario,
    plan: SimulatePlan,
    echo=True,
    spec: RunSpec | None = None,
    held: HeldSink | None = None,
) -> Path:
    """simulate_into simulates scenario (spec resolved, where a command resolved it) into its
    results folder and returns the folder; its records go to held where given (the folder
    then holds its manifest, and its placements where asked)."""
    latency = latency_distribution(plan.latency_ms)
    config = model_config(scenario, plan.time_scale)
    schedule = Schedule.from_scenario(scenario)
    results = plan.results_dir or default_results_dir(scenario.name)
    prepare_results_dir(results, expected_bytes(schedule), plan.overwrite)
    run_id, epoch = uuid.uuid4().hex[:8], time.time()
    facts = scenario_facts(scenario, schedule) | {"command_line": ["edgebench", *sys.argv[1:]]}
    if spec is not None:
        facts["run_spec"] = spec.given_run()
    write_manifest(
        results,
        **facts,
        run_id=run_id,
        epoch=epoch,
        epoch_utc=utc(epoch),
        workers=1,
        simulated=True,
        records="held" if held else plan.records,
        target={"host": "simulated", "token_set": False},
        # Under "emulator" as a live run's, so the report and compare read the world.
        emulator={"embedded": False, "simulated": True} | _model_facts(config, latency),
        costs=cost_basis(scenario, config.world),
    )
    sink = held or FileSink(results, run_id, columnar=plan.records == "arrow")
    simulation = Simulation(scenario, config, sink, epoch=epoch, latency_ms=latency)
    write_manifest(results, warm_start=_warm(simulation, scenario, config, plan.warm_start))
    if plan.placements:  # from the run's start: a warm start's preloaded matches are the past
        simulation.model.platform.fleet_log = FleetLog()
    if echo:
        click.echo(f"edgebench: simulating {scenario.name}; records in {results}", err=True)
    interrupted = _run(simulation, scenario.duration_s, echo)
    sink.close()
    if plan.placements:
        write_placements(results, simulation.model.platform.fleet_log)
    ended = simulation.now
    write_manifest(
        results,
        ended_at=ended,
        ended_at_utc=utc(ended),
        schedule_completed=not interrupted,
        **({"interrupted_at_s": round(ended - epoch, 3)} if interrupted else {}),
    )
    return results


def write_placements(folder: Path, log: FleetLog) -> None:
    """write_placements keeps where each fleet deploy went (edgebench.advise.onepass reads it)."""
    import numpy as np

    lists = orjson.dumps({"lists": [list(ids) for ids in log.lists], "origins": list(log.origins)})
    columns = {name: np.frombuffer(getattr(log, name), dtype=getattr(log, name).typecode)
               for name in FleetLog.COLUMNS}  # fmt: skip
    columns["names"] = np.frombuffer(lists, dtype=np.uint8)
    np.savez(folder / PLACEMENTS_FILE, **columns)  # type: ignore[arg-type]


def _warm(
    simulation: Simulation, scenario: Scenario, config: EmulatorConfig, asked: bool | None
) -> dict:
    """_warm starts the model warm when asked (or by default for a forecast's window): the
    manifest's `warm_start`."""
    if not wants_warm(scenario, asked):
        return {"deployments": 0, "placed": 0}
    lifetime = config.world.lifecycle.lifetime_s.mean
    body = warm_body(scenario, lifetime, config.time_scale)
    placed = simulation.model.preload(parse_preload(body), 0.0)
    return {"deployments": len(body["deployments"]), "placed": placed}


def _run(simulation: Simulation, duration_s: float, echo: bool) -> bool:
    """_run runs the simulation with a progress bar; True when Ctrl-C cut it short."""
    with click.progressbar(
        length=max(1, int(duration_s)),
        label="simulated",
        file=sys.stderr if echo else io.StringIO(),
        show_eta=True,
    ) as bar:
        shown = [0]

        def advance(seconds: float) -> None:
            step = min(int(seconds), bar.length or 0) - shown[0]
            if step > 0:
                bar.update(step)
                shown[0] += step

        try:
            simulation.run(on_progress=advance)
        except KeyboardInterrupt:
            click.echo("\nedgebench: interrupted; keeping what was simulated", err=True)
            return True
        advance(duration_s)
    return False


def _model_facts(config: EmulatorConfig, latency: Distribution) -> dict:
    """_model_facts is the model a simulation ran, for its manifest."""
    return {
        "world": config.world.describe(),
        "seed": config.seed,
        "time_scale": config.time_scale,
        "rate_limits": asdict(config.rate_limits),
        "faults": config.faults.describe(),
        "latency_ms": latency.describe(),
    }
