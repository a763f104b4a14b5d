"""Replaying a match log: each match of a real (or recorded) matchmaker becomes one arrival.

A log has one match a line, in time order:

    JSON lines: {"t": 12.5, "players": ["200.147.67.142", [45.5, -73.6]], "region": "na",
                 "fleet": false}
    CSV:        t,players,region,fleet
                12.5,"200.147.67.142;45.5,-73.6",na,false

`t` is seconds, a duration ("2m") or ISO 8601 (counted from the first match); a player
is an IP address, or a position as [lat, lon] (JSON) or "lat,lon"; `region` (default
"replay") and `fleet` (default false: a fleet deploy when true) are optional. Every
problem names the file, the line and the field.
"""

from __future__ import annotations

import csv
import ipaddress
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from edgebench._errors import ScenarioError

DEFAULT_REGION = "replay"
MAX_PLAYERS = 100


class ReplayMatch(NamedTuple):
    """ReplayMatch is one line of a match log: when, whose players (as JSON), where from."""

    t_s: float  # since the log's first match, at real speed
    users: bytes  # the players as the body's users, JSON objects joined by commas
    players: int
    region: str
    fleet: bool


def read_replay(path: Path) -> list[ReplayMatch]:
    """read_replay reads a match log (.jsonl or .csv); ScenarioError names file, line, field."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([f"{path}: cannot read it ({exc}); give a match log"]) from None
    rows = _csv_rows(text) if path.suffix == ".csv" else _json_rows(path, text)
    matches, origin, last = [], None, None
    for line, row in rows:
        match, origin = _match(path, line, row, origin)
        if last is not None and match.t_s < last:
            raise ScenarioError([f"{path}: line {line}: t: before the line above; sort the log"])
        last = match.t_s
        matches.append(match)
    if not matches:
        raise ScenarioError([f"{path}: no matches; write one match a line"])
    return matches


Row = dict[str, Any]


def _json_rows(path: Path, text: str) -> Iterator[tuple[int, Row]]:
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ScenarioError([f"{path}: line {line}: not JSON ({exc}); fix the line"]) from None
        if not isinstance(row, dict):
            raise ScenarioError([f'{path}: line {line}: not an object; write {{"t", ...}}'])
        yield line, row


def _csv_rows(text: str) -> Iterator[tuple[int, Row]]:
    reader = csv.DictReader(text.splitlines())
    for line, row in enumerate(reader, start=2):
        players = [p.strip() for p in (row.get("players") or "").split(";") if p.strip()]
        fleet = (row.get("fleet") or "").strip().lower()
        yield line, row | {"players": players, "fleet": fleet in ("true", "1", "yes")}


def _match(
    path: Path, line: int, row: Row, origin: datetime | None
) -> tuple[ReplayMatch, datetime | None]:
    from edgebench.plan.times import parse_time

    where = f"{path}: line {line}"
    try:
        t, origin = parse_time(row.get("t"), origin)
    except (ValueError, TypeError):
        raise ScenarioError(
            [f"{where}: t: {row.get('t')!r} is not a time; write seconds, 2m or ISO 8601"]
        ) from None
    players = row.get("players")
    if not isinstance(players, list) or not 1 <= len(players) <= MAX_PLAYERS:
        raise ScenarioError([f"{where}: players: give 1 to {MAX_PLAYERS} players"])
    users = [_user(where, k, player) for k, player in enumerate(players)]
    region = row.get("region") or DEFAULT_REGION
    fleet = row.get("fleet", False)
    if not isinstance(fleet, bool) or not isinstance(region, str):
        raise ScenarioError([f"{where}: region or fleet: a text and true/false; fix the line"])
    return ReplayMatch(t, b",".join(users), len(users), region, fleet), origin


def _user(where: str, k: int, player: object) -> bytes:
    """_user is one player as the body's user: an IP address, or coordinates."""
    if isinstance(player, str) and "," not in player:
        try:
            ipaddress.ip_address(player)
        except ValueError:
            raise ScenarioError(
                [f"{where}: players[{k}]: {player!r} is not an IP address or lat,lon"]
            ) from None
        return orjson.dumps({"user_type": "ip_address", "user_data": {"ip_address": player}})
    try:
        parts = player.split(",") if isinstance(player, str) else player
        latitude, longitude = (float(part) for part in parts)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise ScenarioError(
            [f"{where}: players[{k}]: {player!r} is not an IP address or lat,lon"]
        ) from None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise ScenarioError([f"{where}: players[{k}]: {player!r} is off the globe"])
    position = {"latitude": latitude, "longitude": longitude}
    return orjson.dumps({"user_type": "geo_coordinates", "user_data": position})
