"""`edgebench advise`: the limit to ask for and the hosts per fleet, confirmed by simulation.

    plan = AdvisePlan(Path("scenarios/launch-fleet.toml"), checks=("wait_p99_s < 10",),
                      vary=("limit", "hosts:fleet-eu"), minimize="cost")
    exit_code = advise(plan)   # 0 an answer meets every check, 1 none can, 2 bad input

It starts from the instant answers (edgebench.advise.instant: Erlang B for hosts, the queue
walked for the limit). The limit is probed near its answer by simulation (warm start,
unserved matches counted, as `edgebench simulate`). The fleets' host counts come from one
simulation with each varied fleet large (edgebench.advise.onepass: ordered hunting makes
hosts 1..N carry the same deployments whatever comes after N), which gives every count's
overflow shares and cost a day: the least count meeting the checks on placement, or with
--minimize cost the cheapest over the whole range; a simulation at the answer confirms it
(and if together the knobs fail, each is walked from there probe by probe). advice.json
holds each answer and its evidence (every probe, its checks, its cost, each fleet's
curves), advice.html draws them; --confirm runs the final answer live with `edgebench run`.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import click
import orjson

from edgebench._errors import EdgebenchError
from edgebench.advise.instant import InstantAnswers, instant_answers, wait_bound
from edgebench.advise.onepass import PASS_TRIES, Sizing, pass_hosts
from edgebench.costs import cost_basis, refuse_window_cost, slice_of_a_day
from edgebench.plan.overrides import (
    Overrides,
    override_words,
    overrides_at,
    planned,
    with_limit,
    with_world,
)
from edgebench.plan.scenario import Scenario
from edgebench.plan.schedule import Schedule
from edgebench.records import drop_records
from edgebench.runfolder import RESULTS, prepare_search_dir
from edgebench.search.command import KEY_METRICS, parse_precision
from edgebench.search.knee import Knee, Probe
from edgebench.search.space import peak_rate, world_toml
from edgebench.simulate.command import simulate_all, simulated_run, summarized
from edgebench.simulate.pool import Job, ProbePool, default_jobs
from edgebench.warm import wants_warm

LIMIT = "limit"
_THREADS = ThreadPoolExecutor(1, thread_name_prefix="advice-curves")
MOST_HOSTS = 100_000
MOST_LIMIT = 100_000
# An estimate of a probe's time, from the machine's simulation speed (bench/ figures): a
# match costs about this much, plus the analysis' fixed part.
SECONDS_PER_MATCH = 60e-6
SECONDS_PER_PROBE = 2.0
WAIT_METRICS = {f"wait_p{p}_s" for p in (50, 95, 99)}


@dataclass
class AdvisePlan:
    """AdvisePlan is what `edgebench advise` was asked to do."""

    scenario: Path
    checks: tuple[str, ...]
    vary: tuple[str, ...] = (LIMIT,)
    minimize: str | None = None
    window_cost: bool = False  # --minimize cost over a window of the forecast, knowingly
    overflow: str = "5%"
    live: bool = False
    host: str | None = None
    max_probes: int = 30
    results_dir: Path | None = None
    overwrite: bool = False
    time_scale: float = 1.0
    warm_start: bool | None = None  # None: as `edgebench simulate` (warm for a forecast)
    keep_records: bool = False  # each probe's records too, not only its summary
    sensitivity: bool = False  # the answer simulated again over the world's assumptions
    jobs: int | None = None  # probes simulated at once (None: the machine's cores)
    # Read by the shared overrides (edgebench.plan.overrides.Overrides.of).
    duration: str | None = None
    world: Path | None = None
    seed: int | None = None
    rate_mode: str | None = None
    rate_factor: str | None = None
    limit: int | None = None
    costs: Path | None = None


@dataclass
class Advice:
    """Advice is the probes tried and the answer each knob came to."""

    scenario: Scenario
    raw_world: dict
    checks: list
    folder: Path
    max_probes: int
    warm: bool
    keep_records: bool = False
    jobs: int = 1  # probes simulated at once
    pool: ProbePool | None = None  # the processes they run in, made once (advise's)
    stuck: str | None = None  # why a knob's walk stopped: it moved no failing check
    probes: list[dict] = field(default_factory=list)
    answers: dict[str, float] = field(default_factory=dict)
    curves: dict[str, dict] = field(default_factory=dict)  # each fleet's, from the one pass
    _seen: dict[tuple, Probe] = field(default_factory=dict)
    _drawing: dict[str, Future] = field(default_factory=dict)

    def curve_later(self, name: str, work: Callable[..., dict], *args: object) -> None:
        """curve_later works a curve out in a thread while the probes that confirm the answer
        simulate (this process only waits for them then): curves_done collects it."""
        self._drawing[name] = _THREADS.submit(work, *args)

    def curves_done(self) -> None:
        """curves_done waits for the curves worked out in a thread, into `curves`."""
        drawing, self._drawing = self._drawing, {}
        self.curves |= {name: future.result() for name, future in drawing.items()}

    def at(self, point: dict[str, float], placements: bool = False, waits: bool = False):
        """at is the probe of a point (every knob's value): simulated once, then remembered;
        with placements, keeping each fleet deploy's (edgebench.advise.onepass); with
        waits, each match's (edgebench.advise.limitpass)."""
        return self.at_many([point], placements, waits)[0]

    def folder_of(self, point: dict[str, float]) -> Path:
        """folder_of is the folder of the probe of a point."""
        return self.folder / next(p["folder"] for p in self.probes if p["point"] == point)

    def at_many(
        self, points: list[dict[str, float]], placements: bool = False, waits: bool = False
    ) -> list[Probe]:
        """at_many are the probes of several points, the new ones simulated `jobs` at once."""
        keys = [tuple(sorted(point.items())) for point in points]
        new = list({key: point for key, point in zip(keys, points, strict=True)
                    if key not in self._seen}.items())  # fmt: skip
        first = len(self.probes) + 1
        folders = [self.folder / f"probe-{n:02d}" for n in range(first, first + len(new))]
        jobs = [
            Job(
                self.scenario_at(point, place),
                place,
                self.warm,
                self.keep_records,
                placements=placements,
                match_waits=waits,
            )
            for (_, point), place in zip(new, folders, strict=True)
        ]
        began = time.monotonic()
        summaries = self.pool.run(jobs) if self.pool else [probe_one(job) for job in jobs]
        first = not self.probes
        for (key, point), place, summary in zip(new, folders, summaries, strict=True):
            self._seen[key] = self._judged(point, place, summary)
        if first and jobs:  # the estimate announced was the constants': now measured here
            each = (time.monotonic() - began) / math.ceil(len(jobs) / max(1, self.jobs))
            left = self.max_probes - len(self.probes)
            click.echo(
                f"  (a probe took {each:.1f} s here: at most {left} more, about "
                f"{each * math.ceil(left / max(1, self.jobs)) / 60:.1f} min)",
                err=True,
            )
        return [self._seen[key] for key in keys]

    @property
    def exhausted(self) -> bool:
        return len(self.probes) >= self.max_probes

    def _judged(self, point: dict[str, float], folder: Path, summary: dict) -> Probe:
        """_judged is a probe's verdict on the checks, kept in advice.json and printed."""
        from analysis.thresholds import evaluate, metrics

        number = len(self.probes) + 1
        values = metrics(summary)
        results = evaluate(self.checks, values)
        passed = all(result.passed for result in results)
        kept = {k: v for k, v in values.items() if k in KEPT or k.startswith("share_overflow:")}
        kept |= {check.metric: values.get(check.metric) for check in self.checks}
        self.probes.append(
            {"number": number, "point": point, "passed": passed, "folder": folder.name, **kept}
        )
        click.echo(_probe_line(number, point, passed, results, kept), err=True)
        return Probe(number, passed, kept)

    def scenario_at(self, point: dict[str, float], folder: Path) -> Scenario:
        """scenario_at is the scenario at a point: its limit, and (its fleets' counts) the
        world file written in folder."""
        scenario = self.scenario
        fleets = {k.partition(":")[2]: int(v) for k, v in point.items() if k != LIMIT}
        if fleets:
            world = {**self.raw_world, "private_hosts": _counted(self.raw_world, fleets)}
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "world.toml").write_text(world_toml(world))
            scenario = with_world(scenario, folder / "world.toml")
        if LIMIT in point:
            scenario = with_limit(scenario, int(point[LIMIT]))
        return scenario


KEPT = {*KEY_METRICS, "share_unserved", "wait_p99_s", "share_overflow", "cost_per_day",
        "cost_per_match"}  # fmt: skip


def _counted(raw_world: dict, fleets: dict[str, int]) -> list[dict]:
    """_counted are the world's private hosts with each varied fleet `fleets[name]` hosts in
    all, whatever entries it was written as (alike entries: one, with that count)."""
    hosts, seen = [], set()
    for host in raw_world.get("private_hosts", []):
        fleet = host.get("fleet")
        if fleet not in fleets:
            hosts.append(host)
        elif fleet not in seen:
            seen.add(fleet)
            hosts.append(host | {"count": fleets[fleet]})
    return hosts


def _refuse_unlike_entries(raw_world: dict, knobs: list[str], world_file: Path) -> None:
    """_refuse_unlike_entries: a varied fleet written as several entries that differ (cities,
    capacities) has no one count to vary; alike entries (a host an entry) are counted as one."""
    for knob in knobs:
        fleet = knob.partition(":")[2]
        entries = [h for h in raw_world.get("private_hosts", []) if h.get("fleet") == fleet]
        shapes = {
            tuple(sorted((k, str(v)) for k, v in h.items() if k not in ("id", "count")))
            for h in entries
        }
        if len(shapes) > 1:
            raise EdgebenchError(
                f"--vary {knob!r}: {world_file} writes fleet {fleet!r} as {len(entries)} "
                "[[private_hosts]] entries that differ (city, capacity or status); vary a "
                "fleet of alike hosts: one entry with count = N, or entries alike but their ids"
            )


def advise(plan: AdvisePlan) -> int:
    """advise finds the answers, writes advice.json and advice.html; the exit code."""
    from checks import ThresholdError, parse

    try:
        checks = parse(list(plan.checks))
    except ThresholdError as exc:
        raise EdgebenchError(f"--check {exc}") from None
    if not checks:
        raise EdgebenchError('--check: give at least one, e.g. --check "wait_p99_s < 10"')
    scenario = planned(plan.scenario, Overrides.of(plan))
    knobs = _knobs(plan.vary, scenario)
    if plan.minimize not in (None, "cost"):
        raise EdgebenchError(f"--minimize {plan.minimize!r}: only cost can be minimised")
    if plan.minimize and scenario.costs is None:
        raise EdgebenchError(
            f"--minimize cost: {scenario.source} has no [costs]; add the table or pass --costs FILE"
        )
    if plan.minimize:
        refuse_window_cost(scenario, plan.window_cost)
    world_file, raw_world, world = _world(scenario)
    if scenario.costs:  # a price the world cannot bill is bad input, before any probe
        cost_basis(scenario, world)
    _refuse_unlike_entries(raw_world, [k for k in knobs if k != LIMIT], world_file)
    warm = wants_warm(scenario, plan.warm_start)
    overflow, wait = _overflow_target(checks, plan.overflow), _wait_target(checks, scenario)
    instant = instant_answers(scenario, world, overflow, wait, warm)
    start = _starting_point(knobs, instant, scenario)
    folder = plan.results_dir or _default_folder(scenario.name)
    prepare_search_dir(folder, "advice", plan.overwrite)
    click.echo(plan_text(scenario, knobs, start, instant, plan), err=True)
    jobs = plan.jobs or default_jobs()
    advice = Advice(
        scenario, raw_world, checks, folder, plan.max_probes, warm, plan.keep_records, jobs
    )
    began = time.monotonic()
    with ProbePool(jobs, probe_one) as advice.pool:
        final = _search(advice, knobs, start, plan.minimize == "cost")
    advice.curves_done()
    facts = _facts(plan, advice, instant, start, final, time.monotonic() - began, world_file)
    if plan.sensitivity and facts["final"]:
        facts["sensitivity"] = _over_assumptions(advice, facts["final"], folder)
    _write(plan, facts, folder)
    if final is None or not final.passed:
        return 1
    if plan.live:
        return _confirm(plan, advice, folder)
    return 0


def _over_assumptions(advice: Advice, final: dict, folder: Path) -> dict:
    """_over_assumptions simulates the answer again under each of the world's assumptions
    moved (edgebench.simulate.sensitivity): its figures' ranges."""
    from edgebench.simulate.sensitivity import sensitivity

    probe = folder / final["folder"]
    summary = orjson.loads((probe / "summary.json").read_bytes())
    scenario = advice.scenario_at(advice.answers, probe)
    click.echo("edgebench: the answer over the world's assumptions", err=True)
    job = Job(scenario, folder, advice.warm, keep_records=False)
    return sensitivity(scenario, folder, summary, job, advice.jobs, simulate_all)


def _write(plan: AdvisePlan, facts: dict, folder: Path) -> None:
    """_write writes advice.json and advice.html, and prints the answer and where they are."""
    from analysis.advice import write_advice_report

    (folder / "advice.json").write_bytes(orjson.dumps(facts, option=orjson.OPT_INDENT_2))
    page = write_advice_report(facts, folder)
    click.echo(answer_text(facts))
    click.echo(f"  advice: {folder / 'advice.json'}\n  report: {page}")
    if facts["final"]:
        probe = folder / facts["final"]["folder"]
        click.echo(f"  the answer's run: {rerun_command(plan, probe, facts['answers'])}")


def _knobs(vary: tuple[str, ...], scenario: Scenario) -> list[str]:
    """_knobs are the --vary names, checked: limit, or hosts:FLEET of a region's private_fleet."""
    if not vary:
        raise EdgebenchError("--vary: give limit and/or hosts:FLEET (a region's private_fleet)")
    fleets = {r.private_fleet for r in scenario.regions if r.private_fleet}
    for knob in vary:
        kind, _, name = knob.partition(":")
        if knob == LIMIT:
            continue
        if kind != "hosts" or not name:
            raise EdgebenchError(f"--vary {knob!r}: not a knob; use limit or hosts:FLEET")
        if name not in fleets:
            raise EdgebenchError(
                f"--vary {knob!r}: no region of {scenario.source} has private_fleet = "
                f'"{name}"; vary one of {", ".join(sorted(fleets)) or "(none: name a fleet)"}'
            )
    if len(set(vary)) != len(vary):
        raise EdgebenchError("--vary: a knob is named twice; name each once")
    return list(vary)


def _world(scenario: Scenario):
    """_world is the scenario's world: its file, its table whole (what it extends merged in:
    probes rewrite it), loaded."""
    from edgebench.platform import scenario_world
    from emulator import default_world_path, world_table

    world_file = Path(scenario.world_file) if scenario.world_file else default_world_path()
    return world_file, world_table(world_file), scenario_world(scenario)


def _overflow_target(checks: list, default: str) -> float:
    """_overflow_target is the overflow share the hosts are first sized for: the tightest
    share_overflow check's (a bound, not an equality), else --overflow."""
    bounds = [c.number for c in checks if c.metric.startswith("share_overflow") and c.op in "<="]
    bounds = [b for b in bounds if b is not None and 0 < b < 1]
    return min(bounds) if bounds else parse_precision(default, "--overflow")


def _wait_target(checks: list, scenario: Scenario) -> float:
    """_wait_target is the queue wait the limit is first sized for: the tightest wait check's."""
    bounds = [c.number for c in checks if c.metric in WAIT_METRICS and c.op in ("<", "<=")]
    bounds = [b for b in bounds if b is not None and b > 0]
    return min(bounds) if bounds else wait_bound(scenario, None)


def _starting_point(knobs: list[str], instant: InstantAnswers, scenario: Scenario) -> dict:
    point: dict[str, float] = {}
    by_fleet = {pool.fleet: pool for pool in instant.pools if pool.fleet}
    for knob in knobs:
        if knob == LIMIT:
            point[knob] = float(instant.limit)
        else:
            pool = by_fleet[knob.partition(":")[2]]
            point[knob] = float(max(1, instant.peak_hosts[pool.name]))
    return point


def _search(advice: Advice, knobs: list[str], start: dict, cheap: bool) -> Probe | None:
    """_search answers every knob from one simulation (edgebench.advise.onepass for the
    fleets' host counts, limitpass for the limit: the least meeting the checks, or for cost
    the cheapest count over the whole range), confirms the answer by simulation (and the
    limit one below), and where that fails walks each knob probe by probe from there, one
    at a time then together; the final point's probe (None: no answer)."""
    answers = dict(start)
    try:
        found = _one_pass(advice, knobs, answers, cheap)
    except Stuck as exc:
        advice.stuck, advice.answers = str(exc), answers
        return None
    if found is not None:
        answers |= found
        if _confirmed(advice, answers, LIMIT in found):
            advice.answers = answers
            return advice.at(answers)
    for _ in range(2):
        for knob in knobs:
            value = _least(advice, knob, answers)
            if value is None:
                advice.answers = answers
                return None
            answers[knob] = value
        if advice.at(answers).passed or advice.exhausted:
            break
    advice.answers = answers
    final = advice.at(answers)
    if advice.exhausted and not final.passed:
        advice.stuck = advice.stuck or (
            f"the probe cap (--max-probes {advice.max_probes}) cut the walk short: raise it "
            "to go on"
        )
    return final


def _one_pass(advice: Advice, knobs: list[str], answers: dict, cheap: bool) -> dict | None:
    """_one_pass is every knob it can answer from one simulation: the limit (a queueing
    client's, checked on waits or unserved matches) from a simulation at a limit nobody
    waits for, each varied fleet's hosts from the same simulation with the fleet large
    (more while a deploy reached its last host). None: nothing to answer so; Stuck: even
    a limit nobody waits for fails (capacity holds it back)."""
    fleets = [knob for knob in knobs if knob != LIMIT]
    queued = LIMIT in knobs and _limit_checked(advice)
    if not (queued or fleets):
        return None
    point = dict(answers)
    if queued:
        point[LIMIT] = float(max(2 * answers[LIMIT], math.ceil(2 * peak_rate(advice.scenario)), 2))
    point |= {knob: float(pass_hosts(answers[knob])) for knob in fleets}
    for _ in range(PASS_TRIES):
        advice.at(point, placements=bool(fleets), waits=queued)
        if not fleets:
            break
        sizing = _sizing(advice, point, fleets)
        reached = [k for k in fleets if sizing.curves[_fleet(k)].reached_last]
        if not reached:
            break
        _drop_records(advice.folder_of(point), advice.keep_records)
        point |= {knob: 2 * point[knob] for knob in reached}
    found: dict[str, float] = {}
    try:
        if queued:
            found[LIMIT] = float(_limit_from(advice, point, answers))
        if fleets:
            sized = _sized_from(advice, sizing, fleets, answers, cheap)
            if sized is None:
                return None
            found |= sized
    finally:  # what the pass read (its placements, its matches' waits) goes, unless kept
        _drop_records(advice.folder_of(point), advice.keep_records)
    click.echo(
        "  one pass: " + ", ".join(f"{k} {v:g}" for k, v in found.items())
        + " (every value from one simulation; confirming)",
        err=True,
    )  # fmt: skip
    return found


def _confirmed(advice: Advice, answers: dict, limit: bool) -> bool:
    """_confirmed: the answer passes simulated, and (the limit) one below does not."""
    below = [answers | {LIMIT: answers[LIMIT] - 1}] if limit and answers[LIMIT] > 1 else []
    at, *under = advice.at_many([answers, *below])
    return at.passed and not any(probe.passed for probe in under)


def _limit_checked(advice: Advice) -> bool:
    """_limit_checked: a queueing client, and checks the limit moves (waits, unserved)."""
    from edgebench.advise.limitpass import LIMIT_METRICS

    checked = any(check.metric in LIMIT_METRICS for check in advice.checks)
    return advice.scenario.queues and checked


def _limit_from(advice: Advice, point: dict, answers: dict) -> int:
    """_limit_from is the least limit meeting the checks on waits and unserved matches, from
    the simulation at point (a limit nobody waits for; edgebench.advise.limitpass: every
    limit's queue from its matches). Stuck when even that limit fails."""
    from analysis.thresholds import evaluate
    from edgebench.advise.limitpass import LIMIT_METRICS, QueuedDemand

    checks = [c for c in advice.checks if c.metric in LIMIT_METRICS]
    high = int(point[LIMIT])
    demand = QueuedDemand.load(advice.folder_of(point))
    policy = advice.scenario.client_policy
    max_wait = policy.max_queue_wait_s if policy else None

    def passes(limit: int) -> bool:
        return all(r.passed for r in evaluate(checks, demand.figures(limit, max_wait)))

    least = demand.least_limit(passes, high)
    if least is None:  # even a limit nobody waits for fails: the limit does not hold it back
        figures = demand.figures(high, max_wait)
        failing = [r.message for r in evaluate(checks, figures) if not r.passed]
        raise Stuck(
            f"even a limit of {high}/s, which no match waits for, fails {'; '.join(failing)}: "
            "the limit is not what holds it back; capacity would (private hosts: --vary "
            "hosts:FLEET, or the world's locations), see the probe's 422 causes"
        )
    advice.curve_later("limit", _limit_curve, demand, max_wait, least, answers[LIMIT], high)
    return least


def probe_one(job: Job) -> dict:
    """probe_one simulates a probe (in a probe process) and is its summary; the one pass's
    keeps each match's wait too (edgebench.advise.limitpass), from the run in memory."""
    from edgebench.advise.limitpass import QueuedDemand

    run = simulated_run(job)
    if job.match_waits:
        QueuedDemand.of(run).save(job.folder)
    return summarized(job, run)


def _drop_records(folder: Path, keep: bool) -> None:
    if not keep:
        drop_records(folder)


def _limit_curve(demand, max_wait, least: int, formula: float, high: int) -> dict:
    """_limit_curve is what advice.html draws of the limit: the players' p99 wait and the
    unserved share against it, from the one pass."""
    step = max(1, (high - max(1, least // 2)) // CURVE_POINTS)
    limits = list(range(max(1, least // 2), high + 1, step))
    figures = [demand.figures(limit, max_wait) for limit in limits]
    return {
        "limits": limits,
        "wait_p99_s": [f["wait_p99_s"] for f in figures],
        "share_unserved": [round(f["share_unserved"] or 0.0, 6) for f in figures],
        "chosen": least,
        "formula": int(formula),
    }


CURVE_POINTS = 30  # limits the advice page draws: each a queue over a day's matches


def _sized_from(
    advice: Advice, sizing: Sizing, fleets: list[str], answers: dict, cheap: bool
) -> dict[str, float] | None:
    """_sized_from is each fleet's host count from the one pass's curves: the least count
    meeting the checks that depend on placement (overflow shares, cost), or with cheap the
    cheapest over the whole range that meets them (None: no count up to the simulated)."""
    chosen = {_fleet(k): int(answers[k]) for k in fleets}
    for _ in range(2):  # a joint check (the whole overflow share, the cost): twice round
        for knob in fleets:
            count = sizing.count_for(advice.checks, _fleet(knob), chosen, cheap)
            if count is None:
                advice.stuck = (
                    f"no host count of {_fleet(knob)} up to {sizing.big[_fleet(knob)]} meets "
                    "the checks on placement (one simulation at that size): see advice.html"
                )
                return None
            chosen[_fleet(knob)] = count
    advice.curves |= _curves(sizing, chosen, answers, fleets)
    return {knob: float(chosen[_fleet(knob)]) for knob in fleets}


def _fleet(knob: str) -> str:
    return knob.partition(":")[2]


def _sizing(advice: Advice, point: dict[str, float], fleets: list[str]) -> Sizing:
    """_sizing is the one pass of the probe at point: each varied fleet's curve."""
    big = {_fleet(k): int(point[k]) for k in fleets}
    sizing = Sizing.of_probe(advice.folder_of(point), big)
    if sizing.inexact:
        click.echo(f"  note: {sizing.inexact}", err=True)
    return sizing


def _curves(sizing: Sizing, chosen: dict, answers: dict, fleets: list[str]) -> dict:
    """_curves are what advice.html draws of each fleet: its overflow share and the cost a
    day against its hosts, the others at their answers; the chosen and formulas' points."""
    curves = {}
    for knob in fleets:
        fleet, curve = _fleet(knob), sizing.curves[_fleet(knob)]
        counts = list(range(1, sizing.big[fleet] + 1))
        figures = [sizing.figures(chosen | {fleet: n}) for n in counts]
        curves[fleet] = {
            "hosts": counts,
            "overflow_share": [round(float(x), 6) for x in curve.overflow_share()[1:]],
            "by_region": {
                origin: [round(float(x), 6) for x in curve.overflow_share(origin)[1:]]
                for origin in curve.deploys_by_origin
            },
            "cost_per_day": [f.get("cost_per_day") for f in figures],
            "chosen": chosen[fleet],
            "formula": int(answers[knob]),
            "simulated_hosts": sizing.big[fleet],
        }
    return curves


class Stuck(Exception):
    """Stuck: the knob moved far and no failing check moved with it."""


STUCK_PROBES = 3  # failing probes of a limit walk before asking whether it moves anything
STUCK_SPAN = 2.0  # the limit at least doubled across them
STUCK_SHARE = 0.02  # a check's figure moved less than this share of itself: it did not move


def _least(advice: Advice, knob: str, answers: dict) -> float | None:
    """_least is the knob's least value meeting every check, the others as they stand (None:
    none, or the limit's walk moved no failing check: advice.stuck says what would)."""
    ceiling = MOST_LIMIT if knob == LIMIT else MOST_HOSTS
    failing: list[Probe] = []

    def judged(probe: Probe, value: float) -> Probe:
        probe = _valued(probe, value)
        if knob == LIMIT and not probe.passed:
            failing.append(probe)
            _stop_if_stuck(advice, failing)
        return probe

    knee = Knee(
        lambda value: judged(advice.at(answers | {knob: value}), value),
        probe_many=lambda values: [
            judged(probe, value)
            for probe, value in zip(
                advice.at_many([answers | {knob: value} for value in values]), values, strict=True
            )
        ],
        jobs=advice.jobs,
        start=answers[knob],
        wants="lower",
        precision=0.0,  # whole numbers: to the unit
        max_probes=max(1, advice.max_probes - len(advice.probes)),
        whole=True,
        floor=1.0,
        ceiling=ceiling,
        step=1.25,  # near the instant answer first: a few percent off, not twice
    )
    try:
        return knee.run()
    except Stuck as exc:
        advice.stuck = str(exc)
        return None


def _stop_if_stuck(advice: Advice, failing: list[Probe]) -> None:
    """_stop_if_stuck raises Stuck once the limit has at least doubled over a few failing
    probes and no checked figure came nearer its bound: a check held back by capacity
    (422s for no room), not by the limit, would have the walk raise the limit for ever. A
    figure that got worse as the limit rose (a client that does not queue: what the limit
    capped, now sent and refused for no room) did not come nearer."""
    if len(failing) < STUCK_PROBES:
        return
    low, high = min(failing, key=lambda p: p.value), max(failing, key=lambda p: p.value)
    if high.value < STUCK_SPAN * low.value:
        return
    from analysis.thresholds import evaluate

    failed = [r.check for r in evaluate(advice.checks, high.metrics) if not r.passed]
    checks = {check.metric: check.op for check in failed}
    if any(_nearer(low.metrics.get(m), high.metrics.get(m), op) for m, op in checks.items()):
        return
    figures = ", ".join(
        f"{m} {_figure(low.metrics.get(m))} -> {_figure(high.metrics.get(m))}"
        for m in sorted(checks)
    )
    raise Stuck(
        f"raising the limit from {low.value:g}/s to {high.value:g}/s brought no failing check "
        f"nearer ({figures}): the limit is not what holds it back; capacity would (private "
        "hosts: --vary hosts:FLEET, or the world's locations), see the probes' 422 causes"
    )


def _figure(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _nearer(before: object, after: object, op: str) -> bool:
    """_nearer: a checked figure moved towards its bound (a `<` check's down, a `>` one's up)
    by STUCK_SHARE of itself or more (unknown: it may have)."""
    if not isinstance(before, int | float) or not isinstance(after, int | float):
        return before != after
    if op in ("==", "!="):  # any move may be the one
        gain = abs(after - before)
    else:
        gain = before - after if op.startswith("<") else after - before
    return gain > STUCK_SHARE * max(abs(before), abs(after), 1e-9)


def _valued(probe: Probe, value: float) -> Probe:
    return Probe(value, probe.passed, probe.metrics)


def _default_folder(name: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return RESULTS / f"{stamp}-{name}-advice"


def estimate_s(scenario: Scenario, probes: int) -> float:
    """estimate_s is about how long `probes` simulations of the scenario take here."""
    matches = Schedule.from_scenario(scenario).count()
    return probes * (SECONDS_PER_PROBE + matches * SECONDS_PER_MATCH)


def plan_text(
    scenario: Scenario, knobs: list[str], start: dict, instant: InstantAnswers, plan: AdvisePlan
) -> str:
    """plan_text is printed first: what is varied, from where, how many probes, how long."""
    lines = [f"advise {scenario.name}: {len(knobs)} knob(s), checks {', '.join(plan.checks)}"]
    for knob in knobs:
        if knob == LIMIT:
            why = (
                f"the queue walked over the run's arrivals keeps waits within "
                f"{instant.wait_bound_s:g} s"
            )
        else:
            why = f"Erlang B for {instant.overflow:.1%} overflow at the run's busiest hour"
        lines.append(f"  {knob}: from {start[knob]:g} ({why})")
    lines.append(
        "  every value from one simulation (the fleets large, the limit one nobody waits "
        "for), then the answer simulated to confirm it (the limit one below too)"
        + ("; each fleet at its cheapest count meeting the checks" if plan.minimize else "")
    )
    most = plan.max_probes
    lines.append(
        f"  three probes of {scenario.duration_s:g} s simulated where the one pass holds, "
        f"{most} at most; about {estimate_s(scenario, 1):.1f} s each here (an estimate, "
        "measured after the first)"
    )
    return "\n".join(lines)


def _probe_line(number: int, point: dict, passed: bool, results, kept: dict) -> str:
    where = ", ".join(f"{k} {v:g}" for k, v in point.items())
    cost = kept.get("cost_per_day")
    priced = f"; {cost:,.2f} a day" if cost is not None else ""
    judged = "; ".join(result.message for result in results)
    return f"  probe {number}: {where}: {'pass' if passed else 'FAIL'}{priced}: {judged}"


def _facts(plan, advice: Advice, instant, start, final, took_s: float, world_file) -> dict:
    scenario = advice.scenario
    return {
        "scenario": {"name": scenario.name, "path": scenario.source, "world": str(world_file)},
        # The run covers a slice of its forecast: its figures are the slice's, its cost a
        # day the slice's scaled to 24 h.
        "window_h": scenario.duration_s / 3600 if slice_of_a_day(scenario) else None,
        "forecast": scenario.demand is not None,
        "checks": [check.text for check in advice.checks],
        "minimize": plan.minimize,
        "instant": {
            "overflow": instant.overflow,
            "wait_bound_s": instant.wait_bound_s,
            "limit": instant.limit,
            "limit_formula": "first-in-first-out queue walked over the run's arrivals",
            "hosts": {p.fleet or p.name: instant.peak_hosts[p.name] for p in instant.pools},
            "hosts_formula": "Erlang B on the pool's slots, modified offered load (Little)",
        },
        "start": start,
        "answers": advice.answers,
        "met": bool(final and final.passed),
        "stuck": advice.stuck,
        "curves": advice.curves,
        "final": next((p for p in advice.probes if p["point"] == advice.answers), None),
        "probes": advice.probes,
        "took_s": round(took_s, 1),
        "command_line": ["edgebench", *sys.argv[1:]],
    }


def answer_text(facts: dict) -> str:
    """answer_text is the advice in a few lines."""
    answers = ", ".join(f"{k} {v:g}" for k, v in facts["answers"].items())
    count = len(facts["probes"])
    if not facts["met"]:
        last = facts["probes"][-1]["point"] if facts["probes"] else facts["answers"]
        tried = ", ".join(f"{k} {v:g}" for k, v in last.items())
        text = (
            f"no answer meets every check ({count} probes; the last tried: {tried}); "
            "see advice.html for how close each came"
        )
        return text + (f"\n  {facts['stuck']}" if facts.get("stuck") else "")
    lines = [f"answer meeting every check ({count} probes, {facts['took_s']:g} s): {answers}"]
    final = facts["final"] or {}
    for knob, value in facts["answers"].items():
        if knob == LIMIT:
            wait = final.get("wait_p99_s")
            said = f"; p99 wait {wait:g} s" if wait is not None else ""
            lines.append(f"  ask Edgegap for a limit of {value:g}/s{said}")
        else:
            lines.append(f"  {knob.partition(':')[2]}: {value:g} hosts")
    window = facts.get("window_h")
    if window:
        lines.append(
            f"  every figure is the window's ({window:g} h of the forecast), not the day's"
        )
    if final.get("cost_per_day") is not None:
        said = (
            "the window's cost scaled to 24 h"
            if window
            else "the whole forecast's day"
            if facts.get("forecast")
            else "the run's cost scaled to 24 h"
        )
        lines.append(f"  cost a day: {final['cost_per_day']:,.2f} ({said}; the scenario's prices)")
    for key, figure in ((facts.get("sensitivity") or {}).get("figures") or {}).items():
        lines.append(
            f"  {key} {figure['value']:.4g} ({figure['low']:.4g}-{figure['high']:.4g} over the "
            f"assumptions; most: {figure['most'] or 'none moves it'})"
        )
    return "\n".join(lines)


def rerun_command(plan: AdvisePlan, probe: Path, answers: dict[str, float]) -> str:
    """rerun_command is the `edgebench simulate` of the answer, records, report and all: the
    probe's every option (its length, seed, rate, prices, start), the answer over them."""
    words = ["edgebench", "simulate", str(plan.scenario)]
    words += override_words(overrides_at(plan, **_answer_overrides(probe, answers)))
    if plan.warm_start is not None:
        words.append("--warm-start" if plan.warm_start else "--cold-start")
    return " ".join(words)


def _answer_overrides(folder: Path, answers: dict[str, float]) -> dict:
    """_answer_overrides set the answer: its fleets' world file (in folder), its limit."""
    knob: dict = {}
    if any(name != LIMIT for name in answers):
        knob["world"] = folder / "world.toml"
    if LIMIT in answers:
        knob["limit"] = int(answers[LIMIT])
    return knob


def _confirm(plan: AdvisePlan, advice: Advice, folder: Path) -> int:
    """_confirm runs the answer live (`edgebench run`, with every rule of a run): its verdict."""
    from edgebench.runner.run import RunPlan, run

    confirm = folder / "confirm"
    advice.scenario_at(advice.answers, confirm)
    click.echo(f"edgebench: confirming the answer with a live run in {confirm}", err=True)
    return run(
        RunPlan(
            plan.scenario,
            host=plan.host,
            results_dir=confirm,
            time_scale=plan.time_scale,
            warm_start=advice.warm,
            overwrite=True,
            **overrides_at(plan, **_answer_overrides(confirm, advice.answers)),
        )
    )
