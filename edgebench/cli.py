"""The `edgebench` command: it only wires the rooms (emulator, traffic, analysis) together.

It is also the one edge where a user's mistake becomes `Error: <what, where, fix>` and
an exit code: each room raises its own error base (EdgebenchError, EmulatorError,
AnalysisError, ThresholdError) and Edgebench.invoke shows it, one line each.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click
import orjson

from analysis._errors import AnalysisError
from analysis.cli import (
    analyze_command,
    check_option,
    compare_command,
    history_command,
    output_folder_option,
    plots_option,
    thresholds_option,
)
from checks import ThresholdError
from edgebench import __version__
from edgebench._errors import EdgebenchError, ScenarioError
from edgebench.runfolder import DISK_FULL
from emulator import EmulatorError

USER_ERRORS = (EdgebenchError, EmulatorError, AnalysisError, ThresholdError)


class UserError(click.ClickException):
    """UserError is bad input: `Error: <what, where, fix>` on each line, and its exit code."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click reads it from the instance

    def show(self, file=None) -> None:
        for line in self.format_message().splitlines():
            click.echo(f"Error: {line}", err=True, file=file)


OLD_SPELLINGS = {  # (command, option as once spelled): its one name now
    ("emulator", "--rate-limit"): "--limit",
    ("advise", "--live"): "--confirm",
    ("emulator", "--host"): "--listen",
    ("scenario plan", "--out"): "--results-dir",
    ("compare", "--out"): "--results-dir",
    ("history", "--out"): "--results-dir",
}


def tell_old_spellings(args: list[str]) -> None:
    """tell_old_spellings says, one line each, that an option given its old name has one
    name now (the old spelling still works)."""
    for (name, old), new in OLD_SPELLINGS.items():
        words = len(name.split())
        given = args[words:]
        if args[:words] == name.split() and any(a == old or a.startswith(f"{old}=") for a in given):
            click.echo(
                f"edgebench: notice: `{name} {old}` is `{name} {new}` now (the old spelling "
                "still works)",
                err=True,
            )


class Edgebench(click.Group):
    """Edgebench is the command group; its invoke is the one error edge."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        tell_old_spellings(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.BadParameter as exc:  # Click's own checks, said as every other error
            raise UserError(_bad_parameter(exc)) from None
        except USER_ERRORS as exc:
            raise UserError(str(exc), getattr(exc, "exit_code", 2)) from None
        except OSError as exc:
            if exc.errno not in DISK_FULL:
                raise
            where = exc.filename or "the results folder"
            raise UserError(
                f"{where}: {exc.strerror}: free some space (what was written is kept) and "
                "run the command again"
            ) from None


def _bad_parameter(error: click.BadParameter) -> str:
    """_bad_parameter is Click's complaint about an option's value as one line: the option,
    the value and what is allowed, then where to read more."""
    name = error.param_hint if isinstance(error.param_hint, str) else None
    if name is None and error.param is not None:
        name = " / ".join(getattr(error.param, "opts", ())) or error.param.name
    command = error.ctx.command_path if error.ctx else "edgebench"
    return f"{name}: {error.message.rstrip('.')} (see '{command} --help')"


SCENARIO_ARGUMENT = click.argument(
    "scenario_file", metavar="SCENARIO", type=click.Path(path_type=Path)
)


def world_option(help_text: str):
    """world_option is --world of every command that takes a world file."""
    return click.option("--world", type=click.Path(dir_okay=False, path_type=Path), help=help_text)


def _options(*decorators):
    """_options applies a group of click options, first listed shown first."""

    def apply(function):
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


def scenario_overrides(world_help: str, duration_help: str):
    """scenario_overrides are the options run, simulate, search and advise take over a
    scenario's (edgebench.plan.overrides.Overrides)."""
    return _options(
        click.option("--duration", help=duration_help),
        click.option(
            "--rate-mode",
            type=click.Choice(["respect", "exceed"]),
            help="Respect the API's limit or exceed it (default: the scenario's).",
        ),
        click.option(
            "--rate-factor", help="Offered rate = stages x factor, e.g. 1.5 (default: 1)."
        ),
        world_option(world_help),
        click.option("--seed", type=int, help="Seed of every draw (default: the scenario's)."),
        limit_option(),
        click.option(
            "--costs",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Prices (a TOML file with a [costs] table) instead of the scenario's [costs].",
        ),
    )


def limit_option():
    """limit_option is --limit of run, simulate, search and scenario plan."""
    return click.option(
        "--limit",
        type=click.IntRange(min=1),
        help="The organisation's limit, requests/s on each deploy endpoint: what respect "
        "mode holds to and the embedded emulator and simulator enforce (default: the "
        "scenario's [rate] limit, else 40).",
    )


def stop_on_sigterm() -> None:
    """stop_on_sigterm makes SIGTERM (a CI job's timeout, `kubectl delete`) a Ctrl-C: the
    traffic stops, the records, analysis and cleanup are written; a second one aborts."""

    def interrupted(_number, _frame) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)


def time_zone(name: str):
    """time_zone is --tz's zone; a name the zone database does not know is a usage error."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(f"--tz {name!r}: not a time zone; write e.g. UTC or Europe/Paris") from None


def warm_start_option():
    """warm_start_option is --warm-start/--cold-start of run, simulate and advise."""
    return click.option(
        "--warm-start/--cold-start",
        default=None,
        help="Start the platform holding the deployments running when the run begins "
        "(a forecast's: the renewal solution's matches then, with their ages; stages': "
        "Little's law), or empty (default: warm for a forecast with players at its start).",
    )


def minimize_option(help_text: str):
    """minimize_option is --minimize of search and advise."""
    return click.option("--minimize", type=click.Choice(["cost"]), help=help_text)


def window_cost_option():
    """window_cost_option is --window-cost of search and advise."""
    return click.option(
        "--window-cost",
        is_flag=True,
        help="With --minimize cost over a window of a forecast: price the window's cost "
        "scaled to a day, knowingly (refused otherwise: a peak is not a day).",
    )


def probing_options(kind: str, max_probes: int, time_scale_help: str):
    """probing_options are what search and advise (kind) both take: their probes' number,
    length, overrides and folder."""
    return _options(
        count_option("--max-probes", max_probes, "Most runs.", least=2),
        scenario_overrides(
            "The world file (default: the scenario's, else the shipped one).",
            "Each probe's length (default: the scenario's).",
        ),
        time_scale_option(time_scale_help),
        results_dir_option(
            f"Where {kind}.json, {kind}.html and each probe go (default: "
            f"results/<stamp>-<name>-{'search' if kind == 'search' else 'advice'})."
        ),
        probe_options(),
        overwrite_option(f"an earlier {kind}"),
    )


def probe_options():
    """probe_options are --jobs and --keep-records of search and advise."""
    return _options(
        click.option(
            "--jobs",
            type=click.IntRange(min=1),
            help="Simulated probes at once, each a process (default: the machine's cores); "
            "with more than one, the bracket's probes go together and bisection becomes "
            "k-section.",
        ),
        click.option(
            "--keep-records",
            is_flag=True,
            help="Keep each probe's records (a simulated day's are about 100 MB); by default "
            "a probe keeps its manifest, summary and world.",
        ),
    )


def time_scale_option(help_text: str):
    return click.option(
        "--time-scale",
        type=click.FloatRange(min=0, min_open=True),
        default=1.0,
        show_default=True,
        help=help_text,
    )


def port_option(name: str, default: int | None, help_text: str, free: bool = False):
    """port_option is a TCP port option (free: 0 takes any free port)."""
    return click.option(
        name,
        type=click.IntRange(0 if free else 1, 65535),
        default=default,
        show_default=default is not None,
        help=help_text,
    )


def address_option(names: tuple[str, ...], default: str, help_text: str):
    """address_option is an address option: where to listen, or whom to reach."""
    return click.option(*names, default=default, show_default=True, help=help_text)


def count_option(name: str, default: int | None, help_text: str, least: int = 1):
    """count_option is a whole-number option of at least `least`."""
    return click.option(
        name,
        type=click.IntRange(min=least),
        default=default,
        show_default=default is not None,
        help=help_text,
    )


def processes_option(help_text: str):
    return count_option("--processes", 1, help_text)


def fault_option(name: str, help_text: str):
    return click.option(name, type=click.FloatRange(0, 1), default=0.0, help=help_text)


def overwrite_option(earlier: str):
    """overwrite_option is --overwrite, one meaning on every command that writes a folder."""
    return click.option(
        "--overwrite",
        is_flag=True,
        help=f"Clear what {earlier} wrote in the results folder first (default: refuse a "
        "folder that holds it).",
    )


def results_dir_option(
    help_text: str = "Where the records go (default: results/<timestamp>-<scenario>).",
):
    return click.option(
        "--results-dir", type=click.Path(file_okay=False, path_type=Path), help=help_text
    )


@click.group(cls=Edgebench, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgebench")
def main() -> None:
    """Load-test and capacity-benchmark Edgegap's deployment API."""


@main.command()
# --listen's name before was --host, which meant the target's URL on every other command
@address_option(("--listen", "--host", "host"), "127.0.0.1", "The address to listen on.")
@port_option("--port", 8787, "0: any free port.", free=True)
@world_option("World file (TOML). Default: the shipped world of 39 cities.")
@click.option(
    "--limit",
    "--rate-limit",  # its name before one name for the organisation's limit everywhere
    "rate_limit",
    type=click.IntRange(min=0),
    default=40,
    show_default=True,
    help="The organisation's limit: deploy requests/s on each deploy endpoint; 0 turns every "
    "limit off.",
)
@count_option("--status-rate-limit", 20, "GET /v1/status requests/s per organisation.", least=0)
@click.option(
    "--shared-deploy-limit",
    "--shared-deploy-budget",  # its name before "budget" meant only --max-deployments
    "shared_deploy_limit",
    is_flag=True,
    help="Both deploy endpoints count against one limit (default: one each).",
)
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Platform seconds per wall second (60: a 15-minute match lasts 15 s).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for every random draw.")
@click.option(
    "--tokens-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Accept only the tokens in this file: one a line, each optionally followed by its "
    "organisation (the rate limits are an organisation's). Default: any non-empty token, "
    "all of one organisation.",
)
@fault_option("--fault-error-share", "Share answered 500.")
@fault_option("--fault-drop-share", "Share of dropped connections.")
@fault_option(
    "--fault-lost-answer-share",
    "Share of requests handled in full (deployments created) whose answer is lost.",
)
@click.option(
    "--fault-latency-ms",
    type=click.FloatRange(min=0),
    default=0.0,
    help="Mean extra latency (exponential).",
)
@click.option(
    "--match-length",
    help="How long each deployment runs before it stops (platform seconds): a number or a "
    "distribution such as '{ distribution = \"lognormal\", median = 1500, sigma = 0.3 }' "
    "(default: the world's lifecycle.lifetime_s). `edgebench run` passes the scenario's.",
)
@click.option("--run-spec", hidden=True, help="Set by `edgebench run`: the run it serves.")
def emulator(**options) -> None:
    """Serve the Edgegap API emulator until Ctrl-C; prints its base URL first.

    Exit codes: 0 stopped with Ctrl-C, 2 bad options or world file.
    """
    from edgebench._emulator_cli import emulator_config, run_emulator

    config = emulator_config(**{k: v for k, v in options.items() if k not in ("host", "port")})
    run_emulator(config, options["host"], options["port"])


@main.group()
def scenario() -> None:
    """Check scenario files and preview the requests they make."""


@scenario.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def scenario_check(files: tuple[Path, ...]) -> None:
    """Validate scenario files: every problem on one line, and warnings (demand above the limit).

    Exit codes: 0 every file valid, 2 a problem in any (each on its own line).
    """
    from edgebench._scenario_cli import check

    problems = check(files)
    if problems:
        raise ScenarioError(problems)


@scenario.command("sample")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "-n",
    "count",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="How many requests.",
)
@click.option(
    "--annotated", is_flag=True, help="Lines to read (due time, endpoint, body) instead of JSON."
)
def scenario_sample(file: Path, count: int, annotated: bool) -> None:
    """Print the first N requests the scenario would send, one JSON line each.

    Each line is {"due_s", "endpoint", "body"}, for jq; the same bodies as `run --dry-run`.
    Exit codes: 0 printed, 2 bad input.
    """
    from edgebench._scenario_cli import sample

    for line in sample(file, count, annotated):
        click.echo(line)


@scenario.command("plan")
@click.argument("file", type=click.Path(path_type=Path))
@output_folder_option("Folder for plan.png and plan.svg (default: results/<scenario>-plan).")
@click.option(
    "--tz",
    default="UTC",
    show_default=True,
    help="Time zone of the clock times, for a forecast of ISO times (e.g. Europe/Paris).",
)
@limit_option()
@click.option(
    "--overflow",
    "overflow",
    default="5%",
    show_default=True,
    help="Share of fleet deploys that may overflow to the cloud, for the hosts per region.",
)
@click.option(
    "--wait-bound",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a match may wait for its turn, for the limit to ask for "
    "(default: [client] max_queue_wait, else 10).",
)
def scenario_plan(
    file: Path,
    out: Path | None,
    tz: str,
    limit: int | None,
    overflow: str,
    wait_bound: float | None,
) -> None:
    """Show what a scenario asks of the API, at once and without traffic.

    The match (deploy) rate over time (times [rate] factor) against the limit; for a
    [demand] forecast the peak and when it comes, the time above the limit, the servers
    needed per region, and plan.png / plan.svg; for every scenario what the limit does to
    its matches: the client's queue walked over the run's own arrivals (the most waiting,
    the longest wait, the abandoned), or the starts respect mode's cap leaves out. Then the
    instant answers, hour by hour: the private hosts each region needs to keep overflow
    under --overflow (Erlang B), and the limit that keeps the queue wait within
    --wait-bound. Exit codes: 0 planned, 2 bad input (a bad forecast file).
    """
    from analysis.plots import plan_plot
    from edgebench._scenario_cli import plan_text
    from edgebench.search.command import parse_precision

    zone = time_zone(tz)
    share = parse_precision(overflow, "--overflow")
    text, result, forecast = plan_text(file, zone, limit, share, wait_bound)
    click.echo(text)
    if result is None:
        return
    folder = out or Path("results") / f"{file.stem}-plan"
    folder.mkdir(parents=True, exist_ok=True)
    paths = plan_plot(result, forecast, folder, zone)
    click.echo(f"plot: {paths[0]} ({paths[1].name} beside it)")


@main.command("run")
@SCENARIO_ARGUMENT
@click.option("--host", help="API base URL (default: the scenario's, else an embedded emulator).")
@scenario_overrides(
    "Embedded emulator's world file (default: the scenario's, else the shipped one).",
    "Run length such as 15s or 2m (default: the scenario's).",
)
@processes_option("Locust processes on this machine (the rate is shared out, not multiplied).")
@click.option(
    "--web",
    is_flag=True,
    help="Run with Locust's web UI: it starts at once and ends with its verdict.",
)
@click.option(
    "--web-wait",
    is_flag=True,
    help="Open the web UI and wait: start runs from its form, Ctrl-C to end.",
)
@port_option("--web-port", 8089, "With --web: the web UI's port.")
@click.option(
    "--web-linger",
    "web_linger_s",
    type=click.IntRange(0),
    default=10,
    show_default=True,
    help="With --web: seconds the UI stays up once the run is over, its report linked.",
)
@address_option(
    ("--web-host",),
    "127.0.0.1",
    "The address the web UI and --metrics-port listen on (0.0.0.0: every interface; "
    "whoever reaches it can start runs).",
)
@click.option(
    "--master",
    is_flag=True,
    help="Be the master of a distributed run: `edgebench worker`s send the traffic.",
)
@count_option("--expect-workers", None, "With --master: start once this many workers joined.")
@count_option(
    "--expect-workers-max-wait",
    300,
    "With --master: give up (nothing sent) after this many seconds without them.",
)
@address_option(("--master-bind-host",), "*", "With --master: the interface workers connect to.")
@port_option("--master-bind-port", 5557, "With --master: the port workers connect to.")
@port_option(
    "--metrics-port",
    None,
    free=True,
    help_text="Serve the run's Prometheus metrics at :PORT/metrics (with --web they are also at "
    "the web UI's /metrics).",
)
@results_dir_option()
@overwrite_option("an earlier run")
@time_scale_option("Embedded emulator: platform seconds per wall second.")
@warm_start_option()
@thresholds_option("the verdict's checks (default: the scenario's thresholds).")
@check_option()
@plots_option()
@click.option("--dry-run", is_flag=True, help="Print the plan and sample bodies; send nothing.")
@click.option(
    "--max-deployments",
    type=click.IntRange(min=0),
    help="Stop sending once this many deployments were accepted "
    "(default: 20 for a non-loopback host, none for loopback; 0: none).",
)
@click.option(
    "--cleanup/--no-cleanup",
    default=None,
    help="Stop every deployment the run created, at the end (default: on for non-loopback).",
)
@click.option(
    "--i-mean-to-exceed",
    "allow_exceed",
    is_flag=True,
    help="Allow exceed mode against a non-loopback host (it sends past the limit on purpose).",
)
def run_command(scenario_file: Path, **options) -> None:
    """Run a scenario end to end: traffic, records, analysis, report; exit code is the verdict.

    Exit codes: 0 every threshold met, 1 a threshold failed, 2 bad input, 3 incomplete (cut
    short, or records missing). Ctrl-C once stops the traffic and still writes the report;
    twice aborts.
    """
    from edgebench.runner.run import RunPlan, run

    stop_on_sigterm()
    plan = RunPlan(scenario_file, **options)
    try:
        code = run(plan)
    except KeyboardInterrupt:
        click.echo("edgebench: aborted", err=True)
        raise SystemExit(130) from None
    raise SystemExit(code)


@main.command("worker")
@address_option(("--master-host",), "127.0.0.1", "The master's address.")
@port_option("--master-port", 5557, "The master's --master-bind-port.")
@processes_option("Worker processes on this machine, each a worker of the master.")
def worker_command(master_host: str, master_port: int, processes: int) -> None:
    """Join the master of a distributed run (`edgebench run --master`) and send its share.

    The master decides everything (scenario, host, rules, budget); this machine needs
    its own copy of the repository (the same image or checkout) and, for a host that
    is not loopback, EDGEGAP_API_TOKEN. Records go to the master's results folder.
    Exit codes: 0 the run ended, 1 the master could not be reached or was lost.
    """
    from edgebench.runner.processes import work

    work(master_host, master_port, processes)


@main.command("simulate")
@SCENARIO_ARGUMENT
@scenario_overrides(
    "The platform's world file (default: the scenario's, else the shipped one).",
    "Length such as 2m or 24h (default: the scenario's).",
)
@results_dir_option()
@overwrite_option("an earlier run")
@time_scale_option("Platform seconds per wall second, as the live run's emulator would take.")
@warm_start_option()
@click.option(
    "--latency-ms",
    help="Each request's latency: a number or a distribution such as "
    "'{ distribution = \"lognormal\", median = 1.6, sigma = 0.25 }' (the default: "
    "measured against the embedded emulator).",
)
@click.option(
    "--records",
    type=click.Choice(["arrow", "jsonl"]),
    default="arrow",
    show_default=True,
    help="How the records are written: Arrow IPC (a fourteenth of the bytes) or JSON lines, as a "
    "live run writes them (results/README.md).",
)
@click.option(
    "--sensitivity",
    is_flag=True,
    help="Simulate again under each limiter shape and each timing's interval edges (else "
    "+-25%): each key figure with its range over the assumptions.",
)
@thresholds_option("the verdict's checks (default: the scenario's thresholds).")
@check_option()
@plots_option()
def simulate_command(scenario_file: Path, **options) -> None:
    """Simulate a scenario against the emulator's model in virtual time: no HTTP, no Locust.

    Writes the same results folder, analysis and report as `edgebench run` (marked as
    simulated). Exit codes: 0 every threshold met, 1 a threshold failed, 2 bad input, 3
    incomplete. Ctrl-C keeps what was simulated and analyses it.
    """
    from edgebench.simulate.command import SimulatePlan, simulate

    stop_on_sigterm()
    raise SystemExit(simulate(SimulatePlan(scenario_file, **options)))


@main.command("search")
@SCENARIO_ARGUMENT
@check_option('What must hold, e.g. "share_422 < 0.01" (repeat for several).')
@click.option(
    "--vary",
    required=True,
    help="rate (the highest offered rate), limit (the lowest organisation limit), capacity "
    "(the smallest scale of every location), capacity:CITY_OR_HOST (the fewest slots there), "
    "or hosts:FLEET (the fewest hosts in a fleet a region names with private_fleet).",
)
@minimize_option(
    "With hosts:FLEET or capacity:...: from the least passing value, the cheapest "
    "(cost_per_day; the scenario's [costs] or --costs)."
)
@window_cost_option()
@click.option("--live", is_flag=True, help="Probe with live runs instead of simulations.")
@click.option("--host", help="With --live: the API base URL (default: an embedded emulator).")
@click.option("--precision", default="2%", show_default=True, help="Width of the final bracket.")
@probing_options("search", 12, "Platform seconds per wall second.")
@click.option("--confirm", is_flag=True, help="End with one live run at the answer.")
def search_command(scenario_file: Path, **options) -> None:
    """Find the highest rate, or the smallest capacity, for which every check holds.

    Brackets, then bisects; each probe is a simulation (or a live run with --live).
    Exit codes: 0 an answer was found, 1 even the lowest value fails, 2 bad input.
    """
    from edgebench.search.command import SearchPlan, search

    raise SystemExit(search(SearchPlan(scenario_file, **options)))


@main.command("advise")
@SCENARIO_ARGUMENT
@check_option('What must hold, e.g. "wait_p99_s < 10" or "share_overflow:europe < 0.05" (repeat).')
@click.option(
    "--vary",
    multiple=True,
    default=("limit",),
    show_default=True,
    help="limit (the organisation limit to ask for) and/or hosts:FLEET (the hosts of a fleet a "
    "region names with private_fleet); repeat for several.",
)
@minimize_option("Then walk each fleet to its cheapest host count meeting the checks.")
@window_cost_option()
@click.option(
    "--overflow",
    default="5%",
    show_default=True,
    help="The overflow share the first host counts are sized for (a share_overflow check's, "
    "when one is given).",
)
@click.option(
    "--confirm",
    "--live",  # its name before --confirm meant ending with one live run, as search's does
    "live",
    is_flag=True,
    help="End with one live run of the answer (edgebench run).",
)
@click.option("--host", help="With --confirm: the API base URL (default: an embedded emulator).")
@probing_options("advice", 30, "With --confirm: platform seconds per wall second.")
@warm_start_option()
@click.option(
    "--sensitivity",
    is_flag=True,
    help="Then simulate the answer again under each limiter shape and each timing's "
    "interval edges (else +-25%): its figures' ranges over the assumptions.",
)
def advise_command(scenario_file: Path, **options) -> None:
    """Advise the limit to ask Edgegap for and the private hosts per fleet, with evidence.

    Starts from formulas (Erlang B for hosts, the queue walked for the limit), confirms and
    corrects them by simulation near each, one knob at a time then together; with
    --minimize cost, the cheapest hosts meeting the checks. Prints its plan and an estimate
    of its time first. Exit codes: 0 an answer meets every check, 1 none can, 2 bad input.
    """
    from edgebench.advise.command import AdvisePlan, advise

    options["vary"] = tuple(options["vary"])
    options["checks"] = tuple(options["checks"])
    raise SystemExit(advise(AdvisePlan(scenario_file, **options)))


@main.command("calibrate")
@click.argument(
    "runs", metavar="RUN_DIR...", nargs=-1, type=click.Path(file_okay=False, path_type=Path)
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("calibrated-world.toml"),
    show_default=True,
    help="The world file to write (calibration.json and .html go beside it).",
)
@click.option(
    "--base",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The world to start from (default: the runs' world, else the shipped one).",
)
def calibrate_command(runs: tuple[Path, ...], out: Path, base: Path | None) -> None:
    """Fit a world to what runs measured: boot times, request latency, the limiter's shape.

    From runs against any host (the real API, a staging API, the emulator) with webhooks or
    status polling. Writes the base world with the fitted values (each with its samples,
    interval and verdict), calibration.json and calibration.html (observed against fitted).
    Exit codes: 0 written, 2 bad input (not a run, no readiness data).
    """
    from edgebench.calibrate import CalibratePlan, calibrate

    raise SystemExit(calibrate(CalibratePlan(runs, out, base)))


@main.command("prune")
@click.argument(
    "results",
    metavar="RESULTS_DIR",
    required=False,
    default=Path("results"),
    type=click.Path(file_okay=False, path_type=Path),
)
@click.option(
    "--keep",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="The newest run, search or advice folders kept whole.",
)
@click.option("--dry-run", is_flag=True, help="Say what would be freed; remove nothing.")
def prune_command(results: Path, keep: int, dry_run: bool) -> None:
    """Remove the records of all but the newest folders of a results folder.

    A pruned folder keeps its manifest, summary, report and plots (history and compare
    still read it; analyze says it was pruned); a search's or advice's probes inside it
    lose their records too. Exit codes: 0 done, 2 bad input.
    """
    import time

    from edgebench.prune import prune, summary_line

    report = prune(results, keep, dry_run, time.time())
    click.echo(summary_line(report, dry_run))


@main.command("cleanup")
@click.argument("folder", metavar="RUN_DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--host", help="API base URL (default: the run's, from its manifest).")
def cleanup_command(folder: Path, host: str | None) -> None:
    """Stop the deployments a run created that are not known to have ended (cleanup.json).

    Exit codes: 0 nothing left running (or the run's embedded emulator is gone, and its
    deployments with it), 1 some are left or the sweep by tag failed (run it again),
    2 not a run folder.
    """
    from edgebench.manifest import MANIFEST
    from edgebench.realapi.cleanup import cleanup, summary_line
    from edgebench.realapi.token import request_token

    try:
        manifest = orjson.loads((folder / MANIFEST).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        raise EdgebenchError(
            f"{folder}: no readable {MANIFEST}; pass a run's results folder"
        ) from None
    host = host or (manifest.get("target") or {}).get("host")
    if not host:
        raise EdgebenchError(f"{folder / MANIFEST}: target.host: missing; pass --host URL")
    report = cleanup(folder, host, request_token())
    embedded = bool((manifest.get("emulator") or {}).get("embedded"))
    click.echo(summary_line(report, folder, embedded))
    unfinished = report["left"] or not report["swept"]
    if unfinished and not (report["unreachable"] and embedded):
        raise SystemExit(1)


main.add_command(analyze_command)
main.add_command(compare_command)
main.add_command(history_command)


if __name__ == "__main__":
    sys.exit(main())
