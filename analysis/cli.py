"""The analysis commands: `edgebench analyze` and `edgebench compare` (also `python -m analysis`).

Exit codes: 0 every threshold met (or none set), 1 a threshold failed, 2 bad input.
Bad input raises AnalysisError or ThresholdError; the edgebench command shows it as
one `Error:` line (edgebench.cli).
"""

from __future__ import annotations

from pathlib import Path

import click
from tqdm import tqdm

from analysis import thresholds
from analysis._errors import AnalysisError
from checks import verdict_checks

LARGE_LOG_BYTES = 20 * 1024 * 1024  # about 70,000 records: long enough to want a progress bar


def _checks(path: Path | None, texts: tuple[str, ...] = ()) -> list[thresholds.Check] | None:
    return verdict_checks(path, texts)


def thresholds_option(default_text: str):
    """thresholds_option is the --thresholds FILE option of analyze, compare and run."""
    return click.option(
        "--thresholds",
        "thresholds_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help=f"TOML file with checks = [...]; {default_text}",
    )


def output_folder_option(help_text: str, default: Path | None = None):
    """output_folder_option is --results-dir of a command that writes pages (--out, its name
    before one name for an output folder everywhere, still works)."""
    return click.option(
        "--results-dir",
        "--out",
        "out",
        type=click.Path(file_okay=False, path_type=Path),
        default=default,
        show_default=default is not None,
        help=help_text,
    )


def check_option(
    help_text: str = 'A check of the verdict, e.g. "share_429 == 0" (repeat; with --thresholds, '
    "added to its file's).",
):
    """check_option is --check of analyze, run, simulate, search and advise: a check given
    inline (repeat), with --thresholds' too; either replaces the scenario's thresholds."""
    return click.option("--check", "checks", multiple=True, help=help_text)


def plots_option():
    """plots_option is --plots/--no-plots of analyze and run."""
    return click.option(
        "--plots/--no-plots",
        default=True,
        show_default=True,
        help="Draw the curves (PNG, SVG) into the report; --no-plots: the numbers and the "
        "verdict only, in a fraction of the time (CI jobs that keep summary.json).",
    )


@click.command("analyze")
@click.argument("folders", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--window",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds per window of the curves over time (default: 1 s, or the shortest round "
    "window that keeps a long run's curves to 1,500 points).",
)
@thresholds_option('e.g. "p95_ms < 800" (default: the scenario\'s thresholds).')
@check_option()
@click.option(
    "--baseline",
    type=click.Path(file_okay=False, path_type=Path),
    help="A baseline run folder, for checks like 'p95_ms <= baseline * 1.1'.",
)
@click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the checks as JUnit XML here (default: junit.xml in each run folder).",
)
@plots_option()
def analyze_command(folders, window, thresholds_file, checks, baseline, junit, plots) -> None:
    """Analyse run folders: summary.json, curves (PNG, SVG), report.html and a verdict.

    Exit codes: 0 every threshold met (or none set), 1 a threshold failed, 2 bad input
    (not a run folder, a bad check, a check that needs --baseline without one), 3 a run
    incomplete (cut short, or records missing) and none failed.
    """
    from analysis.report import incomplete

    judged = _checks(thresholds_file, checks)
    base_summary = _baseline(baseline, window) if baseline else None
    codes = set()
    for folder in folders:
        outcome = _analyze_one(folder, window, judged, base_summary, plots)
        missing = incomplete(outcome.summary)
        if outcome.results or missing:
            path = junit or folder / "junit.xml"
            thresholds.write_junit(outcome.results, path, folder.name, missing)
        click.echo(one_screen(outcome))
        codes.add(outcome.exit_code)
    if 1 in codes or 3 in codes:
        raise SystemExit(1 if 1 in codes else 3)


def _analyze_one(folder: Path, window: float, checks, base_summary, plots: bool = True):
    from analysis.load import log_bytes
    from analysis.report import analyze

    size = log_bytes(folder) if folder.is_dir() else 0
    with tqdm(
        total=size,
        unit="B",
        unit_scale=True,
        desc=f"analysing {folder.name}",
        disable=size < LARGE_LOG_BYTES,
        leave=False,
    ) as bar:

        def progress(step: str, read: int) -> None:
            bar.set_postfix_str(step)
            bar.update(read)

        return analyze(folder, window, checks, base_summary, progress, plots)


def _baseline(folder: Path, window: float) -> dict:
    from analysis.report import analyze

    try:
        return analyze(folder, window, checks=[]).summary
    except AnalysisError as exc:
        raise AnalysisError(f"--baseline: {exc}") from None


def one_screen(outcome) -> str:
    """one_screen is the console's summary of a run: the key numbers, the verdict, the files."""
    from analysis.report import key_numbers, verdict

    simulated = " (simulated)" if outcome.run.manifest.get("simulated") else ""
    lines = [f"{outcome.run.folder}{simulated}"]
    if outcome.run.skipped_lines:
        lines.append(f"  warning: {outcome.run.skipped_lines} unreadable log lines skipped")
    if outcome.run.foreign_files:
        count = len(outcome.run.foreign_files)
        lines.append(f"  warning: {count} record files of another run were not read")
    lines += [f"  {label:<44} {value}" for label, value in key_numbers(outcome.summary)]
    if explanation := outcome.summary.get("explanation_422"):
        lines.append(f"  what explains the 422s: {explanation}")
    banner = verdict(outcome.results, outcome.aborted, outcome.summary)
    lines.append(f"  {banner['text']}")
    lines += [f"    {line}" for line in banner["lines"]]
    lines.append(f"  report: {outcome.report}")
    return "\n".join(lines)


@click.command("compare")
@click.argument("base", type=click.Path(file_okay=False, path_type=Path))
@click.argument("candidate", type=click.Path(file_okay=False, path_type=Path))
@output_folder_option(
    "Folder for compare.html/.txt/.json and plots (default: CANDIDATE/compare-BASE)."
)
@thresholds_option('e.g. "p95_ms <= baseline * 1.1" (default: the scenario\'s).')
@check_option()
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="JUnit XML path.")
def compare_command(base, candidate, out, thresholds_file, checks, junit) -> None:
    """Compare a candidate run with a base run: deltas, better or worse, overlay plots.

    Exit codes: 0 every check met (or none set), 1 a check failed, 2 bad input.
    """
    from analysis.compare import compare

    out = out or candidate / f"compare-{base.name}"
    comparison = compare(base, candidate, out, _checks(thresholds_file, checks))
    if comparison.results:
        thresholds.write_junit(comparison.results, junit or out / "junit.xml", "compare")
    click.echo(comparison.text)
    click.echo(f"page: {comparison.page}")
    if not comparison.passed:
        raise SystemExit(1)


@click.command("history")
@click.argument("folders", nargs=-1, required=True, type=click.Path(path_type=Path))
@output_folder_option(
    "Folder for history.json, history.html and the plot.", Path("results/history")
)
@check_option(
    'Of the newest run, e.g. "p95_ms <= median * 1.1" (the median of up to 5 runs '
    'before it) or "share_429 == 0"; repeat for several.'
)
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="JUnit XML path.")
def history_command(folders, out, checks, junit) -> None:
    """Show runs' key numbers over time; judge the newest against the runs before it.

    Exit codes: 0 every check met (or none given), 1 the newest run regressed, 2 bad input.
    """
    from analysis.history import build_history, table

    history = build_history(list(folders), out, thresholds.parse(list(checks)))
    click.echo(table(history))
    for result in history.results:
        click.echo(f"  {'ok' if result.passed else 'FAILED'}: {result.message}")
    if history.results:
        thresholds.write_junit(history.results, junit or out / "junit.xml", "history")
    click.echo(f"page: {history.page}")
    if not history.passed:
        raise SystemExit(1)
