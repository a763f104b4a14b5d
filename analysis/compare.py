"""Comparing two runs: a table of deltas with the better direction marked, and overlays.

comparison = compare("results/base", "results/candidate", out)
comparison.text        # the table, for a terminal or a CI log
comparison.page        # compare.html, with the overlay plots embedded
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import orjson

from analysis import plots, thresholds, windows
from analysis.load import Run, load_run
from analysis.metrics import summarize
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
)


@dataclass
class Row:
    metric: str
    base: float | None
    candidate: float | None
    better: int  # -1 lower is better, +1 higher, 0 neither

    @property
    def delta(self) -> float | None:
        if self.base is None or self.candidate is None:
            return None
        return self.candidate - self.base

    @property
    def judgement(self) -> str:
        """judgement is 'better', 'worse' or '' (no change, no direction, or no value)."""
        if not self.delta or not self.better:
            return ""
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
    base_values = thresholds.metrics(summarize(base))
    candidate_values = thresholds.metrics(summarize(candidate))
    rows = [
        Row(m, base_values[m], candidate_values[m], thresholds.METRICS[m][1]) for m in TABLE_METRICS
    ]
    if checks is None:
        recorded = (candidate.manifest.get("scenario") or {}).get("thresholds") or []
        checks = thresholds.parse(recorded)
    results = thresholds.evaluate(checks, candidate_values, base_values, base.folder.name)
    out.mkdir(parents=True, exist_ok=True)
    text = table_text(base, candidate, rows, results)
    (out / "compare.txt").write_text(text + "\n")
    figures = _overlays(base, candidate, out)
    page = _page(base, candidate, rows, results, figures, out)
    return Comparison(base, candidate, rows, results, text, page)


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


def _page(base, candidate, rows, results, figures, out: Path) -> Path:
    failed = [r.message for r in results if not r.passed]
    page = TEMPLATES.get_template("compare.html.j2").render(
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
