"""`edgebench run`: emulator (when no host) + Locust + analysis, wired by files and HTTP.

plan = RunPlan(Path("scenarios/smoke.toml"))
exit_code = run(plan)    # 0 thresholds met, 1 a threshold failed, 2 bad input
"""

from __future__ import annotations

import shutil
import socket
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import click

from checks import Watch, parse_watch
from edgebench._errors import EdgebenchError
from edgebench.costs import cost_basis
from edgebench.manifest import read_manifest, utc, write_manifest
from edgebench.plan.overrides import Overrides, RunSpec
from edgebench.plan.payloads import preview
from edgebench.plan.scenario import Scenario
from edgebench.plan.schedule import Schedule
from edgebench.platform import scenario_warnings, scenario_world
from edgebench.realapi.cleanup import cleanup, summary_line
from edgebench.realapi.safety import (
    Policy,
    check_reachable,
    decide,
    is_loopback,
    target_host,
)
from edgebench.realapi.token import api_token, request_token
from edgebench.runfolder import (
    DISK_FULL,
    RESULTS_UNWRITABLE_EXIT,
    default_results_dir,
    expected_bytes,
    prepare_results_dir,
    run_folders,
)
from edgebench.runner.metrics import METRICS_FILE, RunMetrics
from edgebench.runner.processes import LOCUSTFILE, ROOT, EmulatorProcess, LocustProcess, watch
from edgebench.runner.progress import Progress
from edgebench.runner.watch import REMOTE_DEFAULT, Watcher
from edgebench.verdict import analyse, refuse_baseline_checks
from edgebench.warm import wants_warm, warm_body, warms_by_default


@dataclass
class RunPlan:
    """RunPlan is what `edgebench run` was asked to do."""

    scenario: Path
    host: str | None = None
    duration: str | None = None
    processes: int = 1
    web: bool = False
    web_wait: bool = False  # the web UI waits for runs started from its form
    web_port: int = 8089
    web_linger_s: int = 10  # --web: the UI stays this long after the run, its report linked
    web_host: str = "127.0.0.1"  # where the web UI and --metrics-port listen
    results_dir: Path | None = None
    time_scale: float = 1.0
    thresholds_file: Path | None = None
    checks: tuple[str, ...] = ()  # --check: inline, with --thresholds'
    dry_run: bool = False
    max_deployments: int | None = None  # None: the default for the host (see safety)
    cleanup: bool | None = None  # None: on for a non-loopback host
    allow_exceed: bool = False
    overwrite: bool = False  # clear a results folder's run files instead of refusing it
    rate_mode: str | None = None  # None: the scenario's
    rate_factor: str | None = None
    limit: int | None = None  # the organisation's limit instead of the scenario's
    costs: Path | None = None  # a prices file instead of the scenario's [costs]
    world: Path | None = None  # the embedded emulator's world instead of the scenario's
    seed: int | None = None
    master: bool = False  # Locust's master: the traffic comes from `edgebench worker`s
    expect_workers: int | None = None
    master_bind_host: str = "*"
    master_bind_port: int = 5557
    expect_workers_max_wait: int = 300
    metrics_port: int | None = None  # serve the run's /metrics there (0: a free port)
    plots: bool = True  # draw the report's curves
    warm_start: bool | None = None  # None: warm for a forecast's window (edgebench.warm)


def refuse_bad_distribution(plan: RunPlan) -> None:
    """refuse_bad_distribution names the fix for master options that do not go together."""
    if plan.expect_workers and not plan.master:
        raise EdgebenchError("--expect-workers: only with --master; add --master")
    if plan.master and not plan.expect_workers:
        raise EdgebenchError("--master: say how many workers to wait for with --expect-workers N")
    if plan.master and plan.processes > 1:
        raise EdgebenchError(
            "--processes with --master: the master sends nothing itself; "
            "pass --processes to each `edgebench worker` instead"
        )


def run(plan: RunPlan) -> int:
    """run does the whole run and returns the exit code (the verdict)."""
    if plan.web_wait:
        plan = replace(plan, web=True)
    refuse_bad_distribution(plan)
    spec = RunSpec(portable(plan.scenario), Overrides.of(plan).absolute())
    scenario = spec.resolve()
    host = target_host(plan.host, scenario.target.host)
    policy = decide(host, scenario.rate.mode, plan.max_deployments, plan.cleanup, plan.allow_exceed)
    warn_open_controls(plan, host)
    refuse_warm_elsewhere(plan, scenario, host)
    if host is None:  # the embedded emulator: its world and the scenario's matches
        for line in scenario_warnings(scenario):
            click.echo(f"edgebench: warning: {line}", err=True)
    refuse_baseline_checks(scenario, plan.thresholds_file, plan.checks)
    costs = {}
    if scenario.costs:  # checked before the run: a price the world cannot bill is bad input
        costs = {"costs": cost_basis(scenario, scenario_world(scenario))}
    if plan.dry_run:
        click.echo(dry_run_text(scenario, host, policy))
        return 0
    if host is not None and not plan.master:  # a master's workers may reach what it cannot
        check_reachable(host, request_token())
    schedule = Schedule.from_scenario(scenario)
    results = plan.results_dir or default_results_dir(scenario.name)
    new_folder = not results.exists()
    prepare_results_dir(results, expected_bytes(schedule), plan.overwrite)
    with ExitStack() as stack:
        emulator, warm = None, {}
        if host is None:
            emulator = _embedded_emulator(stack, spec, scenario, plan, results, new_folder)
            host = emulator.url
            # Written with the run's facts at the end: Locust refuses a folder with a manifest.
            warm = {"warm_start": _warm(emulator, scenario, plan)}
        click.echo(f"edgebench: {scenario.name} against {host}; records in {results}", err=True)
        if plan.master:
            click.echo(waiting_text(plan, emulator is not None), err=True)
        metrics = RunMetrics(scenario, results.name, host)
        metrics_port = _serve_metrics(metrics, plan)
        command = locust_command(plan, spec, host, results, policy, metrics_port)
        locust = LocustProcess(command, results / "locust.log", plan.web)
        watcher = Watcher(watches_for(scenario, policy))
        progress = Progress(
            results,
            scenario.duration_s,
            on_record=both(watcher, metrics),
            from_first_record=plan.web_wait,
        )
        aborted = watch(locust, progress, emulator, watcher, metrics)
        folders = [results]  # what a cleanup goes over, whatever stops the run
        try:
            with disk_full_stops(results, locust):
                metrics.write(results / METRICS_FILE)
                locust.check()
                if not started(results, locust, plan.web):
                    folders = []
                    click.echo(f"edgebench: {NOTHING_STARTED}", err=True)
                    return 0
                folders = run_folders(results) if plan.web_wait else [results]
                # What the user typed, and what the emulator ran with (Locust knows neither).
                described = {"emulator": emulator.describe()} if emulator else {}
                facts = {"command_line": ["edgebench", *sys.argv[1:]]} | costs | described
                for folder in folders:  # the warm start was the first run's, a stop the last's
                    first, last = folder == folders[0], folder == folders[-1]
                    extra = (warm if first else {}) | (
                        watch_facts(watcher, aborted) if last else {}
                    )
                    write_manifest(folder, **facts, **extra)
        finally:  # whatever stopped the run, what it created is stopped
            if policy.cleanup:
                for folder in run_folders(results) if plan.web_wait and folders else folders:
                    report = cleanup(folder, host, request_token())
                    click.echo(summary_line(report, folder), err=True)
    return verdicts(folders, plan)


NOTHING_STARTED = "the web UI closed before a run was started from it: nothing was sent"


def verdicts(folders: list[Path], plan: RunPlan) -> int:
    """verdicts analyses each run (one, or each started from the web UI's form) and is the
    worst verdict's exit code: 1 a failure, else 3 an incomplete run, else 0."""
    codes = {analyse(folder, plan.thresholds_file, plan.plots, plan.checks) for folder in folders}
    return 1 if 1 in codes else 3 if 3 in codes else 0


@contextmanager
def disk_full_stops(results: Path, locust: LocustProcess) -> Iterator[None]:
    """disk_full_stops ends a run whose results folder filled up with one line: the Locust
    process stopped the traffic at once when its records could not be written (its exit
    code says so, unless its own files failed it first), and the run's files fail here."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in DISK_FULL:
            raise
        raise EdgebenchError(unwritable_text(results)) from None
    if locust.process.returncode == RESULTS_UNWRITABLE_EXIT:  # and the space came back
        raise EdgebenchError(unwritable_text(results))


def unwritable_text(results: Path) -> str:
    return (
        f"{results}: no space left on device: the run stopped sending; the records "
        f"written until then are kept; free some space, then `edgebench analyze {results}`"
    )


def refuse_warm_elsewhere(plan: RunPlan, scenario: Scenario, host: str | None) -> None:
    """refuse_warm_elsewhere: only the embedded emulator can be started warm; a run asked
    to start warm elsewhere is refused, one whose forecast window would start warm is told."""
    if host is None or plan.warm_start is False:
        return
    if plan.warm_start:
        raise EdgebenchError(
            f"--warm-start: only the embedded emulator can start warm, not {host}; "
            "drop --host, or --warm-start"
        )
    if warms_by_default(scenario):
        click.echo(
            f"edgebench: warning: {host} starts as it is: a window of a forecast starts warm "
            "only on the embedded emulator",
            err=True,
        )


def _warm(emulator: EmulatorProcess, scenario: Scenario, plan: RunPlan) -> dict:
    """_warm preloads the embedded emulator with what runs at the run's start (or nothing):
    the manifest's `warm_start`."""
    if not wants_warm(scenario, plan.warm_start):
        return {"deployments": 0, "placed": 0}
    lifetime = scenario_world(scenario).lifecycle.lifetime_s.mean
    body = warm_body(scenario, lifetime, plan.time_scale)
    return {"deployments": len(body["deployments"]), "placed": emulator.preload(body)}


def warn_open_controls(plan: RunPlan, host: str | None) -> None:
    """warn_open_controls warns when the web UI or the metrics listen beyond this machine
    while the run sends to a host that is not loopback: whoever reaches the UI can start
    runs against it, with the run's token."""
    serves = plan.web or plan.metrics_port is not None
    if not serves or is_loopback(f"http://{plan.web_host}") or host is None or is_loopback(host):
        return
    click.echo(
        f"edgebench: warning: --web-host {plan.web_host}: the web UI and metrics listen beyond "
        f"this machine, and the run sends to {host}: whoever reaches them can start runs "
        "there with this run's token; keep the default 127.0.0.1 unless the network is yours",
        err=True,
    )


def started(results: Path, locust: LocustProcess, web: bool) -> bool:
    """started is whether a run began; a headless one whose traffic never started (Locust
    stopped before it) fails instead of analysing an empty folder as if nothing had been
    asked. A web UI closed before any run started from it is no error: nothing to judge."""
    if "epoch" in read_manifest(results):
        return True
    if web:
        return False
    see = f" (see {locust.log})" if locust.log.exists() else ""
    raise EdgebenchError(
        f"Locust stopped (exit code {locust.process.returncode}) before the run started: "
        f"{locust.last_error()}; nothing was sent{see}"
    )


def _serve_metrics(metrics: RunMetrics, plan: RunPlan) -> int | None:
    """_serve_metrics serves the run's /metrics on --metrics-port, and under --web on a free
    loopback port too, which the web UI's /metrics answers from; None: not served."""
    if plan.metrics_port is None and not plan.web:
        return None
    if plan.metrics_port is not None:
        try:
            server, _ = metrics.serve(plan.metrics_port, plan.web_host)
        except OSError as exc:
            raise EdgebenchError(
                f"--metrics-port {plan.metrics_port}: cannot listen there ({exc.strerror}); "
                "pick a free port"
            ) from None
    else:
        server, _ = metrics.serve(0, "127.0.0.1")
    port = server.server_port
    if plan.metrics_port is not None:
        where = f"{plan.web_host}:{port}"
        click.echo(f"edgebench: the run's metrics at http://{where}/metrics", err=True)
    return port


def both(watcher: Watcher, metrics: RunMetrics):
    """both is the hook that gives each record read to the watched checks and the metrics."""

    def read(record: dict) -> None:
        watcher.add(record)
        metrics.add(record)

    return read


def waiting_text(plan: RunPlan, embedded: bool) -> str:
    """waiting_text tells how to start the workers a master waits for."""
    text = (
        f"edgebench: master waiting for {plan.expect_workers} workers on port "
        f"{plan.master_bind_port} (at most {plan.expect_workers_max_wait} s): start each with "
        f"`edgebench worker --master-host THIS_HOST --master-port {plan.master_bind_port}`"
    )
    if embedded:
        text += "; the embedded emulator listens on loopback: workers must run on this machine"
    return text


def watches_for(scenario: Scenario, policy: Policy) -> list[Watch]:
    """watches_for is what the run watches live: the scenario's watched checks, and against
    a host that is not loopback an abort on a high error share unless it watches that."""
    watches = list(scenario.watches)
    if policy.remote and not any(w.check.metric == "share_error" for w in watches):
        watches.append(parse_watch(REMOTE_DEFAULT))
    return watches


def watch_facts(watcher: Watcher, aborted: Watch | None) -> dict:
    """watch_facts is what the manifest says of the watched checks: each breach, the abort."""
    if not watcher.watches:
        return {}
    facts = {
        "watches": [w.text for w in watcher.watches],
        "breaches": [
            {"check": w.text, "at": at, "at_utc": utc(at), "abort": w.abort}
            for w, at in watcher.breaches
        ],
    }
    if aborted:
        at = next(at for w, at in watcher.breaches if w is aborted)
        facts["aborted"] = {"check": aborted.text, "at": at, "at_utc": utc(at)}
    return facts


def _embedded_emulator(stack, spec: RunSpec, scenario, plan: RunPlan, results, new_folder: bool):
    """_embedded_emulator starts the emulator; if it cannot, a folder made for the run goes."""
    try:
        return stack.enter_context(EmulatorProcess(spec, scenario, plan.time_scale, results))
    except EdgebenchError:
        if new_folder:
            shutil.rmtree(results, ignore_errors=True)
        raise


def dry_run_text(scenario: Scenario, host: str | None, policy: Policy) -> str:
    """dry_run_text is the plan of a run: where, how fast, how many deployments, what bodies."""
    schedule = Schedule.from_scenario(scenario)
    expected = schedule.count()
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
    if scenario.demand:
        peak = max(max(s.rate_start, s.rate_end) for s in schedule.demand)
        lines.append(
            f"  demand: a forecast of {len(scenario.demand.ccu)} points, from "
            f"{schedule.demand[0].rate_start:.1f}/s, peak {peak:.1f}/s "
            "(edgebench scenario plan shows it whole)"
        )
    budget = (
        f" (budget --max-deployments {policy.max_deployments})" if policy.max_deployments else ""
    )
    lines.append(f"requests: {expected:,}; deployments it may create: at most {most:,}{budget}")
    if note := schedule.demand_note():
        lines.append(f"warning: {note}")
    lines.append(f"cleanup at the end: {'on' if policy.cleanup else 'off'}")
    lines.append("first requests (as `edgebench scenario sample` shows them):")
    for _, request in preview(scenario, 3):
        lines.append(f"  {request.path} {request.json.decode()}")
    return "\n".join(lines)


def locust_command(
    plan: RunPlan,
    spec: RunSpec,
    host: str,
    results: Path,
    policy: Policy,
    metrics_port: int | None = None,
) -> list[str]:
    """locust_command is Locust's command line for the run: the resolved run as one JSON
    text (--run-spec: Locust forwards it to its workers), then what is Locust's own."""
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", host]
    if plan.web and metrics_port:
        command += ["--metrics-from-port", str(metrics_port)]
    command += ["--run-spec", spec.dumps()]
    if policy.max_deployments:
        command += ["--max-deployments", str(policy.max_deployments)]
    if policy.remote:
        command += ["--allow-remote"]
    command += ["--results-dir", str(results)]
    command += ["--csv", str(results / "locust"), "--html", str(results / "locust.html")]
    if plan.processes > 1:
        # Locust's master and its forked workers meet on a port: a free loopback one, so
        # that two runs on one machine never meet each other's (Locust's default is 5557).
        port = str(free_port())
        command += ["--processes", str(plan.processes), "--master-bind-host", "127.0.0.1"]
        command += ["--master-bind-port", port, "--master-port", port]
    if plan.master:
        command += ["--master", "--expect-workers", str(plan.expect_workers)]
        command += ["--master-bind-host", plan.master_bind_host]
        command += ["--master-bind-port", str(plan.master_bind_port)]
        command += ["--expect-workers-max-wait", str(plan.expect_workers_max_wait)]
    if plan.web:
        command += ["--web-port", str(plan.web_port), "--web-host", plan.web_host]
        if plan.web_wait:  # a folder for each run started from the form
            command += ["--each-run-apart"]
        else:  # the run starts at once; Locust quits once its report is served a while
            command += ["--autostart", "--autoquit", str(plan.web_linger_s)]
    else:
        command += ["--headless", "--only-summary", "--loglevel", "WARNING"]
    return command


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def portable(path: Path) -> str:
    """portable is a scenario's path as every process of the run finds it: relative to the
    repository when inside it (workers on other machines run their own copy), else absolute."""
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT) if resolved.is_relative_to(ROOT) else resolved)
