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
        """timestamp formats a platform instant as Edgegap's status does (UTC, ISO 8601)."""
        moment = self.epoch + timedelta(seconds=platform_s)
        return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
