"""`python -m analysis RUN_DIR [RUN_DIR ...]`: writes summary.json and plots, prints the numbers."""

from __future__ import annotations

import sys

import orjson

from analysis import plots, windows
from analysis.load import AnalysisError, load_run
from analysis.metrics import summarize


def main(folders: list[str]) -> int:
    if not folders:
        print("usage: python -m analysis RUN_DIR [RUN_DIR ...]", file=sys.stderr)
        return 2
    for folder in folders:
        try:
            run = load_run(folder)
        except AnalysisError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 2
        summary = summarize(run)
        (run.folder / "summary.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
        write_plots(run)
        print(one_screen(run.folder, summary))
    return 0


def write_plots(run) -> None:
    """write_plots draws throughput and latency over time beside the logs."""
    if run.requests.empty:
        return
    limit = (run.manifest.get("scenario") or {}).get("limit")
    plots.throughput_plot(windows.throughput(run.requests), limit, run.folder)
    plots.latency_plot(windows.latency(run.requests), run.folder)


def one_screen(folder, summary: dict) -> str:
    if summary["requests_total"] == 0:
        return f"{folder}: no requests recorded (an empty run); wrote summary.json"
    latency = summary["latency_ms"]["from_send"]
    shares = ", ".join(f"{k} {v:.1%}" for k, v in summary["outcome_shares"].items())
    return (
        f"{folder}: {summary['requests_total']} starts, offered {summary['offered_rate_per_s']}/s, "
        f"accepted {summary['accepted_rate_per_s']}/s; {shares}; latency p50 {latency['p50']} ms, "
        f"p95 {latency['p95']} ms; wrote summary.json"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
