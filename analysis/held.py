"""The platform's servers against the forecast's matches in progress (s x CCU / p).

A forecast's run should hold as many servers as the forecast has matches in progress, once
its starts are the renewal equation's (edgebench.plan.renewal): the report draws both over
time and names the largest gap after the first match length (before it a cold start is
still filling up). The manifest's `forecast` holds the forecast's side; the emulator's
readings the platform's. Per region the readings are by city, so each city's servers are
split among the regions by where the run placed each region's matches (exact where the
regions' players are served in cities of their own; an estimate where they share cities).

    frame = held_over_time(run)       # t_s, then held_<name> and forecast_<name> per name
    summary = held_vs_forecast(frame, run)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.load import Run
from checks.outcomes import ACCEPTED


def held_over_time(run: Run) -> pd.DataFrame:
    """held_over_time is, at each emulator reading (run time t_s), the servers held and the
    forecast's matches in progress, in all and per region (empty: no forecast or readings)."""
    forecast = run.manifest.get("forecast")
    readings = run.emulator.dropna(subset=["holding_capacity"]).sort_values("t")
    if not forecast or readings.empty:
        return pd.DataFrame()
    start = _run_start(run)
    t_s = readings["t"].to_numpy() - start
    frame = pd.DataFrame({"t_s": t_s, "held_all": readings["holding_capacity"].to_numpy()})
    times = np.asarray(forecast["t_s"], dtype=float)
    for name, values in forecast["matches"].items():
        frame[f"forecast_{name}"] = np.interp(t_s, times, np.asarray(values, dtype=float))
    regions = [name for name in forecast["matches"] if name != "all"]
    if regions and not run.locations.empty:
        by_region = _held_by_region(run, regions, readings["t"].to_numpy())
        for name in regions:
            frame[f"held_{name}"] = by_region[name]
    return frame


def held_vs_forecast(frame: pd.DataFrame, run: Run) -> dict | None:
    """held_vs_forecast is summary.json's `held_vs_forecast`: per name (all, each region)
    the largest gap between the servers held and the forecast's matches, after the first
    mean match length; None without a forecast, readings, or a run longer than that."""
    forecast = run.manifest.get("forecast")
    if frame.empty or not forecast:
        return None
    after = float(forecast.get("match_length_mean_s") or 0.0)
    later = frame[frame["t_s"] >= after]
    if later.empty:
        return None
    gaps: dict = {"after_s": round(after, 1)}
    for column in [c for c in later if c.startswith("held_")]:
        name = column.removeprefix("held_")
        gap = later[column] - later[f"forecast_{name}"]
        at = int(np.argmax(np.abs(gap.to_numpy())))
        wanted = float(later[f"forecast_{name}"].iloc[at])
        gaps[name] = {
            "largest_gap": round(float(gap.iloc[at]), 1),
            "largest_gap_share": round(float(gap.iloc[at]) / wanted, 4) if wanted > 0 else None,
            "at_s": round(float(later["t_s"].iloc[at]), 1),
            "forecast_then": round(wanted, 1),
            "estimated": name != "all",  # a region's: split from the cities' readings
        }
    return gaps


def _run_start(run: Run) -> float:
    """_run_start is the run's time 0 as unix time: the manifest's epoch, else the first start."""
    epoch = run.manifest.get("epoch")
    if epoch is not None:
        return float(epoch)
    return float(run.requests["t_sched"].min()) if len(run.requests) else 0.0


def _held_by_region(run: Run, regions: list[str], times: np.ndarray) -> dict[str, np.ndarray]:
    """_held_by_region splits each city's servers at the readings' times among the regions,
    by the shares of the run's accepted matches each region placed there."""
    placed = run.requests[run.requests["outcome"] == ACCEPTED].dropna(subset=["location"])
    table = pd.crosstab(placed["location"].astype(str), placed["region"].astype(str))
    table = table.reindex(columns=regions, fill_value=0)
    overall = table.sum(axis=0)
    fallback = overall / overall.sum() if overall.sum() else pd.Series(1 / len(regions), regions)
    shares = table.div(table.sum(axis=1), axis=0)
    cities = run.locations.set_index("t").reindex(times, method="ffill").fillna(0)
    held = {name: np.zeros(len(times)) for name in regions}
    for city in cities.columns:
        split = shares.loc[city] if city in shares.index else fallback
        column = cities[city].to_numpy(dtype=float)
        for name in regions:
            held[name] += column * float(split[name])
    return held
