"""The run's curves as PNG and SVG (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: runs on machines without a display

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib import ticker

from analysis.windows import OUTCOME_ORDER

COLOURS = {
    "accepted": "#2e7d32",
    "allocation_failure": "#ef6c00",
    "rate_limited": "#c62828",
    "dropped": "#6d4c41",
    "backoff": "#9e9e9e",
}


def save(figure, folder: Path, name: str) -> list[Path]:
    paths = [folder / f"{name}.png", folder / f"{name}.svg"]
    for path in paths:
        figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return paths


def throughput_plot(series: pd.DataFrame, limit: float | None, folder: Path) -> list[Path]:
    """throughput_plot stacks each second's starts by outcome, with offered and the limit."""
    figure, axes = plt.subplots(figsize=(10, 4.5))
    outcomes = [o for o in OUTCOME_ORDER if o in series]
    axes.stackplot(
        series["t_s"],
        [series[o] for o in outcomes],
        labels=[o.replace("_", " ") for o in outcomes],
        colors=[COLOURS.get(o, "#5c6bc0") for o in outcomes],
        alpha=0.85,
    )
    axes.plot(series["t_s"], series["offered_per_s"], color="black", linewidth=1, label="offered")
    if limit:
        axes.axhline(
            limit, color="#c62828", linestyle="--", linewidth=1, label=f"limit {limit:g}/s"
        )
    axes.set(
        title="Throughput by outcome", xlabel="time since first start (s)", ylabel="requests/s"
    )
    axes.legend(loc="upper left", fontsize="small")
    return save(figure, folder, "throughput")


def latency_plot(series: pd.DataFrame, folder: Path) -> list[Path]:
    """latency_plot draws per-window p50/p95/p99, from the send and from the schedule."""
    figure, axes = plt.subplots(figsize=(10, 4.5))
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
    axes.yaxis.set_major_formatter(ticker.ScalarFormatter())
    axes.legend(loc="upper left", fontsize="small", ncol=2)
    return save(figure, folder, "latency")
