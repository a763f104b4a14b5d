"""`edgebench history`: runs' key numbers over time, and the newest judged against the rolling
median of the ones before it.

    history = build_history([Path("results/a"), Path("results/b")], Path("out"), checks)
    history.passed   # every check of the newest run held

Each run folder needs its summary.json (what `edgebench analyze` writes, and what a CI job
keeps of each run) and manifest.json (when the run started, its scenario, git commit and
edgebench version). Runs are put in the order they started. A check relative to `median`
(`p95_ms <= median * 1.1`) compares the newest run with the median of up to WINDOW runs
before it; a check against a number judges the newest run alone.
"""

from __future__ import annotations

import base64
import html
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from analysis import thresholds
from analysis._errors import AnalysisError

WINDOW = 5  # earlier runs the median is taken over
KEY_METRICS = (
    ("accepted_rate_per_s", "accepted rate (/s)"),
    ("p95_ms", "latency p95 (ms)"),
    ("share_422", "share of 422"),
    ("share_429", "share of 429"),
    ("wait_p95_s", "players' wait p95 (s)"),
    ("dropped_starts", "dropped starts"),
)


@dataclass
class Run:
    """Run is one run of the history: where, when, what it ran, its key numbers."""

    folder: Path
    started_at: float
    scenario: str
    commit: str
    version: str
    values: dict


@dataclass
class History:
    runs: list[Run]
    reference: dict  # the rolling median of the runs before the newest, per metric
    results: list[thresholds.Result] = field(default_factory=list)
    page: Path | None = None

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results)


def build_history(folders: list[Path], out: Path, checks: list[thresholds.Check]) -> History:
    """build_history reads the runs, judges the newest, writes history.json and history.html."""
    for check in checks:
        if check.reference == "baseline":
            raise AnalysisError(
                f"--check {check.text!r}: history compares with the median of earlier runs; "
                f"write {check.text.replace('baseline', 'median')!r}"
            )
    runs = sorted((_run(folder) for folder in folders), key=lambda run: run.started_at)
    if not runs:
        raise AnalysisError("no runs given; pass the run folders, oldest or newest first")
    reference = rolling_median([run.values for run in runs[-1 - WINDOW : -1]])
    history = History(runs, reference)
    if checks:
        newest = runs[-1].values
        history.results = thresholds.evaluate(checks, newest, reference, "the rolling median")
    out.mkdir(parents=True, exist_ok=True)
    (out / "history.json").write_bytes(orjson.dumps(_facts(history), option=orjson.OPT_INDENT_2))
    history.page = _write_page(history, out)
    return history


def rolling_median(values: list[dict]) -> dict:
    """rolling_median is each metric's median over runs (runs without it left out)."""
    names = {name for run in values for name in run}
    medians = {}
    for name in names:
        known = [run[name] for run in values if run.get(name) is not None]
        if known:
            medians[name] = statistics.median(known)
    return medians


def _run(folder: Path) -> Run:
    summary_path, manifest_path = folder / "summary.json", folder / "manifest.json"
    if not summary_path.exists():
        raise AnalysisError(
            f"{folder}: no summary.json; run `edgebench analyze {folder}` first, or keep each "
            "run's summary.json and manifest.json"
        )
    try:
        summary = orjson.loads(summary_path.read_bytes())
        manifest = orjson.loads(manifest_path.read_bytes()) if manifest_path.exists() else {}
    except orjson.JSONDecodeError as exc:
        raise AnalysisError(
            f"{folder}: summary.json or manifest.json is not JSON ({exc})"
        ) from None
    return Run(
        folder=folder,
        started_at=float(manifest.get("started_at") or summary_path.stat().st_mtime),
        scenario=(manifest.get("scenario") or {}).get("name") or "?",
        commit=(manifest.get("git_commit") or "")[:10],
        version=(manifest.get("versions") or {}).get("edgebench") or "?",
        values=thresholds.metrics(summary),
    )


def _facts(history: History) -> dict:
    return {
        "runs": [
            {
                "folder": str(run.folder),
                "started_at": run.started_at,
                "scenario": run.scenario,
                "git_commit": run.commit,
                "edgebench": run.version,
                **{name: run.values.get(name) for name, _ in KEY_METRICS},
            }
            for run in history.runs
        ],
        "rolling_median": {name: history.reference.get(name) for name, _ in KEY_METRICS},
        "window": WINDOW,
        "checks": [
            {"check": r.check.text, "actual": r.actual, "limit": r.limit, "passed": r.passed}
            for r in history.results
        ],
    }


def table(history: History) -> str:
    """table is the history in text: a line a run, oldest first, the newest marked."""
    head = f"{'run':<28} {'scenario':<18} {'commit':<10} " + " ".join(
        f"{name:>14}" for name, _ in KEY_METRICS
    )
    lines = [head]
    for number, run in enumerate(history.runs):
        mark = " <- newest" if number == len(history.runs) - 1 else ""
        cells = " ".join(f"{_cell(run.values.get(name)):>14}" for name, _ in KEY_METRICS)
        lines.append(
            f"{run.folder.name[:28]:<28} {run.scenario[:18]:<18} {run.commit:<10} {cells}{mark}"
        )
    return "\n".join(lines)


def _cell(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def _write_page(history: History, out: Path) -> Path:
    png = _draw(history, out / "history.png")
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in (
            run.folder.name, run.scenario, run.commit, run.version,
            *(_cell(run.values.get(name)) for name, _ in KEY_METRICS))) + "</tr>"
        for run in history.runs
    )  # fmt: skip
    heads = "".join(
        f"<th>{html.escape(h)}</th>"
        for h in ("run", "scenario", "commit", "edgebench", *(label for _, label in KEY_METRICS))
    )
    verdicts = "".join(
        f"<li>{'ok' if r.passed else 'FAILED'}: {html.escape(r.message)}</li>"
        for r in history.results
    )
    image = base64.b64encode(png.read_bytes()).decode()
    page = out / "history.html"
    page.write_text(
        f"""<!doctype html>
<meta charset="utf-8">
<title>edgebench history</title>
<style>body{{font-family:sans-serif;max-width:70em;margin:2em auto}}
td,th{{padding:.2em .6em;text-align:right}}</style>
<h1>edgebench history: {len(history.runs)} runs</h1>
<ul>{verdicts or "<li>No checks.</li>"}</ul>
<img alt="key numbers over the runs" src="data:image/png;base64,{image}">
<table><tr>{heads}</tr>{rows}</table>
"""
    )
    return page


def _draw(history: History, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(len(KEY_METRICS), 1, figsize=(8, 1.8 * len(KEY_METRICS)),
                                   sharex=True)  # fmt: skip
    positions = list(range(len(history.runs)))
    for ax, (name, label) in zip(axes, KEY_METRICS, strict=True):
        values = [run.values.get(name) for run in history.runs]
        shown = [(x, v) for x, v in zip(positions, values, strict=True) if v is not None]
        if shown:
            ax.plot(*zip(*shown, strict=True), marker="o", color="tab:blue")
        if history.reference.get(name) is not None:
            ax.axhline(history.reference[name], color="tab:orange", ls="--", lw=1,
                       label="median of the runs before the newest")  # fmt: skip
            ax.legend(fontsize=7, loc="best")
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1].set_xticks(positions, [run.folder.name[-18:] for run in history.runs],
                        rotation=30, ha="right", fontsize=7)  # fmt: skip
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    pyplot.close(figure)
    return path
