"""Analysing a run folder end to end: summary.json, the curves, the verdict and report.html.

    outcome = analyze("results/20261127T091855Z-smoke")
    outcome.passed, outcome.report        # the verdict, and the page that shows it

report.html is one self-contained page (plots embedded as PNG, no external
files), read top to bottom: verdict, key numbers, curves, breakdowns, manifest.
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path

import jinja2
import orjson

from analysis import thresholds, windows
from analysis.load import Run, load_run
from analysis.metrics import NOT_SENT, summarize, time_to_ready

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
        return all(result.passed for result in self.results)


def analyze(
    folder: str | Path,
    window_s: float = 1.0,
    checks: list[thresholds.Check] | None = None,
    baseline: dict | None = None,
    progress=None,
) -> Outcome:
    """analyze writes summary.json, the plots and report.html into the run folder.

    checks default to the scenario's thresholds recorded in the manifest;
    baseline is a baseline run's summary, for relative checks.
    progress(step_name, bytes_read) is called as the work goes on.
    """
    step = progress or (lambda *_: None)
    # Arrow parses without the GIL: matplotlib's half-second import fits in alongside.
    plotting = threading.Thread(target=import_module, args=("analysis.plots",), daemon=True)
    plotting.start()
    run = load_run(folder, progress=lambda size: step("loading", size), lean=True)
    plotting.join()
    summary = summarize(run)
    _write_json(run.folder / "summary.json", summary)
    step("summary", 0)
    figures = draw(curves_over_time(run, window_s))
    step("curves over time", 0)
    figures += draw(curves_by_rate(run, summary, window_s))
    step("curves by rate, readiness and region", 0)
    if checks is None:
        checks = thresholds.parse((run.manifest.get("scenario") or {}).get("thresholds") or [])
    base_values = thresholds.metrics(baseline) if baseline else None
    results = thresholds.evaluate(checks, thresholds.metrics(summary), base_values, "baseline")
    outcome = Outcome(run, summary, results)
    outcome.report = write_report(outcome, figures)
    step("report", 0)
    return outcome


OFFERED = ("offered_per_s", "offered rate (requests/s)")


def draw(jobs: list[tuple]) -> list[tuple[str, Path]]:
    """draw runs (title, plot function, *args) jobs: (title, PNG path) each."""
    return [(title, function(*args)[0]) for title, function, *args in jobs]


def curves_over_time(run: Run, window_s: float) -> list[tuple]:
    """curves_over_time are the plot jobs of throughput, outcome shares and latency."""
    from analysis import plots

    requests, folder = run.requests, run.folder
    if requests.empty:
        return []
    limit = _limit(run)
    return [
        (
            "Throughput",
            plots.throughput_plot,
            windows.throughput(requests, window_s),
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


def curves_by_rate(run: Run, summary: dict, window_s: float) -> list[tuple]:
    """curves_by_rate are the plot jobs of 422 and 429 shares, time to ready and regions."""
    from analysis import plots

    requests, folder = run.requests, run.folder
    if requests.empty:
        return []
    limit = _limit(run)
    failures = [(windows.share_by_offered_rate(requests, "allocation_failure"), *OFFERED)]
    if not run.emulator.empty:
        active = windows.share_by_active(requests, run.emulator, "allocation_failure", window_s)
        failures.append((active, "active", "active deployments (emulator)"))
    limited = [(windows.share_by_offered_rate(requests, "rate_limited"), *OFFERED)]
    jobs = [
        (
            "422 allocation failures",
            plots.share_curve_plot,
            failures,
            limit,
            "422 allocation failures",
            "allocation_failures",
            folder,
        ),
        (
            "429 rate limited",
            plots.share_curve_plot,
            limited,
            limit,
            "429 rate limited",
            "rate_limited",
            folder,
        ),
    ]
    ready = time_to_ready(run)
    if not ready.empty:
        jobs.append(("Time to ready", plots.time_to_ready_plot, ready, folder))
    if summary["by_region"]:
        jobs.append(("Regions", plots.region_plot, summary["by_region"], folder))
    return jobs


def _limit(run: Run) -> float | None:
    return (run.manifest.get("scenario") or {}).get("limit")


def write_report(outcome: Outcome, figures: list[tuple[str, Path]]) -> Path:
    """write_report renders report.html beside the logs and returns its path."""
    run, summary = outcome.run, outcome.summary
    scenario = run.manifest.get("scenario") or {}
    page = TEMPLATES.get_template("report.html.j2").render(
        title=f"edgebench run: {scenario.get('name') or run.folder.name}",
        subtitle=_subtitle(run),
        verdict=verdict(outcome.results),
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
    )
    path = run.folder / "report.html"
    path.write_text(page)
    return path


def verdict(results: list[thresholds.Result]) -> dict:
    """verdict is the report's banner: pass, fail (naming each failure) or no thresholds."""
    if not results:
        return {"kind": "none", "text": "No thresholds: nothing to pass or fail.", "lines": []}
    failed = [r.message for r in results if not r.passed]
    if failed:
        text = f"FAIL: {len(failed)} of {len(results)} thresholds"
        return {"kind": "fail", "text": text, "lines": failed}
    text = f"PASS: all {len(results)} thresholds met"
    return {"kind": "pass", "text": text, "lines": [r.message for r in results]}


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
        ("scheduled starts", f"{summary['requests_total']:,}"),
        ("sent", f"{summary['requests_sent']:,}"),
        ("offered rate", f"{summary['offered_rate_per_s']:g}/s"),
        ("accepted rate (202)", f"{summary['accepted_rate_per_s']:g}/s"),
    ]
    rows += [(label, _percent(values[name])) for name, label in SHARES]
    rows.append(("dropped starts", f"{summary['dropped_starts']:,}"))
    for source in ("from_send", "from_schedule"):
        latency = summary["latency_ms"][source]
        figures = " / ".join(_ms(latency[k]) for k in ("p50", "p95", "p99", "max"))
        rows.append((f"latency {source.replace('_', ' ')} p50 / p95 / p99 / max", figures))
    ready = summary["time_to_ready_s"]
    if ready["p50"] is not None:
        figures = " / ".join(f"{ready[k]:g} s" for k in ("p50", "p95", "max"))
        rows.append(("time to ready p50 / p95 / max", figures))
    return rows


def _subtitle(run: Run) -> str:
    manifest = run.manifest
    target = (manifest.get("target") or {}).get("host") or "unknown target"
    scenario = manifest.get("scenario") or {}
    mode, limit = scenario.get("mode", "?"), scenario.get("limit", "?")
    return f"{run.folder.name} · {mode} mode, limit {limit}/s · against {target}"


def _warnings(run: Run, summary: dict) -> list[str]:
    warnings = []
    if summary["requests_total"] == 0:
        warnings.append("This run recorded no requests: the logs are empty or missing.")
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


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g} ms"


def _write_json(path: Path, value: dict) -> None:
    path.write_bytes(orjson.dumps(value, option=orjson.OPT_INDENT_2))
