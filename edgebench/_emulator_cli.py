"""Turns `edgebench emulator` options into an EmulatorConfig and serves it."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from emulator import (
    DEFAULT_ORGANISATION,
    ConfigError,
    Distribution,
    EmulatorConfig,
    Faults,
    RateLimits,
    World,
    create_app,
    distribution_option,
    load_world,
    serve,
)


def emulator_config(
    world: Path | None,
    rate_limit: int,
    status_rate_limit: int,
    shared_deploy_limit: bool,
    time_scale: float,
    seed: int,
    tokens_file: Path | None,
    fault_error_share: float,
    fault_drop_share: float,
    fault_lost_answer_share: float,
    fault_latency_ms: float,
    match_length: str | None = None,
    run_spec: str | None = None,
) -> EmulatorConfig:
    if run_spec:  # `edgebench run`'s embedded emulator: the run's world, seed and limit
        loaded, seed, rate_limit = _run_world(run_spec)
    else:
        loaded = load_world(world)
        if match_length is not None:
            loaded = loaded.with_lifetime(distribution_option(match_length, "--match-length"))
    limits = RateLimits(
        deploy=rate_limit,
        status=status_rate_limit,
        shared_deploy_limit=shared_deploy_limit,
        enabled=rate_limit > 0,
    )
    organisations = read_tokens(tokens_file) if tokens_file else {}
    latency = Distribution.exponential(fault_latency_ms) if fault_latency_ms else None
    faults = Faults(latency, fault_error_share, fault_drop_share, fault_lost_answer_share)
    if faults.error_share + faults.drop_share + faults.lost_answer_share > 1:
        raise ConfigError(
            "--fault-error-share",
            "plus --fault-drop-share and --fault-lost-answer-share exceeds 1",
            "lower them",
        )
    return EmulatorConfig(
        world=loaded,
        seed=seed,
        time_scale=time_scale,
        rate_limits=limits,
        accepted_tokens=frozenset(organisations) if tokens_file else None,
        organisations=organisations,
        faults=faults,
    )


def _run_world(run_spec: str) -> tuple[World, int, int]:
    """_run_world is what a resolved run holds the emulator to: its scenario's world (with
    the match length), seed and organisation limit."""
    from edgebench.plan.overrides import RunSpec
    from edgebench.platform import scenario_world

    scenario = RunSpec.loads(run_spec).resolve()
    return scenario_world(scenario), scenario.seed, scenario.rate.limit


def read_tokens(path: Path) -> dict[str, str]:
    """read_tokens reads --tokens-file: a token a line, optionally followed by its
    organisation (`<token> <organisation>`); tokens without one share the default one."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(
            "--tokens-file", f"cannot read {path}: {exc.strerror}", "pass a readable file"
        ) from None
    tokens = {}
    for number, line in enumerate(lines, 1):
        words = line.split()
        if not words:
            continue
        if len(words) > 2:
            raise ConfigError(
                "--tokens-file",
                f"{path}: line {number} has {len(words)} words",
                "write a token, or a token and its organisation, a line",
            )
        tokens[words[0]] = words[1] if len(words) == 2 else DEFAULT_ORGANISATION
    if not tokens:
        raise ConfigError("--tokens-file", f"{path} has no tokens", "write one token a line")
    return tokens


def run_emulator(config: EmulatorConfig, host: str, port: int) -> None:
    def announce(url: str) -> None:
        limits = config.rate_limits
        limit = f"{limits.deploy}/s per deploy endpoint" if limits.enabled else "off"
        click.echo(url)
        click.echo(
            f"edgebench emulator: world {config.world.source} "
            f"({len(config.world.locations)} locations), rate limit {limit}, "
            f"time scale {config.time_scale:g}x, seed {config.seed}. Ctrl-C stops it.",
            err=True,
        )

    # uvicorn re-raises Ctrl-C after its graceful shutdown: stopping is the normal end.
    with contextlib.suppress(KeyboardInterrupt):
        serve(create_app(config), host, port, on_ready=announce)
