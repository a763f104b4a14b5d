"""Request bodies: what arrival k of a scenario sends, the same on every run and worker.

plan = PayloadPlan(scenario, webhook_base="http://127.0.0.1:8089")
request = plan.request(k)   # request.endpoint, request.body, request.region, request.players
"""

from __future__ import annotations

import random
from typing import NamedTuple

from edgebench.players import PlayerFactory

DEPLOY = "POST /v2/deployments"
FLEET_DEPLOY = "POST /v2/private-fleets/deployments"
_MASK64 = 2**64 - 1
PATHS = {DEPLOY: "/v2/deployments", FLEET_DEPLOY: "/v2/private-fleets/deployments"}


class PlannedRequest(NamedTuple):
    """PlannedRequest is one arrival's endpoint and body, and what the records say of it."""

    index: int
    endpoint: str
    body: dict
    region: str
    players: int

    @property
    def path(self) -> str:
        return PATHS[self.endpoint]


class PayloadPlan:
    """PayloadPlan draws arrival k's request from a random source seeded by (seed, k)."""

    def __init__(self, scenario, webhook_base: str | None = None, run_tag: str | None = None):
        self.scenario = scenario
        self.players = PlayerFactory(scenario)
        self._fleet_share = scenario.mix.shares[1]
        self._tags = [*scenario.requests.tags, *([run_tag] if run_tag else [])]
        self._webhooks = webhook_base if scenario.requests.webhooks else None
        self._run_tag = run_tag or "edgebench"
        self._variables = [v.model_dump() for v in scenario.requests.environment_variables]

    def rng(self, index: int) -> random.Random:
        # An integer seed per arrival: reproducible whatever the split across workers.
        return random.Random(self.scenario.seed * 1_000_003 + index)

    def endpoint(self, index: int) -> str:
        """endpoint is where arrival index goes, by the mix; cheap, as unsent starts need it."""
        if self._fleet_share in (0.0, 1.0):
            return FLEET_DEPLOY if self._fleet_share else DEPLOY
        return FLEET_DEPLOY if unit_hash(self.scenario.seed, index) < self._fleet_share else DEPLOY

    def request(self, index: int) -> PlannedRequest:
        endpoint, rng = self.endpoint(index), self.rng(index)
        region, users = self.players.party(rng)
        body = self._body(users, rng, endpoint == FLEET_DEPLOY)
        return PlannedRequest(index, endpoint, body, region, len(users))

    def _body(self, users: list[dict], rng: random.Random, fleet: bool) -> dict:
        target, requests = self.scenario.target, self.scenario.requests
        body: dict = {"application": target.application, "version": target.version, "users": users}
        if fleet:
            body["private_host_ids"] = list(self.scenario.mix.private_host_ids)
        elif requests.require_cached_share and rng.random() < requests.require_cached_share:
            body["require_cached_locations"] = True
        if self._variables:
            body["environment_variables"] = self._variables
        if self._tags:
            body["tags"] = list(self._tags)
        if self._webhooks:
            body |= {
                f"webhook_on_{event}": {"url": f"{self._webhooks}/{self._run_tag}/{event}"}
                for event in ("ready", "error", "terminated")
            }
        return body


def unit_hash(seed: int, index: int) -> float:
    """unit_hash maps (seed, index) to [0, 1) evenly (splitmix64's finaliser).

    >>> unit_hash(1, 2) == unit_hash(1, 2) != unit_hash(1, 3)
    True
    """
    z = (seed * 0x9E3779B97F4A7C15 + (index + 1) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) / 2**64
