"""Every fleet size from one simulation: a fleet deploy tries its hosts in order, then the
cloud (emulator Platform._place), so hosts 1..N carry the same deployments whatever comes
after host N (ordered hunting; the argument of Mattson's stack algorithm for cache sizes).
One simulation with enough hosts in each fleet therefore answers every host count at once:
a deploy that landed on host j > N is one the cloud takes with N hosts.

    pass_ = OnePass.read(folder)              # a simulation's fleet-placements.npz
    curve = pass_.curve(["fra-1", ..., "fra-120"])
    curve.overflow[40], curve.overflow_by_origin["europe"][40], curve.cloud_s[40]

Exact (the same deployments, to the one) as a simulation at N with the same seed, since a
deployment's draws do not depend on where it lands, as long as the cloud never runs out
(a 422 retried would move later arrivals) and every deploy found a host among the N_max
(`reached_last` says when one did not: simulate with more). The cloud's server-seconds
assume each overflowing deployment boots at its nearest location, as an unlimited cloud
places it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from checks.records import PLACEMENTS_FILE

PASS_TRIES = 3  # simulations of the pass, more hosts each, while a deploy reached the last


def pass_hosts(start: float) -> int:
    """pass_hosts is a fleet's host count for its one pass: twice its start and some, so no
    deploy reaches its last host (where one does, the pass is simulated again, doubled)."""
    return max(2 * int(start) + 4, 8)


@dataclass(frozen=True)
class FleetCurve:
    """FleetCurve is a host list's figures for every host count N = 0 .. most (index N)."""

    host_ids: tuple[str, ...]
    deploys: int  # the fleet deploys that named these hosts
    deploys_by_origin: dict[str, int]
    overflow: np.ndarray  # deploys the cloud takes with N hosts
    overflow_by_origin: dict[str, np.ndarray]
    placed: np.ndarray  # deployments each host took (host j at index j - 1): any N >= j
    private_s: np.ndarray  # the N hosts' server-seconds held
    cloud_s: np.ndarray  # the cloud's server-seconds of the overflow
    reached_last: bool  # a deploy took the last host: a bigger N might still move figures

    @property
    def most(self) -> int:
        return len(self.host_ids)

    def overflow_share(self, origin: str | None = None) -> np.ndarray:
        """overflow_share is the share of the fleet's deploys (of an origin's) the cloud
        takes, for each N."""
        if origin is None:
            return self.overflow / max(self.deploys, 1)
        return self.overflow_by_origin[origin] / max(self.deploys_by_origin[origin], 1)


@dataclass(frozen=True)
class OnePass:
    """OnePass is a simulation's fleet deploys, where each went, and its draws."""

    lists: list[tuple[str, ...]]
    origins: list[str]
    columns: dict[str, np.ndarray]

    @classmethod
    def read(cls, folder: Path) -> OnePass:
        with np.load(folder / PLACEMENTS_FILE) as saved:
            names = orjson.loads(saved["names"].tobytes())
            columns = {key: saved[key] for key in saved.files if key != "names"}
        return cls([tuple(ids) for ids in names["lists"]], names["origins"], columns)

    def curve(self, host_ids: list[str] | tuple[str, ...]) -> FleetCurve:
        """curve is the figures of the deploys that named exactly these hosts."""
        host_ids = tuple(host_ids)
        pool = self.lists.index(host_ids) if host_ids in self.lists else -1  # -1: none did
        rows = self.columns["pool"] == pool
        place = self.columns["place"][rows].astype(np.int64)
        most = len(host_ids)
        cloud_place = most + 1  # the cloud: after every host
        place = np.where(place == 0, cloud_place, place)
        private_hold = self.columns["cached_boot_s"][rows] + self.columns["lifetime_s"][rows]
        cloud_boot = np.where(
            self.columns["cloud_cached"][rows].astype(bool),
            self.columns["cached_boot_s"][rows],
            self.columns["boot_s"][rows],
        )
        cloud_hold = cloud_boot + self.columns["lifetime_s"][rows]
        by_place = np.bincount(place, minlength=cloud_place + 1)  # index: the place
        placed_at_most = np.cumsum(by_place)  # [N]: deploys on hosts 1..N
        overflow = len(place) - placed_at_most[: most + 1]
        private_s = np.cumsum(np.bincount(place, private_hold, cloud_place + 1))[: most + 1]
        cloud_total = np.cumsum(np.bincount(place, cloud_hold, cloud_place + 1)[::-1])[::-1]
        origin = self.columns["origin"][rows]
        by_origin, overflow_by_origin = {}, {}
        for index, name in enumerate(self.origins):
            mine = place[origin == index]
            if len(mine):
                counts = np.cumsum(np.bincount(mine, minlength=cloud_place + 1))
                by_origin[name] = len(mine)
                overflow_by_origin[name] = len(mine) - counts[: most + 1]
        return FleetCurve(
            host_ids,
            len(place),
            by_origin,
            overflow,
            overflow_by_origin,
            by_place[1 : most + 1],
            private_s,
            cloud_total[1 : most + 2],  # [N]: the deploys on places N+1 .. the cloud
            bool(by_place[most]),
        )


@dataclass(frozen=True)
class Sizing:
    """Sizing is every host count's figures of the varied fleets (fleet -> its curve), from
    one simulation: its summary (the fleets at `big`) with the figures that depend on
    placement worked out at other counts, as analysis.metrics and analysis.cost work them."""

    curves: dict[str, FleetCurve]
    big: dict[str, int]
    summary: dict
    basis: dict | None  # the manifest's costs (None: unpriced)

    @classmethod
    def of_probe(cls, folder: Path, big: dict[str, int]) -> Sizing:
        """of_probe is the one pass of a probe's folder (its placements, world, summary and
        prices): each fleet of `big` (its simulated host count) a curve over its hosts."""
        from emulator import load_world

        placed = OnePass.read(folder)
        world = load_world(folder / "world.toml")  # the probe's: its fleets' hosts in order
        curves = {fleet: placed.curve(world.fleet_hosts(fleet)) for fleet in big}
        summary = orjson.loads((folder / "summary.json").read_bytes())
        basis = orjson.loads((folder / "manifest.json").read_bytes()).get("costs")
        return cls(curves, big, summary, basis)

    @functools.cached_property
    def _metrics(self) -> dict[str, float | None]:
        """_metrics are the summary's checks' figures, worked out once (every count reads
        them: thousands of counts on a big day)."""
        from analysis.thresholds import metrics

        return metrics(self.summary)

    def figures(self, hosts: dict[str, int]) -> dict[str, float | None]:
        """figures are the checks' metrics at these host counts: the fleets' overflow share,
        each region's, and the cost a day; the others as the simulation had them."""
        values = dict(self._metrics)
        moved = {
            fleet: int(curve.overflow[hosts[fleet]]) - int(curve.overflow[self.big[fleet]])
            for fleet, curve in self.curves.items()
        }
        fleet = self.summary.get("fleet") or {}
        known = fleet.get("placed_private", 0) + fleet.get("placed_cloud", 0)
        if known:
            values["share_overflow"] = round(
                (fleet["placed_cloud"] + sum(moved.values())) / known, 6
            )
        regions = (self.summary.get("placement") or {}).get("by_region") or {}
        for name, curve in self.curves.items():
            for origin, overflow in curve.overflow_by_origin.items():
                deploys = (regions.get(origin) or {}).get("fleet_deploys")
                if deploys:
                    values[f"share_overflow:{origin}"] = round(
                        int(overflow[hosts[name]]) / deploys, 6
                    )
        if self.basis and (cost := self.summary.get("cost")):
            values["cost_per_day"] = self._per_day(cost, hosts, sum(moved.values()))
        return values

    @property
    def inexact(self) -> str | None:
        """inexact says why the pass's figures at other counts are estimates (None: they are
        a separate simulation's): the cloud refused deploys (422s), which a client may retry."""
        refused = (self.summary.get("allocation_failure_causes") or {}).get("no_capacity", 0)
        if refused:
            return (
                f"the cloud refused {refused:,} deploys for no room (422s): with fewer hosts it "
                "would refuse more, and retries would move later arrivals; the one pass's "
                "figures are estimates there, the confirming simulation decides"
            )
        return None

    def count_for(
        self, checks: list, fleet: str, chosen: dict[str, int], cheap: bool
    ) -> int | None:
        """count_for is the fleet's least host count meeting the checks on placement
        (overflow shares, cost; cheap: the cheapest such over the whole range), the other
        fleets at their counts (None: no count up to the simulated one)."""
        from analysis.thresholds import evaluate

        placed = [c for c in checks if c.metric.startswith(("share_overflow", "cost_"))]
        passing = []
        for count in range(1, self.big[fleet] + 1):
            figures = self.figures(chosen | {fleet: count})
            if all(result.passed for result in evaluate(placed, figures)):
                passing.append((figures.get("cost_per_day") or 0.0, count))
        if not passing:
            return None
        return min(passing)[1] if cheap else min(count for _, count in passing)

    def _per_day(self, cost: dict, hosts: dict[str, int], moved: int) -> float:
        """_per_day is analysis.cost's cost a day with the cloud taking `moved` more
        deployments and each varied fleet its host count."""
        basis = self.basis or {}
        per_cloud = (basis["match_s"] / 3600) * (
            (basis.get("vcpu") or 0) * basis["cloud_vcpu_hour"]
            + (basis.get("memory_gb") or 0) * basis["cloud_gb_hour"]
        )
        duration_s = self.summary["duration_s"]
        counts = {name: fleet["hosts"] for name, fleet in (basis.get("private") or {}).items()}
        counts |= {fleet: hosts[fleet] for fleet in self.curves}
        hourly = sum(
            n * ((basis["private"].get(f) or {}).get("per_host_hour") or 0)
            for f, n in counts.items()
        )
        cloud = (cost["cloud_deployments"] + moved) * per_cloud
        total = cloud + hourly * duration_s / 3600 + cost["egress"]
        return round(total * 86_400.0 / duration_s, 2)
