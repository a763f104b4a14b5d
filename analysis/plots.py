"""The run's curves as PNG and SVG.

Figures are made with matplotlib's object API (Figure, not pyplot): no display,
no global figure state, nothing to close.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.figure import Figure

from analysis.windows import OUTCOME_ORDER

# SVG text as text, not glyph outlines: faster to write, smaller files.
matplotlib.rcParams["svg.fonttype"] = "none"

COLOURS = {
    "accepted": "#2e7d32",
    "allocation_failure": "#ef6c00",
    "rate_limited": "#c62828",
    "dropped": "#6d4c41",
    "backoff": "#9e9e9e",
}


def new_figure(width: float, height: float, left: float = 0.85, top: float = 0.45, **grid):
    """new_figure is a figure of width x height inches with fixed margins (inches), and its axes.

    Fixed margins, not tight_layout: measuring every label to lay them out cost a
    third of the time of the plots on a million-record run.
    """
    figure = Figure(figsize=(width, height))
    figure.subplots_adjust(
        left=left / width, right=1 - 0.3 / width, bottom=0.6 / height, top=1 - top / height
    )
    return figure, figure.subplots(**grid)


RUN_TIME_LABELS = (
    "time since first start (s)",
    "time since first reading (s)",
    "when the match was found (s)",
)
# The clock time of a run's first start, while a report of a forecast of ISO times draws.
CLOCK_START: contextvars.ContextVar[datetime | None] = contextvars.ContextVar(
    "clock_start", default=None
)


@contextlib.contextmanager
def clock_time(start: datetime | None) -> Iterator[None]:
    """clock_time draws the run-time axes of the plots saved meanwhile in clock time, from
    start (the clock time of the run's first start; None: seconds, as ever)."""
    token = CLOCK_START.set(start)
    try:
        yield
    finally:
        CLOCK_START.reset(token)


def _in_clock_time(figure) -> None:
    """_in_clock_time relabels the run-time axes in clock time when a clock start is set."""
    start = CLOCK_START.get()
    if start is None:
        return
    for axes in figure.axes:
        if axes.get_xlabel() in RUN_TIME_LABELS:
            axes.xaxis.set_major_formatter(
                ticker.FuncFormatter(lambda s, _: f"{start + timedelta(seconds=s):%H:%M}")
            )
            axes.set_xlabel(f"clock time ({start.tzname()})")


def save(figure, folder: Path, name: str) -> list[Path]:
    _in_clock_time(figure)
    _no_flat_axes(figure)
    png, svg = folder / f"{name}.png", folder / f"{name}.svg"
    # PNG compression level 1: files a little larger, written in a fraction of the time.
    figure.savefig(png, dpi=110, pil_kwargs={"compress_level": 1})
    figure.savefig(svg)
    return [png, svg]


def _no_flat_axes(figure) -> None:
    """_no_flat_axes gives an axis whose data are all one value a readable range from 0
    (matplotlib would centre a +-0.05 sliver on it: "a wait of -0.04 s")."""
    for axes in figure.axes:
        box = axes.dataLim
        if not axes.get_autoscaley_on() or not np.isfinite(box.y0) or box.height > 0:
            continue
        value = float(box.y0)
        if value == 0:
            axes.set_ylim(0.0, 1.0)
        else:
            axes.set_ylim(min(0.0, value * 1.25), max(0.0, value * 1.25))


def limit_line(draw, limit: float) -> None:
    """limit_line draws the API's rate limit with axes.axhline or axes.axvline."""
    draw(limit, color="#c62828", linestyle="--", linewidth=1, label=f"limit {limit:g}/s")


def throughput_plot(series: pd.DataFrame, limit: float | None, folder: Path) -> list[Path]:
    """throughput_plot stacks what the API saw each second, by send time and outcome, under
    what was due by the schedule, the demand and the limit.

    The stack is drawn by send time (what the limit counts; a start never sent, by its due
    time); "due" is every start and retry by its due time (a matchmaker's tick is a spike
    there, spread under the limit in the stack), demand what the scenario asked for before
    respect mode's cap.
    """
    figure, axes = new_figure(10, 4.5)
    outcomes = [o for o in OUTCOME_ORDER if o in series]
    axes.stackplot(
        series["t_s"],
        [series[o] for o in outcomes],
        labels=[o.replace("_", " ") for o in outcomes],
        colors=[COLOURS.get(o, "#5c6bc0") for o in outcomes],
        alpha=0.85,
    )
    if "demand_per_s" in series:
        axes.plot(
            series["t_s"], series["demand_per_s"], "--", color="#6a1b9a", linewidth=1.5,
            label="demand (before the cap)",
        )  # fmt: skip
    due_label = "due (by schedule)"
    axes.plot(series["t_s"], series["offered_per_s"], color="black", linewidth=1, label=due_label)
    if limit:
        limit_line(axes.axhline, limit)
    axes.set(
        title="Throughput: what the API saw, by send time and outcome",
        xlabel="time since first start (s)",
        ylabel="requests/s",
    )
    axes.legend(loc="upper left", fontsize="small")
    return save(figure, folder, "throughput")


def latency_plot(series: pd.DataFrame, folder: Path) -> list[Path]:
    """latency_plot draws per-window p50/p95/p99, from the send and from the schedule."""
    figure, axes = new_figure(10, 4.5)
    for key, style in (("p50", "-"), ("p95", "--"), ("p99", ":")):
        axes.plot(
            series["t_s"], series[f"send_{key}"], style, color="#1565c0", label=f"{key} from send"
        )
        axes.plot(
            series["t_s"],
            series[f"schedule_{key}"],
            style,
            color="#ad1457",
            label=f"{key} from schedule",
        )
    axes.set(title="Latency per second", xlabel="time since first start (s)", ylabel="ms")
    axes.set_yscale("log")
    # Labels at 1, 2 and 5 of each decade, in plain numbers: the log axis's own minor
    # labels are typeset as math, a tenth of all the plotting time.
    axes.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axes.yaxis.set_major_formatter(ticker.ScalarFormatter())
    axes.yaxis.set_minor_formatter(ticker.NullFormatter())
    axes.legend(loc="upper left", fontsize="small", ncol=2)
    return save(figure, folder, "latency")


SHARE_COLOURS = ("#2e7d32", "#ef6c00", "#c62828", "#5c6bc0")


def outcome_shares_plot(series: pd.DataFrame, folder: Path) -> list[Path]:
    """outcome_shares_plot stacks each window's shares of 202 / 422 / 429 / other."""
    figure, axes = new_figure(10, 4)
    groups = [c for c in series.columns if c not in ("t_s", "sent")]
    axes.stackplot(
        series["t_s"], [series[g] for g in groups], labels=groups, colors=SHARE_COLOURS, alpha=0.85
    )
    axes.set(
        title="Outcome shares of sent requests",
        xlabel="time since first start (s)",
        ylabel="share",
        ylim=(0, 1),
    )
    axes.yaxis.set_major_formatter(ticker.PercentFormatter(1.0))
    axes.legend(loc="lower left", fontsize="small")
    return save(figure, folder, "outcome_shares")


class Panel(NamedTuple):
    """Panel is one plot of a share: its data, the x column and label, a reference line."""

    curve: pd.DataFrame
    x: str
    label: str
    line: tuple[float, str] | None = None  # a vertical line: (x, what it is)


def share_curve_plot(
    panels: list[Panel], outcome: str, title: str, name: str, folder: Path
) -> list[Path]:
    """share_curve_plot draws the share of an outcome against rate, occupancy or time.

    Points where each x is a measured value (an offered rate, a count of slots); a line
    without markers over time.
    """
    colour = COLOURS.get(outcome, "#5c6bc0")
    figure, axes_row = new_figure(5.5 * len(panels), 4, top=0.6, ncols=len(panels), squeeze=False)
    figure.subplots_adjust(wspace=0.3)
    for axes, panel in zip(axes_row[0], panels, strict=True):
        style = "-" if panel.x == "t_s" else "o-"
        axes.plot(panel.curve[panel.x], panel.curve["share"], style, color=colour, markersize=4)
        if panel.line:
            at, what = panel.line
            axes.axvline(at, color="#37474f", linestyle="--", linewidth=1, label=what)
            axes.legend(loc="upper left", fontsize="small")
        axes.set(xlabel=panel.label, ylabel="share of sent requests", ylim=(-0.02, 1.02))
        axes.yaxis.set_major_formatter(ticker.PercentFormatter(1.0))
    figure.suptitle(title)
    return save(figure, folder, name)


def occupancy_plot(
    series: pd.DataFrame, capacity: int | None, folder: Path, forecast: pd.DataFrame | None = None
) -> list[Path]:
    """occupancy_plot stacks the 422 share over time above the slots held over time, and
    for a forecast's run the forecast's matches in progress beside them.

    When 422s begin as the held slots reach the capacity line, the world filled up
    (time and match length), whatever the rate.
    """
    figure, (top, bottom) = new_figure(10, 6, nrows=2, sharex=True)
    top.plot(series["t_s"], series["share"], color=COLOURS["allocation_failure"])
    top.set(ylabel="422 share of sent", ylim=(-0.02, 1.02), title="422s and occupancy over time")
    top.yaxis.set_major_formatter(ticker.PercentFormatter(1.0))
    bottom.plot(series["t_s"], series["holding"], color="#1565c0", label="slots held")
    if forecast is not None and not forecast.empty:
        bottom.plot(
            forecast["t_s"], forecast["forecast_all"], color="#2e7d32", linestyle="--",
            label="the forecast's matches in progress",
        )  # fmt: skip
    if capacity:
        bottom.axhline(capacity, color="#37474f", linestyle="--", linewidth=1, label="capacity")
    bottom.set(xlabel="time since first start (s)", ylabel="deployments holding a slot")
    bottom.legend(loc="upper left", fontsize="small")
    return save(figure, folder, "occupancy")


def fleet_plot(
    hosts: pd.DataFrame, cloud: pd.Series, fleets: dict[str, tuple[pd.Series, int]], folder
) -> list[Path]:
    """fleet_plot stacks where deployments held slots over time: the private hosts of each city
    (hosts has a column a city), then the cloud, in grey, apart; below, each fleet's slots
    held against its own capacity (a full fleet shows full whatever the others hold); the
    legends beside the plots."""
    figure, (axes, each) = new_figure(12, 7.5, nrows=2, sharex=True)
    figure.subplots_adjust(right=0.78, hspace=0.3)
    t = hosts["t"] - hosts["t"].min()
    names = [column for column in hosts.columns if column != "t"]
    palette = [f"C{k % 10}" for k in range(len(names))]
    axes.stackplot(
        t,
        [hosts[n] for n in names] + [cloud],
        labels=[f"private: {n}" for n in names] + ["cloud (overflow)"],
        colors=[*palette, "#9e9e9e"],
        alpha=0.85,
    )
    axes.set(title="Where deployments landed", ylabel="slots held")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    for k, (name, (held, capacity)) in enumerate(fleets.items()):
        colour = f"C{k % 10}"
        each.plot(t, held.to_numpy(), color=colour, label=f"{name}: held")
        if capacity:
            each.axhline(
                capacity, color=colour, linestyle="--", linewidth=1, label=f"{name}: capacity"
            )
    each.set(
        title="Each fleet against its capacity",
        xlabel="time since first reading (s)",
        ylabel="slots held",
    )
    each.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return save(figure, folder, "fleet")


def placement_plot(over_time: list[dict], folder: Path) -> list[Path]:
    """placement_plot draws, region by region, the deployments accepted per step of the run:
    on its private hosts below, overflowed to the cloud above (summary `placement`)."""
    frame = pd.DataFrame(over_time)
    regions = sorted(frame["region"].unique())
    if frame["t_s"].nunique() < MIN_STEPS:  # too short a run for a curve: one bar a region
        return _placement_bars(frame, regions, folder)
    figure, axes = new_figure(10, 2.2 * len(regions) + 0.8, nrows=len(regions), sharex=True)
    for ax, region in zip(np.atleast_1d(axes), regions, strict=True):
        rows = frame[frame["region"] == region]
        ax.stackplot(
            rows["t_s"],
            [rows["private"], rows["cloud"]],
            labels=["private hosts", "cloud (overflow)"],
            colors=["#1565c0", "#9e9e9e"],
            alpha=0.85,
        )
        ax.set(ylabel="deployments", title=f"{region}: where accepted deployments went")
        ax.legend(loc="upper left", fontsize="small")
    np.atleast_1d(axes)[-1].set(xlabel="time since first start (s)")
    return save(figure, folder, "placement")


MIN_STEPS = 3  # a placement curve needs this many steps; fewer are drawn as bars


def _placement_bars(frame: pd.DataFrame, regions: list[str], folder: Path) -> list[Path]:
    """_placement_bars draws each region's accepted deployments of a short run in one bar:
    on its private hosts, then overflowed to the cloud."""
    totals = frame.groupby("region")[["private", "cloud"]].sum().reindex(regions)
    figure, axes = new_figure(8, 0.6 * len(regions) + 1.6)
    axes.barh(regions, totals["private"], color="#1565c0", label="private hosts")
    axes.barh(regions, totals["cloud"], left=totals["private"], color="#9e9e9e",
              label="cloud (overflow)")  # fmt: skip
    axes.set(title="Where accepted deployments went, by region", xlabel="deployments")
    axes.legend(loc="lower right", fontsize="small")
    return save(figure, folder, "placement")


def time_to_ready_plot(seconds: pd.Series, folder: Path) -> list[Path]:
    """time_to_ready_plot is the CDF of seconds from send to the READY callback or poll."""
    figure, axes = new_figure(7, 4)
    title = f"Time to ready ({len(seconds)} deployments)"
    cdf_plot(axes, seconds, title, "seconds from send to ready", "share of deployments ready")
    return save(figure, folder, "time_to_ready")


CDF_POINTS = 2000


def cdf_plot(axes, values: pd.Series, title: str, xlabel: str, ylabel: str) -> None:
    """cdf_plot draws the empirical distribution of values: the share at or below each.

    At most CDF_POINTS quantiles are drawn: more points than pixels only cost time (a
    million of them took half a second, and made the SVG huge).
    """
    ordered = np.sort(values.to_numpy(dtype=float))
    shares = np.arange(1, len(ordered) + 1) / len(ordered)
    if len(ordered) > CDF_POINTS:
        picked = np.linspace(0, len(ordered) - 1, CDF_POINTS).astype(int)
        ordered, shares = ordered[picked], shares[picked]
    axes.step(ordered, shares, where="post")
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel, ylim=(0, 1.02))
    axes.yaxis.set_major_formatter(ticker.PercentFormatter(1.0))
    axes.grid(alpha=0.3)


def region_plot(by_region: dict, folder: Path) -> list[Path]:
    """region_plot shows each region's outcome shares as one horizontal bar."""
    regions = sorted(by_region)
    longest = max(len(region) for region in regions)
    figure, axes = new_figure(9, 0.5 * len(regions) + 1.5, left=0.3 + 0.08 * longest)
    left = [0.0] * len(regions)
    for outcome in OUTCOME_ORDER:
        widths = [by_region[r]["shares_of_starts"].get(outcome, 0.0) for r in regions]
        if any(widths):
            axes.barh(
                regions,
                widths,
                left=left,
                label=outcome.replace("_", " "),
                color=COLOURS.get(outcome, "#5c6bc0"),
            )
            left = [a + b for a, b in zip(left, widths, strict=True)]
    axes.set(
        title="Outcomes by region",
        xlabel="share of the region's scheduled starts (sent or not)",
        xlim=(0, 1),
    )
    axes.xaxis.set_major_formatter(ticker.PercentFormatter(1.0))
    axes.legend(loc="lower right", fontsize="small")
    return save(figure, folder, "regions")


def plan_plot(plan, forecast, folder: Path, tz=None) -> list[Path]:
    """plan_plot draws what a forecast asks: the starts a second (the renewal's, and Little's
    steady state) against the limit, the matches in progress (the forecast's and the ones
    the starts hold), and the queue in front of the limit; a forecast of ISO times on a
    clock-time axis (in tz).

    plan and forecast come from edgebench.plan.forecast (duck-typed: the analysis does
    not import the harness).
    """
    figure, (rate, held, queue) = new_figure(10, 8.5, nrows=3, sharex=True)
    figure.subplots_adjust(hspace=0.3)
    times, starts, little, wanted, holds = zip(*plan.curve, strict=True)
    hours = [t / 3600 for t in times]
    rate.plot(hours, starts, color="#1565c0", label="match starts (renewal)")
    rate.plot(hours, little, color="#90a4ae", linestyle="--", label="Little's law (steady state)")
    limit_line(rate.axhline, plan.limit)
    rate.axvspan(
        plan.peak_at_s / 3600, (plan.peak_at_s + 60) / 3600, color="#6a1b9a", alpha=0.3,
        label=f"busiest minute ({plan.peak_rate:.1f}/s)",
    )  # fmt: skip
    if forecast.window:
        run = [t / 3600 for t in forecast.window]
        for axes in (rate, held, queue):
            axes.axvspan(*run, color="#9e9e9e", alpha=0.15)
    rate.set(title="Demand from the forecast", ylabel="deploys per second")
    rate.legend(loc="best", fontsize="small")  # the curve's peak may be anywhere
    held.plot(hours, wanted, color="#2e7d32", label="the forecast's (share x players / party)")
    held.plot(hours, holds, color="#ef6c00", linestyle=":", label="held by the starts")
    held.set(title="Matches (servers) in progress", ylabel="servers")
    held.legend(loc="lower right", fontsize="small")
    queue.plot([t / 3600 for t, _ in plan.queue], [n for _, n in plan.queue], color="#ef6c00")
    queue.set(xlabel="forecast time (h)", ylabel="matches", title=plan.queue_title)
    queue.set_ylim(bottom=0)
    if forecast.origin is not None:  # clock times: the forecast's own, in tz
        origin = forecast.origin.astimezone(tz)
        queue.xaxis.set_major_formatter(
            ticker.FuncFormatter(lambda h, _: f"{origin + timedelta(hours=h):%H:%M}")
        )
        queue.set_xlabel(f"clock time ({origin.tzname()})")
    return save(figure, folder, "plan")


def player_wait_plot(
    waits: pd.Series, over_time: pd.DataFrame, to: str, unserved: float, folder
) -> list[Path]:
    """player_wait_plot draws the players' wait: its CDF, and its percentiles over the run,
    of the served matches; the title says what share of the matches got no server and so
    is off the plot (their wait never ends)."""
    figure, (cdf, timeline) = new_figure(11, 4.2, ncols=2)
    figure.subplots_adjust(wspace=0.3, top=0.8)
    target = "a ready server" if to == "ready" else "the 202"
    title = f"Players' wait, match found to {target}"
    if unserved > 0:
        figure.suptitle(
            f"served matches only: {unserved:.1%} of the recorded matches got no server and "
            "are off these curves (their wait never ends)",
            fontsize="small", color="#b71c1c",
        )  # fmt: skip
    cdf_plot(cdf, waits, title, "seconds", "share of served matches")
    for key, style in (("p50", "-"), ("p95", "--"), ("p99", ":")):
        timeline.plot(over_time["t_s"], over_time[key], style, color="#6a1b9a", label=key)
    timeline.set(title="over the run", xlabel="when the match was found (s)", ylabel="seconds")
    timeline.legend(loc="upper left", fontsize="small")
    return save(figure, folder, "player_wait")


def queue_plot(queue: pd.DataFrame, attempts: pd.Series, folder) -> list[Path]:
    """queue_plot draws the matches waiting for the limiter over time, and attempts per match."""
    figure, (length, tries) = new_figure(11, 4.2, ncols=2)
    figure.subplots_adjust(wspace=0.3)
    length.plot(queue["t_s"], queue["waiting"], color="#ef6c00")
    length.set(
        title="Waiting for the limiter", xlabel="time since first start (s)", ylabel="attempts"
    )
    tries.bar(attempts.index.astype(int), attempts.to_numpy(), color="#5c6bc0")
    tries.set(title="Attempts per match", xlabel="attempts", ylabel="matches")
    tries.set_xticks(attempts.index.astype(int))
    return save(figure, folder, "queue")
