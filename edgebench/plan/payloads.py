"""Request bodies: what arrival k of a scenario sends, the same on every run and worker.

plan = PayloadPlan(scenario, webhook_base="http://127.0.0.1:8089")
request = plan.request(k)   # request.endpoint, request.json (bytes), request.region, ...

A body is assembled as bytes: the parts every request of a run shares are
serialised once, and the party's players come as JSON from their region's
population (edgebench.plan.players), so a request costs a few hash draws and a join.

party_blocks() is party() for thousands of arrivals at once, with numpy (the simulator):
the same draws, regions, sizes, players and kinds (tested equal).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from edgebench.plan.draws import hash64_array, unit_draws, unit_draws_matrix, unit_hash
from edgebench.plan.players import PartyDraws, PlayerFactory

if TYPE_CHECKING:
    import numpy as np

    from edgebench.plan._schema import Scenario

PREVIEW_WEBHOOK_BASE = "http://127.0.0.1:<port>"
PREVIEW_RUN_TAG = "edgebench-<run>"
DEPLOY = "POST /v2/deployments"
FLEET_DEPLOY = "POST /v2/private-fleets/deployments"
PATHS = {DEPLOY: "/v2/deployments", FLEET_DEPLOY: "/v2/private-fleets/deployments"}


class PlannedRequest(NamedTuple):
    """PlannedRequest is one arrival's endpoint and body, and what the records say of it."""

    index: int  # type: ignore[assignment]  # the field shadows tuple.index, which none calls
    endpoint: str
    json: bytes
    region: str
    players: int

    @property
    def path(self) -> str:
        return PATHS[self.endpoint]

    @property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = orjson.loads(self.json)
        return body


class Party(NamedTuple):
    """Party is a request before it is joined: its players' `users[]` items, and its kind."""

    endpoint: str
    region: str
    users: list[bytes]
    kind: str  # which tail closes the body: "deploy", "cached", "fleet" or "fleet:REGION"


class PartyBlock(NamedTuple):
    """PartyBlock is party() of many arrivals: their endpoints, draws and kinds, row by row."""

    endpoints: list[str]
    draws: PartyDraws  # draws.redraw: rows to take one by one with party()
    kinds: list[str]


class PayloadPlan:
    """PayloadPlan draws arrival k's request from a random stream seeded by (seed, k)."""

    def __init__(
        self, scenario: Scenario, webhook_base: str | None = None, run_tag: str | None = None
    ) -> None:
        self.scenario = scenario
        self.players = PlayerFactory(scenario)
        forecast = scenario.demand and scenario.demand.region_ccu
        self._region_weights = RegionWeights(scenario, self.players) if forecast else None
        self._fleet_share = scenario.mix.shares[1]
        self._cached_share = scenario.requests.require_cached_share
        target = scenario.target
        head = orjson.dumps({"application": target.application, "version": target.version})
        self._head = head[:-1] + b',"users":['
        shared = self._shared_fields(webhook_base, run_tag)
        self._tails = {
            "deploy": _tail(shared),
            "cached": _tail({"require_cached_locations": True} | shared),
            "fleet": _tail({"private_host_ids": scenario.mix.private_host_ids} | shared),
        }
        # A region with its own private hosts: its fleet deploys name them ("fleet:REGION");
        # a region with none (and no mix's hosts) deploys to the cloud directly (None).
        bare = None if not scenario.mix.private_host_ids else "fleet"
        self._fleet_kinds: dict[str, str | None] = {r.name: bare for r in scenario.regions}
        for region in scenario.regions:
            if region.hosts:
                kind = self._fleet_kinds[region.name] = f"fleet:{region.name}"
                self._tails[kind] = _tail({"private_host_ids": region.hosts} | shared)

    def _shared_fields(self, webhook_base: str | None, run_tag: str | None) -> dict[str, Any]:
        requests = self.scenario.requests
        fields: dict[str, Any] = {}
        if requests.environment_variables:
            fields["environment_variables"] = [
                variable.model_dump() for variable in requests.environment_variables
            ]
        tags = [*requests.tags, *([run_tag] if run_tag else [])]
        if tags:
            fields["tags"] = tags
        if requests.webhooks and webhook_base:
            path = f"{webhook_base}/{run_tag or 'edgebench'}"
            for event in ("ready", "error", "terminated"):
                fields[f"webhook_on_{event}"] = {"url": f"{path}/{event}"}
        return fields

    def endpoint(self, index: int) -> str:
        """endpoint is where arrival index goes, by the mix; cheap, as unsent starts need it."""
        if self.scenario.replay:
            return FLEET_DEPLOY if self.scenario.replay[index].fleet else DEPLOY
        if self._fleet_share in (0.0, 1.0):
            return FLEET_DEPLOY if self._fleet_share else DEPLOY
        return FLEET_DEPLOY if unit_hash(self.scenario.seed, index) < self._fleet_share else DEPLOY

    def request(self, index: int, due_s: float = 0.0) -> PlannedRequest:
        """request is arrival index's request; due_s (run time) matters to a forecast's regions."""
        if self.scenario.replay:
            return self._replayed(index)
        party = self.party(index, due_s)
        return PlannedRequest(
            index, party.endpoint, self.body(party), party.region, len(party.users)
        )

    def body(self, party: Party) -> bytes:
        """body is the JSON a party is sent as."""
        return self._head + b",".join(party.users) + self._tails[party.kind]

    def party(self, index: int, due_s: float = 0.0) -> Party:
        """party is what arrival index's body is made of (not for a replay: its log has it).

        The simulator reads it as is; request() joins it into the body a run sends.
        """
        endpoint = self.endpoint(index)
        draw = unit_draws(self.scenario.seed, index).__next__
        weights = self._region_weights.at(due_s) if self._region_weights else None
        region, users = self.players.party(draw, weights)
        fleet = self._fleet_kinds[region] if endpoint == FLEET_DEPLOY else None
        if fleet:
            kind = fleet
        elif self._cached_share and draw() < self._cached_share:
            kind, endpoint = "cached", DEPLOY
        else:
            kind, endpoint = "deploy", DEPLOY
        return Party(endpoint, region, users, kind)

    def party_blocks(self, indices: np.ndarray, due_s: np.ndarray) -> PartyBlock:
        """party_blocks is party() of arrivals `indices` due at run times `due_s` (not a
        replay's), drawn all at once; the rows in draws.redraw are to be drawn with party()."""
        import numpy as np

        extra = 1  # after the players' slots: whether the body asks for cached locations
        draws = unit_draws_matrix(
            self.scenario.seed, indices, 2 + self.players.most_players + extra
        )
        weights = self._region_weights.at_many(due_s) if self._region_weights else None
        drawn = self.players.party_draws(draws, weights)
        endpoints = self.endpoints(indices)
        cached = draws[np.arange(len(indices)), 2 + drawn.sizes] < self._cached_share
        fleets = [self._fleet_kinds[each.region.name] for each in self.players.regions]
        kinds = [
            (endpoint == FLEET_DEPLOY and fleets[region]) or ("cached" if ask else "deploy")
            for endpoint, ask, region in zip(
                endpoints, cached.tolist(), drawn.regions.tolist(), strict=True
            )
        ]
        endpoints = [DEPLOY if kind in ("cached", "deploy") else FLEET_DEPLOY for kind in kinds]
        return PartyBlock(endpoints, drawn, kinds)

    def endpoints(self, indices: np.ndarray) -> list[str]:
        """endpoints is endpoint() of many arrivals (not a replay's)."""
        share = self._fleet_share
        if share in (0.0, 1.0):
            return [FLEET_DEPLOY if share else DEPLOY] * len(indices)
        hashes = hash64_array(self.scenario.seed, indices).astype(float) / 2.0**64
        return [FLEET_DEPLOY if fleet else DEPLOY for fleet in (hashes < share).tolist()]

    def _replayed(self, index: int) -> PlannedRequest:
        """_replayed is a logged match's request: its own players, region and endpoint."""
        match = self.scenario.replay[index]
        endpoint = FLEET_DEPLOY if match.fleet else DEPLOY
        tail = self._tails["fleet" if match.fleet else "deploy"]
        body = self._head + match.users + tail
        return PlannedRequest(index, endpoint, body, match.region, match.players)


class RegionWeights:
    """RegionWeights are the regions' cumulative weights at a run time, from a forecast's
    per-region columns (each region's share of the match starts then): at() one arrival's,
    at_many() a block's, by the same operations."""

    def __init__(self, scenario: Scenario, players: PlayerFactory) -> None:
        import numpy as np

        from edgebench.plan.forecast import Forecast

        self._forecast = Forecast.of(scenario)
        names = [region.name for region in scenario.regions]
        # Each cell's cumulative weights, once: an arrival only looks its cell's row up.
        table = np.cumsum(self._forecast.share_table(names), axis=1)
        table[table[:, -1] <= 0] = players.region_weights  # the regions' own: no start then
        self._table = table
        self._rows = table.tolist()

    def at(self, due_s: float) -> list[float]:
        import numpy as np

        row: list[float] = self._rows[int(self._forecast.share_rows(np.array([due_s]))[0])]
        return row

    def at_many(self, due_s: np.ndarray) -> np.ndarray:
        """at_many is each arrival's row of cumulative weights (the regions' own where the
        forecast starts no match)."""
        rows: np.ndarray = self._table[self._forecast.share_rows(due_s)]
        return rows


def _tail(fields: dict[str, Any]) -> bytes:
    """_tail closes the users list and the body with the given fields."""
    return b"]" + (b"," + orjson.dumps(fields)[1:] if fields else b"}")


def preview(scenario: Scenario, count: int) -> Iterator[tuple[float, PlannedRequest]]:
    """preview is (due_s, request) of a run's first count arrivals, as a run would send them.

    The run tag and the webhook receiver's address are known only once a run starts: the
    bodies carry the placeholders `edgebench-<run>` and `http://127.0.0.1:<port>`.
    `edgebench scenario sample` and `edgebench run --dry-run` both show these.
    """
    from edgebench.plan.schedule import Schedule

    plan = PayloadPlan(scenario, webhook_base=PREVIEW_WEBHOOK_BASE, run_tag=PREVIEW_RUN_TAG)
    arrivals = Schedule.from_scenario(scenario).arrivals()
    for arrival, _ in zip(arrivals, range(count), strict=False):
        yield arrival.due_s, plan.request(arrival.index, arrival.due_s)
