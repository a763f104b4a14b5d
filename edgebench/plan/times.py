"""Times as scenario files and forecasts write them: a duration ("1h30m", 90) or a forecast's
time (a duration, or ISO 8601 counted from the first ISO time). Pure: every room of the
plan reads times through these two.
"""

from __future__ import annotations

import re
from datetime import datetime

_DURATION = re.compile(
    r"^\s*(-)?\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$"
)


def parse_duration(value: object) -> float:
    """parse_duration reads seconds from a number or a text like "90s", "2m", "1h30m".

    >>> parse_duration("1m30s"), parse_duration(45)
    (90.0, 45.0)
    """
    if isinstance(value, bool):
        raise ValueError('must be a duration such as 30 or "30s", "2m", "1h30m"')
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match or not any(match.groups()[1:]):
        raise ValueError('must be a duration such as 30 or "30s", "2m", "1h30m"')
    sign = -1.0 if match.group(1) else 1.0
    hours, minutes, seconds = (sign * float(part or 0) for part in match.groups()[1:])
    return hours * 3600 + minutes * 60 + seconds


def parse_time(value: object, origin: datetime | None = None) -> tuple[float, datetime | None]:
    """parse_time reads a forecast time: seconds, a duration ("2h30m") or ISO 8601.

    An ISO time counts from the first ISO time seen (origin); it returns (seconds, origin).

    >>> parse_time("1h30m")[0], parse_time(90)[0]
    (5400.0, 90.0)
    >>> first = parse_time("2026-12-01T18:00:00Z")
    >>> parse_time("2026-12-01T19:00:00Z", first[1])[0]
    3600.0
    """
    if isinstance(value, str) and "T" in value:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        origin = origin or moment
        return (moment - origin).total_seconds(), origin
    if isinstance(value, str):
        try:
            return float(value), origin
        except ValueError:
            pass
    return parse_duration(value), origin
