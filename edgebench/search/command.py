"""`edgebench search`: the highest rate, or the smallest capacity, for which every check holds.

plan = SearchPlan(Path("scenarios/capacity-search.toml"), checks=("share_422 < 0.01",),
                  vary="rate")
exit_code = search(plan)   # 0 an answer, 1 even the lowest value fails, 2 bad input

Each probe is a run of the scenario at one value, simulated (edgebench simulate) by
default or live against the emulator (or --host) with --live, in a folder of its own
under the search's folder. search.json holds every probe; search.html draws the knee.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import click
import orjson

from checks import ThresholdError, parse
from edgebench._errors import EdgebenchError
from edgebench.costs import refuse_window_cost
from edgebench.plan.overrides import Overrides, overrides_at, planned
from edgebench.plan.scenario import Scenario
from edgebench.runfolder import RESULTS, prepare_search_dir
from edgebench.search.knee import Knee, Probe, cheapest
from edgebench.search.space import Space, parse_space, peak_rate
from edgebench.simulate.pool import Job, ProbePool, default_jobs

# What each probe keeps beside its checks' metrics (search.json and the knee's plot).
KEY_METRICS = (
    "offered_rate_per_s",
    "accepted_rate_per_s",
    "share_202",
    "share_422",
    "share_429",
    "share_error",
    "share_abandoned",
    "amplification",
    "p95_ms",
    "wait_p95_s",
    "ttr_p95_s",
    "cost_per_day",
    "share_overflow",
)
MAX_FACTOR = 64.0  # how far a bracket may step from the scenario as written
REMOTE_PROBE_DEPLOYMENTS = 20  # a live probe's budget against a host that is not loopback


@dataclass
class SearchPlan:
    """SearchPlan is what `edgebench search` was asked to do."""

    scenario: Path
    checks: tuple[str, ...]
    vary: str
    live: bool = False
    precision: str = "2%"
    max_probes: int = 12
    results_dir: Path | None = None
    world: Path | None = None
    duration: str | None = None
    seed: int | None = None
    time_scale: float = 1.0
    confirm: bool = False
    host: str | None = None
    overwrite: bool = False
    minimize: str | None = None  # "cost": the cheapest passing value, from the least
    window_cost: bool = False  # --minimize cost over a window of the forecast, knowingly
    jobs: int | None = None  # simulated probes at once (None: the machine's cores)
    keep_records: bool = False  # each probe's records too, not only its summary
    # Read by the shared overrides (edgebench.plan.overrides.Overrides.of): never set here.
    rate_mode: str | None = None
    rate_factor: str | None = None
    limit: int | None = None
    costs: Path | None = None  # a prices file instead of the scenario's [costs]


def search(plan: SearchPlan) -> int:
    """search runs the probes, writes search.json and search.html, prints the answer."""
    checks = _checks(plan.checks)
    precision = parse_precision(plan.precision)
    scenario = planned_for(plan)
    space = parse_space(plan.vary, scenario)
    if space.kind == "rate":
        space = replace(space, start=scenario.rate.factor)
    _refuse_unpriced(plan, scenario, space)
    folder = plan.results_dir or _default_folder(scenario.name)
    prepare_search_dir(folder, "search", plan.overwrite)
    if plan.live:
        click.echo(live_plan_text(plan, scenario, space), err=True)

    def probes(values: list[float]) -> list[Probe]:
        return _probes(plan, scenario, space, checks, values, folder, knee, pool)

    knee = Knee(
        lambda value: probes([value])[0],
        probe_many=probes,
        jobs=1 if plan.live else plan.jobs or default_jobs(),  # live probes share the target
        start=space.start,
        wants=space.wants,
        precision=precision,
        max_probes=plan.max_probes,
        whole=space.whole,
        floor=space.floor,
        ceiling=space.start * MAX_FACTOR if space.kind in ("rate", "scale") else 1_000_000,
    )
    from edgebench.simulate.command import simulate_one

    with ProbePool(knee.jobs, simulate_one) as pool:
        answer = None
        if space.kind == "hosts" and not plan.live:  # every count from one simulation
            answer = _hosts_in_one_pass(plan, scenario, space, checks, folder, knee, pool)
        if answer is None:
            answer = knee.run()
            if plan.minimize and answer is not None:
                answer = _cheapest(knee, answer, space)
    result = search_facts(plan, scenario, space, checks, precision, knee, answer)
    (folder / "search.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    from analysis.search import write_search_report

    page = write_search_report(result, folder)
    click.echo(answer_line(result))
    click.echo(f"  search: {folder / 'search.json'}\n  knee: {page}")
    if answer is not None and plan.confirm:
        return _confirm(plan, space, answer, folder)
    return 0 if answer is not None else 1


def _refuse_unpriced(plan: SearchPlan, scenario: Scenario, space: Space) -> None:
    """_refuse_unpriced: --minimize cost needs prices and a whole quantity that costs."""
    if not plan.minimize:
        return
    if space.kind not in ("hosts", "host", "location"):
        raise EdgebenchError(
            f"--minimize cost: varies hosts:FLEET or capacity:CITY_OR_HOST, not {plan.vary}"
        )
    if scenario.costs is None:
        raise EdgebenchError(
            f"--minimize cost: {scenario.source} has no [costs]; add the table or pass --costs FILE"
        )
    refuse_window_cost(scenario, plan.window_cost)


def _cheapest(knee: Knee, least: float, space: Space) -> float:
    """_cheapest walks up from the least passing value to the cheapest (cost_per_day)."""
    known = {probe.value: probe for probe in knee.probes}

    def probe(value: float) -> Probe:
        if value not in known:
            known[value] = knee.probe(value)
            knee.probes.append(known[value])
        return known[value]

    def cost(result: Probe) -> float:
        value = result.metrics.get("cost_per_day")
        return math.inf if value is None else float(value)

    left = max(2, knee.max_probes - len(knee.probes) + 1)
    cheapest(probe, least, cost, left, knee.ceiling)
    # The cheapest of every passing probe: the bracket's too may lie past the walk's valley.
    passing = [p for p in knee.probes if p.passed]
    return min(passing, key=lambda p: (cost(p), p.value)).value if passing else least


def _checks(texts: tuple[str, ...]) -> list:
    if not texts:
        raise EdgebenchError('--check: give at least one, e.g. --check "share_422 < 0.01"')
    try:
        checks = parse(list(texts))
    except ThresholdError as exc:
        raise EdgebenchError(f"--check {exc}") from None
    relative = [c.text for c in checks if c.number is None]
    if relative:
        raise EdgebenchError(f"--check {relative[0]!r}: a search compares with numbers only")
    return checks


def parse_precision(text: str, option: str = "--precision") -> float:
    """parse_precision reads a share such as --precision: "2%" or 0.02.

    >>> parse_precision("2%"), parse_precision("0.05")
    (0.02, 0.05)
    """
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise EdgebenchError(f"{option} {text!r}: not a share between 0 and 1; e.g. 2% or 0.02")
    return value


def _default_folder(name: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return RESULTS / f"{stamp}-{name}-search"


def _hosts_in_one_pass(plan, scenario, space, checks, folder, knee: Knee, pool) -> float | None:
    """_hosts_in_one_pass is the fleet's least host count meeting the checks (with
    --minimize cost, the cheapest over the whole range) from one simulation with the fleet
    large (edgebench.advise.onepass), confirmed by simulating it and one host fewer; None
    where that does not hold (the search then brackets and bisects as for any knob)."""
    from edgebench.advise.onepass import PASS_TRIES, Sizing, pass_hosts
    from edgebench.records import PLACEMENTS_FILE

    fleet, big = space.name or "", pass_hosts(space.start)
    for _ in range(PASS_TRIES):
        [probe] = _probes(plan, scenario, space, checks, [float(big)], folder, knee, pool, True)
        knee.probes.append(probe)
        place = folder / probe.metrics["folder"]
        sizing = Sizing.of_probe(place, {fleet: big})
        if not sizing.curves[fleet].reached_last:
            break
        (place / PLACEMENTS_FILE).unlink(missing_ok=True)
        big *= 2
    if not plan.keep_records:  # read: a day's placements are a hundred MB
        (place / PLACEMENTS_FILE).unlink(missing_ok=True)
    count = sizing.count_for(checks, fleet, {}, bool(plan.minimize))
    if count is None:
        return None
    click.echo(f"  one pass: {count} hosts (every count up to {big} from one simulation; "
               "confirming it and one fewer)", err=True)  # fmt: skip
    values = [float(count), *([float(count - 1)] if count > 1 and not plan.minimize else [])]
    confirmed = _probes(plan, scenario, space, checks, values, folder, knee, pool)
    knee.probes += confirmed
    at, *under = confirmed
    return float(count) if at.passed and not any(p.passed for p in under) else None


def _probes(
    plan, scenario, space, checks, values, folder: Path, knee: Knee, pool, placements=False
) -> list[Probe]:
    """_probes run the scenario at each value (simulations: `jobs` at once) and judge the
    checks on each summary; the probes are numbered in the order asked (placements: each
    fleet deploy's kept, for a one pass)."""
    first = len(knee.probes) + 1
    numbered = list(enumerate(values, first))
    folders = [folder / f"probe-{number:02d}" for number, _ in numbered]
    variants = [
        space.scenario_at(scenario, value, place)
        for (_, value), place in zip(numbered, folders, strict=True)
    ]
    if plan.live:
        summaries = [
            _live(plan, space, value, place)
            for (_, value), place in zip(numbered, folders, strict=True)
        ]
    else:
        jobs = [
            Job(
                variant,
                place,
                keep_records=plan.keep_records,
                time_scale=plan.time_scale,
                placements=placements,
            )
            for variant, place in zip(variants, folders, strict=True)
        ]
        summaries = pool.run(jobs)
    return [
        _judged(space, checks, number, value, variant, place, summary)
        for (number, value), variant, place, summary in zip(
            numbered, variants, folders, summaries, strict=True
        )
    ]


def _judged(space, checks, number, value, variant, folder: Path, summary: dict) -> Probe:
    """_judged is a probe's verdict on the checks, what it keeps, and its line printed."""
    from analysis.thresholds import evaluate, metrics

    values = metrics(summary)
    results = evaluate(checks, values)
    passed = all(result.passed for result in results)
    kept = {key: values.get(key) for key in (*KEY_METRICS, *(c.metric for c in checks))}
    if space.kind == "rate":
        kept["peak_rate_per_s"] = round(peak_rate(variant), 3)
    click.echo(probe_line(number, space, value, kept, passed, results), err=True)
    return Probe(value, passed, kept | {"folder": folder.name})


def _live(plan: SearchPlan, space: Space, value: float, folder: Path) -> dict:
    """_live runs one probe with `edgebench run`: the embedded emulator or --host, with the
    real-API rules (token, budget, cleanup) when the host is not loopback."""
    _run_at(plan, space, value, folder)
    return orjson.loads((folder / "summary.json").read_bytes())


def _confirm(plan: SearchPlan, space: Space, answer: float, folder: Path) -> int:
    """_confirm ends the search with one live run at the answer: its verdict is the exit code."""
    confirm = folder / "confirm"
    space.scenario_at(planned_for(plan), answer, confirm)
    click.echo(f"edgebench: confirming the answer with a live run in {confirm}", err=True)
    return _run_at(plan, space, answer, confirm)


def _run_at(plan: SearchPlan, space: Space, value: float, folder: Path) -> int:
    """_run_at is `edgebench run` of the scenario at value (its world file already in folder)."""
    from edgebench.runner.run import RunPlan, run

    knob: dict = {"world": folder / "world.toml"}
    if space.kind == "rate":
        knob = {"rate_factor": repr(value)}
    elif space.kind == "limit":
        knob = {"limit": int(value)}
    return run(
        RunPlan(
            plan.scenario,
            host=plan.host,
            results_dir=folder,
            time_scale=plan.time_scale,
            overwrite=True,  # the folder holds the probe's world file already
            **overrides_at(plan, **knob),
        )
    )


def planned_for(plan: SearchPlan) -> Scenario:
    return planned(plan.scenario, Overrides.of(plan))


def live_plan_text(plan: SearchPlan, scenario: Scenario, space: Space) -> str:
    """live_plan_text is printed before live probes: how many, how far, how many deployments."""
    from edgebench.plan.schedule import Schedule
    from edgebench.realapi.safety import is_loopback

    host = plan.host or "the embedded emulator"
    remote = plan.host is not None and not is_loopback(plan.host)
    count = Schedule.from_scenario(scenario).count()
    lines = [
        f"live search against {host}: at most {plan.max_probes} probes of {scenario.duration_s:g} s"
    ]
    if space.kind == "rate":
        top = space.start * MAX_FACTOR
        lines.append(
            f"  largest rate it may try: {peak_rate(scenario) * top:.1f}/s (factor {top:g}); "
            f"this scenario sends {count:,} requests at factor {space.start:g}"
        )
    else:
        lines.append(f"  {space.label}: from {space.start:g}, each probe {count:,} requests")
    if remote:
        most = plan.max_probes * REMOTE_PROBE_DEPLOYMENTS
        lines.append(
            f"  not loopback: every probe follows the real-API rules (token, a budget of "
            f"{REMOTE_PROBE_DEPLOYMENTS} deployments, cleanup): at most {most} deployments"
        )
    else:
        lines.append(f"  deployments it may create: at most {plan.max_probes * count:,} (loopback)")
    return "\n".join(lines)


def probe_line(number: int, space: Space, value: float, kept: dict, passed: bool, results) -> str:
    rate = f" (peak {kept['peak_rate_per_s']:g}/s)" if "peak_rate_per_s" in kept else ""
    judged = "; ".join(result.message for result in results)
    return (
        f"  probe {number}: {space.label} {value:g}{rate}: {'pass' if passed else 'FAIL'}: {judged}"
    )


def search_facts(plan, scenario, space: Space, checks, precision, knee: Knee, answer) -> dict:
    """search_facts is search.json: what was varied, the answer, and every probe."""
    probes = [{"value": p.value, "passed": p.passed, **p.metrics} for p in knee.probes]
    facts = {
        "scenario": {"name": scenario.name, "path": scenario.source},
        "varied": {
            "kind": space.kind,
            "name": space.name,
            "label": space.label,
            "wants": space.wants,
        },
        "checks": [check.text for check in checks],
        "precision": precision,
        "mode": "live" if plan.live else "simulated",
        "minimize": plan.minimize,
        "answer": answer,
        "probes": probes,
        "command_line": ["edgebench", *sys.argv[1:]],
    }
    if space.kind == "rate" and answer is not None:
        at = next(p for p in probes if p["value"] == answer)
        facts["answer_rate_per_s"] = at["peak_rate_per_s"]
    return facts


def answer_line(result: dict) -> str:
    """answer_line is the search's answer in one line."""
    varied, count, how = result["varied"], len(result["probes"]), result["mode"]
    where = f"{count} probes ({how}), precision {result['precision']:.0%}"
    if result["answer"] is None:
        side = "lowest" if varied["wants"] == "higher" else "largest"
        return f"no answer: even the {side} value tried fails a check ({where})"
    if varied["kind"] == "rate":
        return (
            f"highest rate meeting every check: {result['answer_rate_per_s']:g}/s at its peak "
            f"(factor {result['answer']:.4g} of the scenario's rates; {where})"
        )
    if varied["kind"] == "limit":
        return (
            f"lowest limit meeting every check: {result['answer']:g}/s: ask Edgegap for it "
            f"({where})"
        )
    if varied["kind"] == "hosts":
        which = "cheapest" if result.get("minimize") else "fewest"
        return (
            f"{which} hosts meeting every check: {result['answer']:g} in fleet {varied['name']} "
            f"({where})"
        )
    return (
        f"smallest capacity meeting every check: {varied['label']} {result['answer']:g} ({where})"
    )
