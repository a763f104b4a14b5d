"""Platform time: wall time sped up by --time-scale, so hours pass in seconds."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class PlatformClock:
    """PlatformClock reads platform seconds since the emulator (re)started.

    With time_scale 60, one wall second is one platform minute: a 15-minute
    match ends after 15 wall seconds. Rate limits stay in wall time.
    """

    def __init__(self, time_scale: float = 1.0) -> None:
        self.time_scale = time_scale
        self.restart()

    def restart(self) -> None:
        self._started = time.monotonic()
        self.epoch = datetime.now(UTC)

    def now(self) -> float:
        return (time.monotonic() - self._started) * self.time_scale

    def wall_delay(self, platform_s: float) -> float:
        """wall_delay is how many wall seconds a platform duration takes."""
        return platform_s / self.time_scale

    def timestamp(self, platform_s: float) -> str:
        """timestamp formats a platform instant as Edgegap's v1 API does (UTC):
        "2026-04-22 12:00:46.444265"."""
        return self.moment(platform_s).strftime("%Y-%m-%d %H:%M:%S.%f")

    def iso(self, platform_s: float) -> str:
        """iso formats a platform instant as the v2 API does: "2025-11-26T16:32:30.825138Z"."""
        return self.moment(platform_s).isoformat(timespec="microseconds").replace("+00:00", "Z")

    def moment(self, platform_s: float) -> datetime:
        return self.epoch + timedelta(seconds=platform_s)

    def unix(self, platform_s: float) -> float:
        """unix is a platform instant as unix time (the list query's created_at)."""
        return self.moment(platform_s).timestamp()
