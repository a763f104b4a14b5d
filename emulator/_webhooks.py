"""Delivers webhook callbacks in the background, never on a request's path.

Callbacks go only to loopback receivers (127.0.0.0/8, ::1, localhost): an
emulator must not send traffic off the machine. Others are counted as
`skipped_not_loopback` and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
from urllib.parse import urlsplit

import httpx

from emulator._metrics import Metrics

QUEUE_SIZE = 10_000
WORKERS = 8


@functools.lru_cache(maxsize=1024)
def is_loopback_url(url: str) -> bool:
    """is_loopback_url is checked per callback; a run names few receivers, so it is cached."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WebhookSender:
    """WebhookSender posts queued JSON bodies with a few workers and a timeout each."""

    def __init__(self, metrics: Metrics, timeout_s: float = 5.0) -> None:
        self._metrics = metrics
        self._timeout_s = timeout_s
        self._queue: asyncio.Queue[tuple[str, bytes]] | None = None
        self._tasks: list[asyncio.Task] = []
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._queue = queue = asyncio.Queue[tuple[str, bytes]](QUEUE_SIZE)
        self._client = client = httpx.AsyncClient(timeout=self._timeout_s, trust_env=False)
        self._tasks = [asyncio.create_task(self._deliver(queue, client)) for _ in range(WORKERS)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()

    def submit(self, url: str, body: bytes) -> None:
        """submit queues one callback; a full queue drops it (counted), never blocks."""
        if not is_loopback_url(url):
            self._metrics.webhooks["skipped_not_loopback"] += 1
            return
        if self._queue is None:
            self._metrics.webhooks["dropped_not_started"] += 1
            return
        try:
            self._queue.put_nowait((url, body))
        except asyncio.QueueFull:
            self._metrics.webhooks["dropped_queue_full"] += 1

    async def _deliver(self, queue: asyncio.Queue, client: httpx.AsyncClient) -> None:
        headers = {"content-type": "application/json"}
        while True:
            url, body = await queue.get()
            try:
                response = await client.post(url, content=body, headers=headers)
                outcome = "delivered" if response.is_success else "failed_status"
            except httpx.HTTPError:
                outcome = "failed_transport"
            self._metrics.webhooks[outcome] += 1
