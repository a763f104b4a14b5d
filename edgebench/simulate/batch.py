"""Parties in bulk: what PayloadPlan.party draws for each arrival, for thousands at once.

A simulated day is millions of matches, and drawing each party in Python costs more than
the platform's whole placement. Each stream's module owns its block form beside its
one-at-a-time form, tested equal there (edgebench.plan.draws, .schedule, .players,
.payloads; geo.centres). This module only combines them: a block of parties
(PayloadPlan.party_blocks), each population player located once by the emulator's own
users[] check, and the players' centres (geo.centres). The few parties whose first draws
name the same player twice, which the one-by-one loop draws again, and those whose
players cancel out are drawn one by one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson

from edgebench.plan.payloads import PayloadPlan
from edgebench.plan.players import PartyDraws
from emulator import locate_user
from geo import ANTIPODAL, Position, centre, centres

UNLOCATED = np.array([np.nan, np.nan, np.nan])


@dataclass(frozen=True, slots=True)
class DrawnParty:
    """DrawnParty is one arrival's party as the platform reads it."""

    endpoint: str
    region: str
    players: int
    kind: str  # "deploy", "cached" or "fleet"
    centre: Position | None  # None: no player could be located


class BatchParties:
    """BatchParties draws the parties of blocks of arrivals, exactly as PayloadPlan does."""

    def __init__(self, plan: PayloadPlan) -> None:
        self.plan = plan
        players = plan.players
        # Each region's players' unit vectors, filled as they are first drawn (inf: not yet).
        self._vectors = [np.full((players.population, 3), np.inf) for _ in players.regions]

    def parties(self, indices: np.ndarray, due_s: np.ndarray) -> list[DrawnParty]:
        """parties are the parties of arrivals `indices` due at run times `due_s`."""
        block = self.plan.party_blocks(indices, due_s)
        drawn = block.draws
        middles = self._centres(drawn)
        regions = self.plan.players.regions
        parties = []
        for row, index in enumerate(indices.tolist()):
            if drawn.redraw[row] or middles[row] is ANTIPODAL:
                parties.append(self.one(index, float(due_s[row])))
                continue
            name = regions[drawn.regions[row]].region.name
            size = int(drawn.sizes[row])
            party = DrawnParty(block.endpoints[row], name, size, block.kinds[row], middles[row])
            parties.append(party)
        return parties

    def one(self, index: int, due_s: float) -> DrawnParty:
        """one is a party drawn one by one (PayloadPlan.party), placed as the emulator does."""
        party = self.plan.party(index, due_s)
        located = (locate_user(orjson.loads(user)) for user in party.users)
        middle = centre([position for position in located if position is not None])
        return DrawnParty(party.endpoint, party.region, len(party.users), party.kind, middle)

    def _centres(self, drawn: PartyDraws) -> list:
        """_centres are the parties' centres, from their players' unit vectors."""
        width = drawn.slots.shape[1]
        unused = np.arange(width)[None, :] >= drawn.sizes[:, None]
        vectors = np.zeros((len(drawn.regions), width, 3))
        for number, table in enumerate(self._vectors):
            rows = drawn.regions == number
            if not rows.any():
                continue
            wanted = drawn.slots[rows]
            self._locate(number, np.unique(wanted[~unused[rows]]))
            vectors[rows] = table[wanted]
        vectors[unused] = np.nan
        return centres(vectors)

    def _locate(self, number: int, slots: np.ndarray) -> None:
        """_locate fills in the unit vectors of the region's players not seen yet."""
        table = self._vectors[number]
        region = self.plan.players.regions[number]
        for slot in slots[np.isinf(table[slots, 0])].tolist():
            position = locate_user(orjson.loads(region.player(slot)))
            table[slot] = UNLOCATED if position is None else position.unit_vector()
