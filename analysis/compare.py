"""Comparing two runs: a table of deltas with the better direction marked, and overlays.

comparison = compare("results/base", "results/candidate", out)
comparison.text        # the table, for a terminal or a CI log
comparison.page        # compare.html, with the overlay plots embedded
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from analysis import plots, thresholds, windows
from analysis.load import Run, load_run
from analysis.metrics import player_waits, summarize, time_to_ready
from analysis.report import TEMPLATES

TABLE_METRICS = (
    "offered_rate_per_s",
    "accepted_rate_per_s",
    "share_202",
    "share_422",
    "share_429",
    "share_error",
    "dropped_starts",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "sched_p95_ms",
    "sched_p99_ms",
    "ttr_p50_s",
    "ttr_p95_s",
    "wait_p50_s",
    "wait_p95_s",
    "wait_p99_s",
    "share_unserved",
    "share_overflow",
)


Z = 1.96  # a 95% interval
LENGTH_TOLERANCE = 0.1  # runs whose lengths differ by more are compared over the shorter
PERCENTILE_METRICS = {
    **{f"p{p}_ms": ("latency_ms", p / 100) for p in (50, 90, 95, 99)},
    **{f"sched_p{p}_ms": ("latency_sched_ms", p / 100) for p in (50, 90, 95, 99)},
}


@dataclass
class Row:
    metric: str
    base: float | None
    candidate: float | None
    better: int  # -1 lower is better, +1 higher, 0 neither
    noise: float = 0.0  # a difference within this is the runs' noise, not a change

    @property
    def delta(self) -> float | None:
        if self.base is None or self.candidate is None:
            return None
        return self.candidate - self.base

    @property
    def judgement(self) -> str:
        """judgement is 'better', 'worse', 'within noise' or '' (no change, direction or value)."""
        if not self.delta or not self.better:
            return ""
        if abs(self.delta) <= self.noise:
            return "within noise"
        return "better" if self.delta * self.better > 0 else "worse"

    @property
    def relative(self) -> str:
        if self.delta is None or not self.base:
            return ""
        return f"{self.delta / self.base:+.1%}"


@dataclass
class Comparison:
    base: Run
    candidate: Run
    rows: list[Row]
    results: list[thresholds.Result]
    text: str
    page: Path

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results)


def compare(
    base_folder, candidate_folder, out: Path, checks: list[thresholds.Check] | None = None
) -> Comparison:
    """compare writes compare.html, compare.txt and overlay plots into out."""
    base, candidate = load_run(base_folder), load_run(candidate_folder)
    warnings = [*_scenario_warning(base, candidate), *_same_length(base, candidate)]
    base_summary, candidate_summary = summarize(base), summarize(candidate)
    base_values = thresholds.metrics(base_summary)
    candidate_values = thresholds.metrics(candidate_summary)
    rows = [
        Row(
            m,
            base_values[m],
            candidate_values[m],
            thresholds.METRICS[m][1],
            math.hypot(interval(base, base_summary, m), interval(candidate, candidate_summary, m)),
        )
        for m in TABLE_METRICS
    ]
    if checks is None:
        recorded = (candidate.manifest.get("scenario") or {}).get("thresholds") or []
        checks = thresholds.parse(recorded)
    results = thresholds.evaluate(checks, candidate_values, base_values, base.folder.name)
    out.mkdir(parents=True, exist_ok=True)
    text = "\n".join(
        [*(f"WARNING: {w}" for w in warnings), table_text(base, candidate, rows, results)]
    )
    (out / "compare.txt").write_text(text + "\n")
    figures = _overlays(base, candidate, out)
    page = _page(base, candidate, rows, results, figures, out, warnings)
    return Comparison(base, candidate, rows, results, text, page)


def _scenario_warning(base: Run, candidate: Run) -> list[str]:
    """_scenario_warning says, loudly, when the two runs ran different scenarios."""
    first, second = (run.manifest.get("scenario") or {} for run in (base, candidate))
    # The file and the files it reads, where both manifests say (older ones: the file's).
    both = first.get("inputs_sha256") and second.get("inputs_sha256")
    key = "inputs_sha256" if both else "sha256"
    if (first.get("name"), first.get(key)) == (second.get("name"), second.get(key)):
        return []
    return [
        f"the runs are of different scenarios ({first.get('name')} and {second.get('name')}, "
        "or the same name with other files): the differences below compare different "
        "workloads, not a change in the system"
    ]


def _same_length(base: Run, candidate: Run) -> list[str]:
    """_same_length cuts the longer run to the shorter one's length, so like meets like."""
    spans = [_span(run) for run in (base, candidate)]
    if min(spans) <= 0 or max(spans) <= min(spans) * (1 + LENGTH_TOLERANCE):
        return []
    shorter = min(spans)
    for run in (base, candidate):
        start = run.requests["t_sched"].min()
        run.requests = run.requests[run.requests["t_sched"] < start + shorter]
    return [
        f"the runs differ in length ({spans[0]:.0f} s and {spans[1]:.0f} s): both are "
        f"compared over their first {shorter:.0f} s"
    ]


def _span(run: Run) -> float:
    times = run.requests["t_sched"].dropna()
    return float(times.max() - times.min()) if len(times) > 1 else 0.0


def interval(run: Run, summary: dict, metric: str) -> float:
    """interval is the half-width of a metric's 95% interval in one run: its noise.

    Shares: the binomial interval over the sent requests. Rates and counts: Poisson.
    Percentiles: the distribution-free interval of an order statistic (the ranks
    n p +- Z sqrt(n p (1 - p)) of the sorted samples), so a p50 that moved by less than
    the spread of its neighbouring samples is noise.
    """
    values = thresholds.metrics(summary)
    value = values.get(metric)
    if value is None:
        return 0.0
    if metric.startswith("share_") and (n := _share_count(summary, metric)):
        return Z * math.sqrt(value * (1 - value) / n)
    if metric.endswith("_rate_per_s") and summary.get("duration_s"):
        return Z * math.sqrt(value * summary["duration_s"]) / summary["duration_s"]
    if metric == "dropped_starts":
        return Z * math.sqrt(value)
    if metric in PERCENTILE_METRICS:
        column, p = PERCENTILE_METRICS[metric]
        return _quantile_half_width(run.requests[column].dropna().to_numpy(dtype=float), p)
    if metric.startswith("ttr_p"):
        return _quantile_half_width(time_to_ready(run).to_numpy(dtype=float), _rank_of(metric))
    if metric.startswith("wait_p"):
        # Every match: one that got no server waited for ever (its wait is infinite).
        waits = player_waits(run)[0]["wait_s"].dropna().to_numpy(dtype=float)
        never = np.full((summary.get("matches") or {}).get("unserved", 0), np.inf)
        return _quantile_half_width(np.concatenate([waits, never]), _rank_of(metric))
    return 0.0


def _rank_of(metric: str) -> float:
    """_rank_of is the quantile a percentile metric names (wait_p95_s: 0.95)."""
    return int(metric.split("_p")[1].split("_")[0]) / 100


def _share_count(summary: dict, metric: str) -> int:
    """_share_count is how many a share is of: sent requests, matches, or fleet deploys."""
    if metric in ("share_unserved", "share_abandoned"):
        return (summary.get("matches") or {}).get("total") or 0
    if metric == "share_overflow":
        fleet = summary.get("fleet") or {}
        return (fleet.get("placed_private") or 0) + (fleet.get("placed_cloud") or 0)
    return summary["requests_sent"]


def _quantile_half_width(samples: np.ndarray, p: float) -> float:
    """_quantile_half_width is half the 95% interval of the p-quantile of samples.

    >>> _quantile_half_width(np.arange(1.0, 101.0), 0.5)
    10.0
    """
    n = samples.size
    if n < 2:
        return 0.0
    spread = Z * math.sqrt(n * p * (1 - p))
    low = int(max(1, math.floor(n * p - spread)))
    high = int(min(n, math.ceil(n * p + spread)))
    ordered = np.partition(samples, [low - 1, high - 1])
    width = float(ordered[high - 1] - ordered[low - 1]) / 2
    return width if math.isfinite(width) else math.inf  # among the never-served: unknown


def table_text(base: Run, candidate: Run, rows: list[Row], results) -> str:
    """table_text is the comparison as aligned text: one metric a line, then each check."""
    lines = [f"base: {base.folder}", f"candidate: {candidate.folder}", ""]
    lines.append(f"{'metric':<22}{'base':>12}{'candidate':>12}{'delta':>12}{'change':>9}  verdict")
    lines += [
        f"{row.metric:<22}{_number(row.base):>12}{_number(row.candidate):>12}"
        f"{_number(row.delta):>12}{row.relative:>9}  {row.judgement}"
        for row in rows
    ]
    lines.extend(["", "checks:", *(f"  {r.message}" for r in results)] if results else [])
    return "\n".join(lines)


def _overlays(base: Run, candidate: Run, out: Path) -> list[tuple[str, Path]]:
    figure, (rate, latency) = plots.new_figure(10, 7, nrows=2, sharex=True)
    figure.subplots_adjust(hspace=0.3)
    for run, colour, name in ((base, "#757575", "base"), (candidate, "#1565c0", "candidate")):
        if run.requests.empty:
            continue
        series = windows.throughput(run.requests)
        rate.plot(series["t_s"], series["accepted_per_s"], color=colour, label=f"{name} accepted")
        rate.plot(
            series["t_s"], series["offered_per_s"], ":", color=colour, label=f"{name} offered"
        )
        percentiles = windows.latency(run.requests)
        if "send_p95" in percentiles:
            latency.plot(percentiles["t_s"], percentiles["send_p95"], color=colour, label=name)
    rate.set(title="Accepted and offered requests/s", ylabel="requests/s")
    latency.set(title="Latency p95 from send", xlabel="time since first start (s)", ylabel="ms")
    for axes in (rate, latency):
        axes.legend(loc="upper left", fontsize="small")
    paths = plots.save(figure, out, "compare")
    return [("Base and candidate over time", paths[0])]


def _page(base, candidate, rows, results, figures, out: Path, warnings: list[str]) -> Path:
    failed = [r.message for r in results if not r.passed]
    page = TEMPLATES.get_template("compare.html.j2").render(
        warnings=warnings,
        base=base.folder,
        candidate=candidate.folder,
        rows=rows,
        number=_number,
        results=results,
        failed=failed,
        plots=[{"title": t, "png": base64.b64encode(p.read_bytes()).decode()} for t, p in figures],
    )
    path = out / "compare.html"
    path.write_text(page)
    (out / "compare.json").write_bytes(
        orjson.dumps(
            [
                {
                    "metric": r.metric,
                    "base": r.base,
                    "candidate": r.candidate,
                    "noise": round(r.noise, 6),
                    "verdict": r.judgement,
                }
                for r in rows
            ],
            option=orjson.OPT_INDENT_2,
        )
    )
    return path


def _number(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}" if isinstance(value, float) else f"{value}"
