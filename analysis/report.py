"""Analysing a run folder end to end: summary.json, the curves, the verdict and report.html.

    outcome = analyze("results/20261127T091855Z-smoke")
    outcome.passed, outcome.report        # the verdict, and the page that shows it

report.html is one self-contained page (plots embedded as PNG, no external
files), read top to bottom: verdict, key numbers, curves, breakdowns, manifest.
"""

from __future__ import annotations

import base64
import os
import signal
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import import_module
from pathlib import Path

import jinja2
import orjson
import pandas as pd

from analysis import thresholds, windows
from analysis.load import Run, load_run
from analysis.metrics import attempts_of, held, hms, player_waits, summarize, time_to_ready
from checks.outcomes import NOT_SENT

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("analysis", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


@dataclass
class Outcome:
    """Outcome is what analysing one run produced and decided."""

    run: Run
    summary: dict
    results: list[thresholds.Result] = field(default_factory=list)
    report: Path | None = None

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    @property
    def exit_code(self) -> int:
        """exit_code is the verdict's: 0 pass (or no thresholds), 1 fail, 3 incomplete."""
        if self.aborted or not all(result.passed for result in self.results):
            return 1
        return 3 if incomplete(self.summary) else 0

    @property
    def aborted(self) -> dict | None:
        """aborted is the watched check that stopped the run (manifest.json), if one did."""
        return self.run.manifest.get("aborted")


def analyze(
    folder: str | Path,
    window_s: float | None = None,
    checks: list[thresholds.Check] | None = None,
    baseline: dict | None = None,
    progress=None,
    plots: bool = True,
) -> Outcome:
    """analyze writes summary.json, the plots and report.html into the run folder.

    checks default to the scenario's thresholds recorded in the manifest;
    baseline is a baseline run's summary, for relative checks.
    progress(step_name, bytes_read) is called as the work goes on.
    plots=False leaves the curves out (most of a small run's analysis time): the
    summary, the checks and a report of numbers only.
    """
    step = progress or (lambda *_: None)
    # Arrow parses without the GIL: matplotlib's half-second import fits in alongside.
    plotting = threading.Thread(target=import_module, args=("analysis.plots",), daemon=True)
    if plots:
        plotting.start()
    run = load_run(folder, progress=lambda size: step("loading", size), lean=True)
    if plots:
        plotting.join()
    if checks is None:
        checks = thresholds.parse((run.manifest.get("scenario") or {}).get("thresholds") or [])
    relative = [check.text for check in checks if check.number is None]
    if relative and baseline is None:  # refused before anything is written
        raise thresholds.ThresholdError(
            f"{relative[0]!r} compares with a baseline run; pass --baseline RUN_DIR"
        )
    window_s = window_s or _readable_window(run)
    clock = clock_start(run)
    # The curves over time need no summary: a forked copy works them out and draws them
    # meanwhile (pandas and matplotlib hold the GIL: a thread would only take turns).
    with InACopy(lambda: draw(curves_over_time(run, window_s), clock), plots) as over_time:
        summary = summarize(run)
        _write_json(run.folder / "summary.json", summary)
        step("summary", 0)
        figures = []
        if plots:
            by_rate = draw(curves_by_rate(run, summary, window_s), clock)
            step("curves by rate, readiness and region", 0)
            figures = over_time.result() + by_rate
            step("curves over time", 0)
    base_values = thresholds.metrics(baseline) if baseline else None
    results = thresholds.evaluate(checks, thresholds.metrics(summary), base_values, "baseline")
    outcome = Outcome(run, summary, results)
    outcome.report = write_report(outcome, figures)
    step("report", 0)
    return outcome


OFFERED = ("offered_per_s", "offered rate (requests/s)")


def draw(jobs: list[tuple], clock_start: datetime | None = None) -> list[tuple[str, Path]]:
    """draw runs (title, plot function, *args) jobs: (title, PNG path) each; with a clock
    start (a forecast of ISO times), the run-time axes read in clock time."""
    from analysis import plots

    with plots.clock_time(clock_start):
        return [(title, function(*args)[0]) for title, function, *args in jobs]


class InACopy:
    """InACopy is plot work done by a forked copy of this process while this one goes on:
    work() is [(title, path), ...]. When the copy fails (out of memory, say), or where
    there is no fork, result() does the work here; wanted=False: no copy, no work.

    with InACopy(lambda: draw(jobs)) as copy:
        ...                      # meanwhile, this process works on
        figures = copy.result()  # left without it (an error): the copy is stopped
    """

    def __init__(self, work: Callable[[], list[tuple[str, Path]]], wanted: bool = True) -> None:
        self._work = work
        self._child: int | None = None
        if wanted and hasattr(os, "fork"):
            self._child, self._answer = self._fork()

    def __enter__(self) -> InACopy:
        return self

    def __exit__(self, *_: object) -> None:
        if self._child is not None:  # left before result(): the copy's work is not wanted
            os.close(self._answer)
            os.kill(self._child, signal.SIGKILL)
            os.waitpid(self._child, 0)
            self._child = None

    def _fork(self) -> tuple[int, int]:
        reading, writing = os.pipe()
        with warnings.catch_warnings():  # Python 3.12 warns of forking beside Arrow's threads:
            warnings.simplefilter("ignore", DeprecationWarning)  # the copy never uses Arrow
            child = os.fork()
        if child:
            os.close(writing)
            return child, reading
        status = 1
        try:
            os.close(reading)
            drawn = self._work()
            with os.fdopen(writing, "wb") as pipe:
                pipe.write(orjson.dumps([[title, str(path)] for title, path in drawn]))
            status = 0
        finally:
            os._exit(status)  # the copy leaves no trace: no atexit, no parent's buffers flushed

    def result(self) -> list[tuple[str, Path]]:
        if self._child is None:
            return self._work()
        with os.fdopen(self._answer, "rb") as pipe:
            told = pipe.read()
        _, status = os.waitpid(self._child, 0)
        self._child = None
        if os.waitstatus_to_exitcode(status) == 0 and told:
            return [(title, Path(path)) for title, path in orjson.loads(told)]
        return self._work()


def _readable_window(run: Run) -> float:
    """_readable_window is the curves' window for the run's length (windows.readable_window)."""
    times = run.requests["t_sched"]
    span = float(times.max() - times.min()) if len(times) else 0.0
    return float(windows.readable_window(span))


def clock_start(run: Run) -> datetime | None:
    """clock_start is the clock time of the run's first start, when its scenario's forecast
    gave ISO times (the manifest's scenario.clock_start_utc; None: it did not)."""
    text = (run.manifest.get("scenario") or {}).get("clock_start_utc")
    if not text:
        return None
    start = datetime.fromisoformat(text)  # the clock time of the schedule's time 0
    epoch = run.manifest.get("epoch")
    if epoch is not None and not run.requests.empty:  # the axes count from the first start
        start += timedelta(seconds=float(run.requests["t_sched"].min()) - float(epoch))
    return start


def curves_over_time(run: Run, window_s: float) -> list[tuple]:
    """curves_over_time are the plot jobs of throughput, outcome shares and latency."""
    from analysis import plots

    requests, folder = run.requests, run.folder
    if requests.empty:
        return []
    limit = _limit(run)
    demand = (run.manifest.get("demand") or {}).get("segments")
    epoch = run.manifest.get("epoch")
    return [
        *_wait_jobs(run, window_s),
        (
            "Throughput",
            plots.throughput_plot,
            windows.throughput(requests, window_s, (demand, epoch) if demand and epoch else None),
            limit,
            folder,
        ),
        (
            "Outcome shares",
            plots.outcome_shares_plot,
            windows.outcome_shares(requests, window_s),
            folder,
        ),
        ("Latency", plots.latency_plot, windows.latency(requests, window_s), folder),
    ]


def _wait_jobs(run: Run, window_s: float) -> list[tuple]:
    """_wait_jobs lead the curves: the players' wait, the queue, the attempts per match."""
    from analysis import plots

    waits, to = player_waits(run)
    jobs: list[tuple] = []
    if not waits.empty:
        start = float(run.requests["t_sched"].min())
        over_time = windows.wait_over_time(waits, start, max(window_s, 5.0))
        recorded = int(attempts_of(run).first.sum())
        unserved = 1.0 - len(waits) / recorded if recorded else 0.0
        wait = (waits["wait_s"], over_time, to, unserved, run.folder)
        jobs.append(("Players' wait", plots.player_wait_plot, *wait))
    queue = windows.queue_length(run.requests, window_s)
    if not queue.empty:
        matches = run.requests["match"].dropna()
        attempts = matches.value_counts().value_counts().sort_index()
        jobs.append(("Queue and attempts", plots.queue_plot, queue, attempts, run.folder))
    return jobs


def curves_by_rate(run: Run, summary: dict, window_s: float) -> list[tuple]:
    """curves_by_rate are the plot jobs of 422s and 429s, occupancy, fleet, readiness, regions.

    Each share is drawn against what can explain it: the offered rate (when the run had
    more than one), the slots held (with the emulator), and time; a one-rate run's 429s
    are drawn over time, not as one dot.
    """
    from analysis import plots

    requests, folder = run.requests, run.folder
    if requests.empty:
        return []
    several_rates = windows.distinct_rates(requests) > 1
    occupancy = windows.occupancy_over_time(requests, run.emulator, "allocation_failure", window_s)
    capacity = (summary.get("occupancy") or {}).get("capacity")
    failures = [
        plots.Panel(windows.share_over_time(requests, "allocation_failure", window_s), *OVER_TIME)
    ]
    if several_rates:
        failures.insert(0, _by_rate(requests, "allocation_failure"))
    if not occupancy.empty:
        world = (run.manifest.get("emulator") or {}).get("world") or {}
        line = (capacity, f"capacity: {capacity_text(world)}") if capacity else None
        failures.append(plots.Panel(occupancy, "holding", "deployments holding a slot", line))
    limited = [_by_rate(requests, "rate_limited", _limit(run))] if several_rates else []
    limited = limited or [
        plots.Panel(windows.share_over_time(requests, "rate_limited", window_s), *OVER_TIME)
    ]
    draw_shares = plots.share_curve_plot
    jobs: list[tuple] = [
        ("422 allocation failures", draw_shares, failures, "allocation_failure", *FAILURES, folder),
        ("429 rate limited", draw_shares, limited, "rate_limited", *LIMITED, folder),
    ]
    if not occupancy.empty:
        forecast = held(run)
        jobs.append(("Occupancy", plots.occupancy_plot, occupancy, capacity, folder, forecast))
    jobs += _fleet_jobs(run)
    if over_time := (summary.get("placement") or {}).get("over_time"):
        jobs.append(("Placement by region", plots.placement_plot, over_time, folder))
    ready = time_to_ready(run)
    if not ready.empty:
        jobs.append(("Time to ready", plots.time_to_ready_plot, ready, folder))
    if summary["by_region"]:
        jobs.append(("Regions", plots.region_plot, summary["by_region"], folder))
    return jobs


OVER_TIME = ("t_s", "time since first start (s)")
FAILURES = ("422 allocation failures", "allocation_failures")
LIMITED = ("429 rate limited", "rate_limited")


def _by_rate(requests, outcome: str, limit: float | None = None):
    from analysis import plots

    line = (limit, f"limit {limit:g}/s") if limit else None
    curve = windows.share_by_offered_rate(requests, outcome)
    return plots.Panel(curve, "offered_per_s", "offered rate (requests/s)", line)


def _fleet_jobs(run: Run) -> list[tuple]:
    """_fleet_jobs draw where deployments landed, when the run's world has private hosts."""
    from analysis import plots

    fleets, by_city = run.fleets, run.host_cities
    if fleets.empty or len(fleets.columns) < 2:
        return []
    held = run.emulator.sort_values("t")["holding_capacity"].to_numpy()
    private = fleets.drop(columns="t").sum(axis=1).to_numpy()
    cloud = pd.Series((held[: len(private)] - private[: len(held)]).clip(min=0))
    world = (run.manifest.get("emulator") or {}).get("world") or {}
    hosts_of_world = world.get("private_hosts")
    known: dict = hosts_of_world if isinstance(hosts_of_world, dict) else {}
    held_by_fleet = _fleets(fleets.iloc[: len(cloud)], known)
    return [
        ("Fleet", plots.fleet_plot, by_city.iloc[: len(cloud)], cloud, held_by_fleet, run.folder)
    ]


def _fleets(fleets: pd.DataFrame, known: dict) -> dict[str, tuple[pd.Series, int]]:
    """_fleets are each fleet's slots held over time and its active hosts' capacity (hosts
    the manifest names no fleet of: "private hosts", their capacity unknown), so a full
    fleet shows as full."""
    capacity: dict[str, int] = {}
    for told in known.values():
        if told.get("status", "ACTIVE") == "ACTIVE":
            name = told.get("fleet") or "private hosts"
            capacity[name] = capacity.get(name, 0) + told.get("capacity", 0)
    return {name: (fleets[name], capacity.get(name, 0)) for name in fleets.columns.drop("t")}


FIGURE_NAMES = {
    "wait_p50_s": "players' wait p50",
    "wait_p95_s": "players' wait p95",
    "wait_p99_s": "players' wait p99",
    "share_unserved": "share of matches unserved",
    "share_overflow": "share of fleet deploys overflowed",
    "cost_per_day": "cost a day",
}


def sensitivity_rows(facts: dict | None) -> list[dict[str, str]]:
    """sensitivity_rows are the figures over the assumptions: "p99 wait 6.1 s (4.8-9.7 s)"."""
    rows = []
    for key, figure in ((facts or {}).get("figures") or {}).items():
        show = _figure(key)
        never = f"; none at {', '.join(figure['unmeasured'])}" if figure["unmeasured"] else ""
        rows.append(
            {
                "figure": FIGURE_NAMES.get(key, key),
                "value": show(figure["value"]),
                "range": f"{show(figure['low'])} - {show(figure['high'])}{never}",
                "most": figure["most"] or "none moves it",
            }
        )
    return rows


def _figure(key: str):
    if key.startswith("share"):
        return _percent
    if key.endswith("_s"):
        return _seconds
    return lambda value: f"{value:,.2f}"


def placement_rows(placement: dict | None) -> list[tuple[str, str]]:
    """placement_rows say, region by region, where accepted deployments went."""
    rows = []
    for region, placed in ((placement or {}).get("by_region") or {}).items():
        overflow = placed["share_overflow"]
        figures = f"{placed['private']:,} / {placed['cloud']:,}"
        if overflow is not None:
            figures += f" ({_percent(overflow)} overflow)"
        if placed["unknown"]:
            figures += f"; {placed['unknown']:,} not told"
        rows.append((f"{region}: on private hosts / cloud", figures))
    return rows


def cost_rows(cost: dict | None) -> list[tuple[str, str]]:
    """cost_rows are the run's cost, when it was given prices."""
    if not cost:
        return []
    unit = cost["currency"]
    note = f" ({cost['note']})" if cost["note"] else ""
    rows = [
        (f"cost{note}", f"{cost['total']:,.2f} {unit}: {cost['per_day']:,.2f} {unit} a day"),
        (
            "cost: cloud / private hosts / egress",
            f"{cost['cloud']:,.2f} / {cost['private']:,.2f} / {cost['egress']:,.2f} {unit}",
        ),
        (
            "cost a day on the cloud alone (no private hosts)",
            f"{cost['all_cloud_per_day']:,.2f} {unit}",
        ),
    ]
    if cost["per_match"] is not None:
        rows.append(("cost per served match", f"{cost['per_match']:.4f} {unit}"))
    if cost["private_idle_share"] is not None:
        rows.append(("private slots left idle", _percent(cost["private_idle_share"])))
    if cost["unpriced_fleets"]:
        rows.append(("fleets without a price (counted free)", ", ".join(cost["unpriced_fleets"])))
    return rows


def capacity_text(world: dict) -> str:
    """capacity_text is the world's capacity as the header and the curves both say it."""
    locations, private = world.get("capacity") or 0, world.get("private_capacity") or 0
    count = world.get("locations")
    places = f" in {count} locations" if count is not None else " in locations"
    if private:
        return (
            f"{locations + private:,} slots: {locations:,}{places} and {private:,} on private hosts"
        )
    return f"{locations:,} slots{places}"


def _limit(run: Run) -> float | None:
    return (run.manifest.get("scenario") or {}).get("limit")


def write_report(outcome: Outcome, figures: list[tuple[str, Path]]) -> Path:
    """write_report renders report.html beside the logs and returns its path."""
    run, summary = outcome.run, outcome.summary
    scenario = run.manifest.get("scenario") or {}
    page = TEMPLATES.get_template("report.html.j2").render(
        title=_title(run.manifest, scenario.get("name") or run.folder.name),
        subtitle=_subtitle(run),
        ran_on=ran_on(run.manifest),
        explanation=summary.get("explanation_422"),
        verdict=verdict(outcome.results, outcome.aborted, summary),
        warnings=_warnings(run, summary),
        key_numbers=key_numbers(summary),
        plots=[
            {"title": title, "png": base64.b64encode(path.read_bytes()).decode()}
            for title, path in figures
        ],
        breakdowns=[
            ("endpoint", _rows(summary["by_endpoint"])),
            ("region", _rows(summary["by_region"])),
        ],
        manifest=orjson.dumps(run.manifest, option=orjson.OPT_INDENT_2).decode(),
        sensitivity=sensitivity_rows(summary.get("sensitivity")),
        assumptions=((run.manifest.get("emulator") or {}).get("world") or {}).get("assumptions"),
    )
    path = run.folder / "report.html"
    path.write_text(page)
    return path


UNSERVED_WORTH_SAYING = 0.01  # a pass with this share of matches unserved says so


def verdict(
    results: list[thresholds.Result], aborted: dict | None = None, summary: dict | None = None
) -> dict:
    """verdict is the report's banner: pass, fail (naming each failure), incomplete or no
    thresholds; a run a watched check stopped fails, whatever its thresholds say of what it
    sent, and so does a failed check on what a run cut short sent; a run whose records are
    not the whole run (cut short, or lost records) passes nothing: INCOMPLETE, saying what
    is missing. A pass while 1% or more of the matches got no server, which no check looks
    at, says so."""
    if aborted:
        text = f"FAIL: aborted: {aborted['check']} at {aborted['at_utc']}"
        return {"kind": "fail", "text": text, "lines": [r.message for r in results]}
    failed = [r.message for r in results if not r.passed]
    if failed:
        text = f"FAIL: {len(failed)} of {len(results)} thresholds"
        return {"kind": "fail", "text": text, "lines": failed}
    if missing := incomplete(summary):
        return {"kind": "incomplete", "text": f"INCOMPLETE: {missing}", "lines": []}
    if not results:
        return {"kind": "none", "text": "No thresholds: nothing to pass or fail.", "lines": []}
    text = f"PASS: all {len(results)} thresholds met"
    if unseen := _unserved_unchecked(results, summary):
        text += f", but {unseen}"
    return {"kind": "pass", "text": text, "lines": [r.message for r in results]}


def incomplete(summary: dict | None) -> str | None:
    """incomplete is what the records lack (analysis.metrics.completeness), None: whole."""
    return ((summary or {}).get("completeness") or {}).get("reason")


def _unserved_unchecked(results: list[thresholds.Result], summary: dict | None) -> str | None:
    """_unserved_unchecked says how many matches got no server, when that is 1% or more and
    no check looks at share_unserved (None: nothing to say)."""
    matches = (summary or {}).get("matches") or {}
    share = matches.get("share_unserved")
    if share is None or share < UNSERVED_WORTH_SAYING:
        return None
    if any(r.check.metric == "share_unserved" for r in results):
        return None
    return (
        f"{share:.1%} of the matches got no server and no check looks at it "
        "(add e.g. share_unserved < 0.01)"
    )


SHARES = (
    ("share_202", "202 accepted"),
    ("share_422", "422 allocation failure"),
    ("share_429", "429 rate limited"),
    ("share_error", "other errors"),
)


def key_numbers(summary: dict) -> list[tuple[str, str]]:
    """key_numbers are the report's and the console's headline figures, formatted."""
    if summary["requests_total"] == 0:
        return [("requests", "0 (no requests were recorded)")]
    values = thresholds.metrics(summary)
    rows = [
        *_match_rows(summary),
        ("scheduled starts and retries (records)", f"{summary['requests_total']:,}"),
        ("sent", f"{summary['requests_sent']:,}"),
    ]
    if (warm := summary.get("warm_start")) is not None:
        rows.append(("platform at the start", _start_text(warm)))
    if summary.get("demand_rate_per_s") is not None:
        rows.append(("demand rate (before the cap)", _rate(summary["demand_rate_per_s"])))
    rows += [
        ("offered rate", _rate(summary["offered_rate_per_s"])),
        ("accepted rate (202)", _rate(summary["accepted_rate_per_s"])),
    ]
    if summary.get("capped_starts"):
        share = _percent(summary["share_capped"])
        rows.append(
            ("capped starts (demand never sent)", f"{summary['capped_starts']:,} ({share})")
        )
    if summary.get("peak_offered_rate_per_s") is not None:
        rows.append(
            ("peak due rate (busiest second, by schedule)",
             _rate(summary["peak_offered_rate_per_s"]))
        )  # fmt: skip
    if summary.get("peak_sent_rate_per_s") is not None:
        rows.append(("peak sent rate (busiest second)", _rate(summary["peak_sent_rate_per_s"])))
    rows += [(label, _percent(values[name])) for name, label in SHARES]
    if causes := summary.get("allocation_failure_causes"):
        rows.append(("422 causes", ", ".join(f"{c} {n:,}" for c, n in causes.items())))
    if fleet := summary.get("fleet"):
        placed = f"{fleet['placed_private']:,} / {fleet['placed_cloud']:,}"
        overflow = _percent(fleet["overflow_share"])
        rows.append(("fleet deploys on private hosts / cloud", f"{placed} ({overflow} overflow)"))
    rows += placement_rows(summary.get("placement"))
    rows += held_rows(summary.get("held_vs_forecast"))
    rows += cost_rows(summary.get("cost"))
    rows += [
        (f"{row['figure']}", f"{row['value']} ({row['range']} over the assumptions; most: "
                             f"{row['most']})")
        for row in sensitivity_rows(summary.get("sensitivity"))
    ]  # fmt: skip
    rows.append(("dropped starts", f"{summary['dropped_starts']:,}"))
    warmup = f", after the first {summary['warmup_s']:g} s" if summary.get("warmup_s") else ""
    for source in ("from_send", "from_schedule"):
        latency = summary["latency_ms"][source]
        figures = " / ".join(_ms(latency[k]) for k in ("p50", "p95", "p99", "max"))
        label = f"latency {source.replace('_', ' ')}{warmup}, p50 / p95 / p99 / max"
        rows.append((label, figures))
    ready = summary["time_to_ready_s"]
    if ready["p50"] is not None:
        figures = " / ".join(_seconds(ready[k]) for k in ("p50", "p95", "p99", "max"))
        scale = summary.get("time_scale")
        note = f" (wall time; the emulator ran {scale:g}x faster)" if scale and scale != 1 else ""
        rows.append((f"time to ready p50 / p95 / p99 / max{note}", figures))
    return rows


def _match_rows(summary: dict) -> list[tuple[str, str]]:
    """_match_rows lead the key numbers: the players' wait, and what became of the matches."""
    matches, wait = summary.get("matches") or {}, summary.get("player_wait_s") or {}
    if not matches.get("total"):
        return []
    rows = []
    if wait:
        to = "a ready server" if summary.get("player_wait_to") == "ready" else "the 202"
        figures = " / ".join(_wait(wait.get(k)) for k in ("p50", "p95", "p99", "max"))
        rows.append((f"players' wait, match to {to}: p50 / p95 / p99 / max", figures))
    kinds = ["served", "failed", "abandoned"]
    kinds += [k for k in ("capped", "unknown") if matches.get(k)]
    fates = " / ".join(f"{matches.get(k, 0):,}" for k in kinds)
    rows.append((f"matches: {' / '.join(kinds)}", f"{fates} of {matches['total']:,}"))
    if (share := matches.get("share_unserved")) is not None:
        which = ", ".join(kinds[1:-1]) + f" or {kinds[-1]}"
        rows.append((f"matches with no server ({which})", f"{share:.2%}"))
    attempts = summary.get("attempts_per_match") or {}
    rows.append(("attempts per match: mean / max", f"{attempts['mean']:.2f} / {attempts['max']}"))
    queue = summary.get("queue_wait_ms") or {}
    if queue.get("p50") is not None:
        figures = " / ".join(_ms(queue[k]) for k in ("p50", "p95", "p99", "max"))
        rows.append(("wait for the limiter: p50 / p95 / p99 / max", figures))
    return rows


def _title(manifest: dict, name: str) -> str:
    """_title names the run, and says when it was simulated rather than sent."""
    if manifest.get("simulated"):
        return f"edgebench run: {name} (simulated, not sent: edgebench simulate)"
    return f"edgebench run: {name}"


def _subtitle(run: Run) -> str:
    manifest = run.manifest
    target = (manifest.get("target") or {}).get("host") or "unknown target"
    scenario = manifest.get("scenario") or {}
    mode, limit = scenario.get("mode", "?"), scenario.get("limit", "?")
    return f"{run.folder.name} · {mode} mode, limit {limit}/s · against {target}"


def ran_on(manifest: dict) -> list[str]:
    """ran_on says what a run ran on: scenario and seed, world file and hash, time scale."""
    scenario, emulator = manifest.get("scenario") or {}, manifest.get("emulator") or {}
    lines = []
    if scenario:
        sha = (scenario.get("sha256") or "")[:12]
        lines.append(
            f"scenario {scenario.get('path') or scenario.get('name')} (sha256 {sha}…), "
            f"seed {scenario.get('seed')}"
        )
    if emulator:
        world = emulator.get("world") or {}
        sha = (world.get("sha256") or "")[:12]
        lines.append(
            f"embedded emulator: world {world.get('source')} (sha256 {sha}…, "
            f"{capacity_text(world)}), "
            f"seed {emulator.get('seed')}, time scale {emulator.get('time_scale'):g}x"
        )
        if emulator.get("time_scale", 1) != 1:
            lines.append(
                f"time to ready is measured in wall time: the platform ran "
                f"{emulator['time_scale']:g}x faster, so in platform time it is "
                f"{emulator['time_scale']:g} times the figures shown"
            )
    if manifest.get("command_line"):
        lines.append("command: " + " ".join(manifest["command_line"]))
    return lines


def _warnings(run: Run, summary: dict) -> list[str]:
    warnings = []
    if summary["requests_total"] == 0:
        warnings.append("This run recorded no requests: the logs are empty or missing.")
    if run.foreign_files:
        warnings.append(
            f"{len(run.foreign_files)} record files of another run in this folder were not read: "
            + ", ".join(run.foreign_files[:5])
        )
    if run.skipped_lines:
        warnings.append(
            f"{run.skipped_lines} unreadable log lines were skipped "
            "(one torn last line per killed process is expected)."
        )
    rejected = run.callbacks.get("rejected") or {}
    if sum(rejected.values()):
        reasons = ", ".join(
            f"{count} {reason.replace('_', ' ')}" for reason, count in rejected.items()
        )
        warnings.append(f"Webhook callbacks rejected and not counted: {reasons}.")
    if unrecorded := summary.get("unrecorded_starts"):
        warnings.append(
            f"{unrecorded} scheduled starts have no record (due while a worker that died still "
            "owned them, or their records never reached this folder): no figure counts them."
        )
    if run.manifest and "ended_at" not in run.manifest:
        warnings.append("The manifest has no end time: the run did not finish cleanly.")
    return warnings


def _rows(breakdown: dict) -> list[tuple[str, dict]]:
    rows = []
    for key, part in sorted(breakdown.items()):
        shares = part["shares_of_sent"].items()
        unsent = [(o, v) for o, v in part["shares_of_starts"].items() if o in NOT_SENT]
        latency = part["latency_ms"]
        text = ", ".join(f"{o.replace('_', ' ')} {v:.1%}" for o, v in shares)
        if unsent:
            text += "; not sent: " + ", ".join(f"{o.replace('_', ' ')} {v:.1%}" for o, v in unsent)
            text += " of starts"
        row = {"requests": part["requests"], "shares": text}
        rows.append((key, row | {k: _ms(latency[k]) for k in ("p50", "p95", "p99")}))
    return rows


# One format for each kind of number, in the report and on the console.
def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f} ms"


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f} s"


def _start_text(warm: dict) -> str:
    """_start_text says whether the run started on an empty platform or a warm one."""
    if not warm.get("deployments"):
        return "empty"
    placed, asked = warm.get("placed", 0), warm["deployments"]
    return f"warm: {placed:,} deployments running (of {asked:,} asked: what ran at the start)"


def held_rows(gaps: dict | None) -> list[tuple[str, str]]:
    """held_rows say how far the servers held strayed from the forecast's matches in progress
    after the first match length (analysis.held): all, then each region's (estimated)."""
    if not gaps or "all" not in gaps:
        return []
    after = gaps["after_s"] / 60

    def gap(name: str) -> str:
        told = gaps[name]
        share = told["largest_gap_share"]
        return f"{told['largest_gap']:+,.0f}" + (f" ({share:+.1%})" if share is not None else "")

    regions = [name for name in gaps if name not in ("all", "after_s")]
    text = f"{gap('all')} at {hms(gaps['all']['at_s'])} into the run"
    if regions:
        text += "; " + ", ".join(f"{name} {gap(name)}" for name in regions)
    return [(f"servers held vs the forecast's, largest gap after {after:.0f} min", text)]


def _wait(value: float | None) -> str:
    """_wait is a players' wait percentile: None is one that falls among the unserved."""
    return "never" if value is None else f"{value:,.2f} s"


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f}/s"


def _write_json(path: Path, value: dict) -> None:
    path.write_bytes(orjson.dumps(value, option=orjson.OPT_INDENT_2))
