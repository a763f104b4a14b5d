"""`edgebench run`: emulator (when no host) + Locust + analysis, wired by files and HTTP.

    plan = RunPlan(Path("scenarios/smoke.toml"))
    exit_code = run(plan)    # 0 thresholds met, 1 a threshold failed, 2 bad input

Children run in their own process groups: a Ctrl-C reaches this process only,
which asks Locust to stop (its records flush, the report is still written); a
second Ctrl-C ends everything at once. The emulator outlives Locust's last request.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click
import httpx
import orjson

from edgebench._errors import EdgebenchError
from edgebench.cleanup import cleanup, summary_line
from edgebench.payloads import PayloadPlan
from edgebench.progress import Progress
from edgebench.safety import Policy, decide, target_host
from edgebench.scenario import Scenario, load_scenario, with_duration
from edgebench.schedule import Schedule
from edgebench.traffic import LOCAL_TOKEN, api_token

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "locustfiles" / "edgegap.py"
BYTES_PER_RECORD = 600  # a record line is about 300 bytes: twice that, for the events and slack
MIN_FREE_BYTES = 50 * 1024 * 1024


@dataclass
class RunPlan:
    """RunPlan is what `edgebench run` was asked to do."""

    scenario: Path
    host: str | None = None
    duration: str | None = None
    processes: int = 1
    web: bool = False
    results_dir: Path | None = None
    time_scale: float = 1.0
    thresholds_file: Path | None = None
    dry_run: bool = False
    max_deployments: int | None = None  # None: the default for the host (see safety)
    cleanup: bool | None = None  # None: on for a non-loopback host
    allow_exceed: bool = False


def run(plan: RunPlan) -> int:
    """run does the whole run and returns the exit code (the verdict)."""
    scenario = load_scenario(plan.scenario)
    if plan.duration:
        scenario = with_duration(scenario, plan.duration)
    host = target_host(plan.host, scenario.target.host)
    policy = decide(host, scenario.rate.mode, plan.max_deployments, plan.cleanup, plan.allow_exceed)
    if plan.dry_run:
        click.echo(dry_run_text(scenario, host, policy))
        return 0
    results = plan.results_dir or default_results_dir(scenario)
    check_results_dir(results, expected_bytes(scenario))
    with ExitStack() as stack:
        if host is None:
            emulator = stack.enter_context(Emulator(scenario, plan.time_scale, results))
            host = emulator.url
        else:
            emulator = None
        click.echo(f"edgebench: {scenario.name} against {host}; records in {results}", err=True)
        command = locust_command(plan, host, results, policy)
        locust = Locust(command, results / "locust.log", plan.web)
        watch(locust, Progress(results, scenario.duration_s), emulator)
        locust.check()
        if policy.cleanup:
            report = cleanup(results, host, api_token() or LOCAL_TOKEN)
            click.echo(summary_line(report, results), err=True)
    return analyse(results, plan.thresholds_file)


def dry_run_text(scenario: Scenario, host: str | None, policy: Policy) -> str:
    """dry_run_text is the plan of a run: where, how fast, how many deployments, what bodies."""
    schedule = Schedule.from_scenario(scenario)
    expected = sum(1 for _ in schedule.arrivals())
    rate = scenario.rate
    most = min(expected, policy.max_deployments) if policy.max_deployments else expected
    lines = [
        f"dry run of {scenario.name} ({scenario.source}): nothing will be sent",
        f"target: {host or 'the embedded emulator'}"
        + (" (not loopback: the real API's safety checks apply)" if policy.remote else ""),
        f"token: {'set' if api_token() else 'not set'}",
        f"rate: {rate.mode} mode, limit {rate.limit}/s, factor {rate.factor:g}, "
        f"{scenario.duration_s:g} s",
    ]
    lines += [
        f"  stage {i}: {stage.kind} {stage.duration_s:g} s at {stage.rate * rate.factor:g}/s"
        for i, stage in enumerate(rate.stages)
    ]
    budget = (
        f" (budget --max-deployments {policy.max_deployments})" if policy.max_deployments else ""
    )
    lines.append(f"requests: about {expected}; deployments it may create: at most {most}{budget}")
    lines.append(f"cleanup at the end: {'on' if policy.cleanup else 'off'}")
    lines.append("first requests:")
    plan = PayloadPlan(scenario, run_tag="edgebench-<run>")
    for index in range(3):
        request = plan.request(index)
        lines.append(f"  {request.path} {request.json.decode()}")
    return "\n".join(lines)


def default_results_dir(scenario: Scenario) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path("results") / f"{stamp}-{scenario.name}"


def expected_bytes(scenario: Scenario) -> int:
    """expected_bytes is a generous size of the run's records, from the schedule's length."""
    seconds = scenario.duration_s
    schedule = Schedule.from_scenario(scenario)
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


def locust_command(plan: RunPlan, host: str, results: Path, policy: Policy) -> list[str]:
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", host]
    if policy.max_deployments:
        command += ["--max-deployments", str(policy.max_deployments)]
    if policy.remote:
        command += ["--allow-remote"]
    command += ["--scenario", str(plan.scenario), "--results-dir", str(results)]
    command += ["--csv", str(results / "locust"), "--html", str(results / "locust.html")]
    if plan.duration:
        command += ["--duration", plan.duration]
    if plan.processes > 1:
        command += ["--processes", str(plan.processes)]
    if not plan.web:
        command += ["--headless", "--only-summary", "--loglevel", "WARNING"]
    return command


class Locust:
    """Locust is the Locust process of the run, in its own process group.

    Headless, its output goes to locust.log in the results folder (our progress
    line and report say what matters); with the web UI it stays on the terminal,
    where Locust prints the UI's address.
    """

    def __init__(self, command: list[str], log: Path, web: bool) -> None:
        self.log = log
        output = None if web else log.open("wb")
        # Our own interpreter running Locust on our locustfile: no outside input in the command.
        self.process = subprocess.Popen(  # noqa: S603
            command, cwd=ROOT, stdout=output, stderr=output, start_new_session=True
        )
        if output:
            output.close()

    def check(self) -> None:
        """check turns Locust refusing to run (bad input: exit code 2) into our error."""
        if self.process.returncode != 2:
            return
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        errors = [line for line in text.splitlines() if line.startswith("Error: ")]
        message = "\n".join(line.removeprefix("Error: ") for line in errors)
        raise EdgebenchError(message or f"Locust stopped with exit code 2; see {self.log}")

    def interrupt(self) -> None:
        self._signal(signal.SIGINT)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, number: int) -> None:
        if self.process.poll() is None:
            # The whole group: with --processes, the workers are Locust's children.
            os.killpg(self.process.pid, number)


def watch(locust: Locust, progress: Progress, emulator: Emulator | None) -> None:
    """watch shows progress until Locust ends; Ctrl-C once stops it, twice aborts."""
    interrupts = 0
    while locust.process.poll() is None:
        try:
            time.sleep(1.0)
            progress.update()
            if emulator:
                emulator.sample()
        except KeyboardInterrupt:
            interrupts += 1
            if interrupts == 1:
                click.echo("\nedgebench: stopping (Ctrl-C again to abort) ...", err=True)
                locust.interrupt()
            else:
                locust.kill()
                raise
    progress.finish()


def analyse(results: Path, thresholds_file: Path | None) -> int:
    from analysis import thresholds
    from analysis.cli import one_screen
    from analysis.load import AnalysisError
    from analysis.report import analyze

    try:
        checks = thresholds.load_file(thresholds_file) if thresholds_file else None
        outcome = analyze(results, checks=checks)
    except (AnalysisError, thresholds.ThresholdError) as exc:
        raise EdgebenchError(str(exc)) from None
    if outcome.results:
        thresholds.write_junit(outcome.results, results / "junit.xml", results.name)
    click.echo(one_screen(outcome))
    return 0 if outcome.passed else 1


class Emulator:
    """Emulator is `edgebench emulator` on a free loopback port with the scenario's world."""

    def __init__(self, scenario: Scenario, time_scale: float, results: Path) -> None:
        self.scenario, self.time_scale, self.results = scenario, time_scale, results
        self.url = ""
        self._log = self._readings = None

    def __enter__(self) -> Emulator:
        command = [sys.executable, "-m", "edgebench.cli", "emulator", "--port", "0"]
        command += ["--seed", str(self.scenario.seed), "--time-scale", str(self.time_scale)]
        if self.scenario.target.world:
            command += ["--world", str(world_path(self.scenario))]
        self._log = (self.results / "emulator.log").open("wb")
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and command)
            command, stdout=subprocess.PIPE, stderr=self._log, start_new_session=True
        )
        self.url = self._read_url()
        self._client = httpx.Client(base_url=self.url, timeout=2.0)
        self._readings = (self.results / "emulator-metrics.jsonl").open("ab")
        return self

    def _read_url(self) -> str:
        line = self.process.stdout.readline().decode().strip()  # its first line, or "" if it died
        if not line.startswith("http://"):
            self.__exit__()
            log = (self.results / "emulator.log").read_text(errors="replace").strip()
            raise EdgebenchError(f"the emulator did not start: {log.splitlines()[-1:] or '?'}")
        return line

    def sample(self) -> None:
        """sample appends the emulator's active deployments now to emulator-metrics.jsonl."""
        try:
            metrics = self._client.get("/_emulator/metrics").json()
        except (httpx.HTTPError, ValueError):
            return
        active = metrics.get("active_deployments") or {}
        reading = {
            "t": round(time.time(), 3),
            "active": active.get("total"),
            "holding_capacity": active.get("holding_capacity"),
            "deployments_created": metrics.get("deployments_created"),
        }
        self._readings.write(orjson.dumps(reading) + b"\n")
        self._readings.flush()

    def __exit__(self, *_exc) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        for handle in (self._readings, self._log):
            if handle:
                handle.close()


def world_path(scenario: Scenario) -> Path:
    """world_path is the scenario's world file, relative to the scenario file."""
    world = Path(scenario.target.world)
    return world if world.is_absolute() else Path(scenario.source).parent / world
