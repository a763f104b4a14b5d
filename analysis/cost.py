"""What a run cost, from its records and the prices its manifest holds (`costs`).

    summary["cost"] = cost(run, summary)   # None: the run was given no prices

A deployment on the cloud is billed its vCPU and memory for its match's length (the mean:
the records do not see a match end); a private host its price for the whole run, used or
idle; egress per player-hour of every served match. `per_day` scales the run's cost to 24
hours; `all_cloud` is the same deployments with every one on the cloud (no private hosts).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from analysis.load import Run

DAY_S = 86_400.0


def cost(run: Run, summary: dict) -> dict[str, Any] | None:
    """cost is summary.json's `cost` (None: no prices, or nothing was accepted)."""
    basis = run.manifest.get("costs")
    duration_s = summary.get("duration_s") or 0.0
    if not basis or not duration_s:
        return None
    accepted = summary.get("outcome_counts", {}).get("accepted", 0)
    placed = ((summary.get("placement") or {}).get("whole_run")) or {}
    private_deploys = placed.get("private", 0)
    cloud_deploys = accepted - private_deploys  # a deployment of unknown place: the cloud's
    hours_each = basis["match_s"] / 3600
    per_cloud_deploy = hours_each * (
        (basis["vcpu"] or 0) * basis["cloud_vcpu_hour"]
        + (basis["memory_gb"] or 0) * basis["cloud_gb_hour"]
    )
    player_hours = _players_served(run) * hours_each
    egress = player_hours * basis["egress_player_hour"]
    fleets = basis["private"]
    hourly = sum(f["hosts"] * (f["per_host_hour"] or 0) for f in fleets.values())
    private = hourly * duration_s / 3600
    cloud = cloud_deploys * per_cloud_deploy
    total = cloud + private + egress
    served = (summary.get("matches") or {}).get("served") or accepted
    return {
        "currency": basis["currency"],
        "note": basis["note"],
        "total": round(total, 4),
        "per_day": round(total * DAY_S / duration_s, 2),
        "per_match": round(total / served, 6) if served else None,
        "per_player_hour": round(total / player_hours, 6) if player_hours else None,
        "cloud": round(cloud, 4),
        "private": round(private, 4),
        "egress": round(egress, 4),
        "cloud_deployments": int(cloud_deploys),
        "private_deployments": int(private_deploys),
        "private_idle_share": _idle_share(run, fleets, private_deploys, hours_each, duration_s),
        "unpriced_fleets": sorted(n for n, f in fleets.items() if f["per_host_hour"] is None),
        "all_cloud_per_day": round((accepted * per_cloud_deploy + egress) * DAY_S / duration_s, 2),
    }


def _players_served(run: Run) -> int:
    requests = run.requests
    if "players" not in requests:  # a lean load: a party's size is not read
        return 0
    accepted = requests["outcome"].astype(object).eq("accepted")
    return int(requests.loc[accepted, "players"].fillna(0).sum())


def _idle_share(
    run: Run, fleets: dict, private_deploys: int, hours_each: float, duration_s: float
) -> float | None:
    """_idle_share is the private slots' share left unused: from the emulator's readings of
    each host's slots, else from the deployments placed there and their match length."""
    slots = sum(f["slots"] for f in fleets.values())
    if not slots:
        return None
    by_fleet: pd.DataFrame = run.fleets
    if not by_fleet.empty and len(by_fleet.columns) > 1:
        held = float(by_fleet.drop(columns=["t"]).fillna(0).sum(axis=1).mean())
    else:
        held = private_deploys * hours_each * 3600 / duration_s
    return round(max(0.0, 1 - held / slots), 4)
