"""`edgebench run`: emulator (when no host) + Locust + analysis, wired by files and HTTP.

plan = RunPlan(Path("scenarios/smoke.toml"))
exit_code = run(plan)    # 0 thresholds met, 1 a threshold failed, 2 bad input
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import click

from edgebench.plan.payloads import PayloadPlan
from edgebench.plan.scenario import Scenario, load_scenario, with_duration
from edgebench.plan.schedule import Schedule
from edgebench.realapi.cleanup import cleanup, summary_line
from edgebench.realapi.safety import Policy, decide, target_host
from edgebench.realapi.token import api_token, request_token
from edgebench.runfolder import check_results_dir, default_results_dir, expected_bytes
from edgebench.runner.processes import LOCUSTFILE, EmulatorProcess, LocustProcess, watch
from edgebench.runner.progress import Progress


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
    schedule = Schedule.from_scenario(scenario)
    results = plan.results_dir or default_results_dir(scenario.name)
    check_results_dir(results, expected_bytes(schedule))
    with ExitStack() as stack:
        if host is None:
            emulator = stack.enter_context(EmulatorProcess(scenario, plan.time_scale, results))
            host = emulator.url
        else:
            emulator = None
        click.echo(f"edgebench: {scenario.name} against {host}; records in {results}", err=True)
        command = locust_command(plan, host, results, policy)
        locust = LocustProcess(command, results / "locust.log", plan.web)
        watch(locust, Progress(results, scenario.duration_s), emulator)
        locust.check()
        if policy.cleanup:
            report = cleanup(results, host, request_token())
            click.echo(summary_line(report, results), err=True)
    return analyse(results, plan.thresholds_file)


def dry_run_text(scenario: Scenario, host: str | None, policy: Policy) -> str:
    """dry_run_text is the plan of a run: where, how fast, how many deployments, what bodies."""
    expected = Schedule.from_scenario(scenario).count()
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


def analyse(results: Path, thresholds_file: Path | None) -> int:
    """analyse runs the analysis on the run's folder and returns the verdict's exit code."""
    from analysis import thresholds
    from analysis.cli import one_screen
    from analysis.report import analyze

    checks = thresholds.load_file(thresholds_file) if thresholds_file else None
    outcome = analyze(results, checks=checks)
    if outcome.results:
        thresholds.write_junit(outcome.results, results / "junit.xml", results.name)
    click.echo(one_screen(outcome))
    return 0 if outcome.passed else 1
