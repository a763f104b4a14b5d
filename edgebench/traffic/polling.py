"""Time to ready by polling GET /v1/status/{request_id}, within the status endpoint's limit.

For targets that cannot call a webhook back (the real API needs a public
address for that). Each accepted deployment is polled every interval until it
is READY or ERROR; the process's polls are held to its quota, its share of the
endpoint's own limit (20/s), with the same send guard as the deploys.
"""

from __future__ import annotations

import heapq
import time
from typing import Protocol

import gevent
import httpx

from edgebench.records import event_record, placement_of

DONE = {"Status.READY": "ready", "Status.ERROR": "error"}


class EventSink(Protocol):
    """EventSink takes events-file records (a RecordWriter, or one that also counts them)."""

    def add(self, record: dict) -> None: ...


class StatusPoller:
    """StatusPoller polls accepted deployments until they are ready, recording when."""

    def __init__(
        self, client: httpx.Client, events: EventSink, worker: str, interval_s: float, guard
    ) -> None:
        self.client, self.events, self.worker = client, events, worker
        self.interval_s = interval_s
        self.guard = guard
        self._due: list[tuple[float, str]] = []
        self._greenlet: gevent.Greenlet | None = None

    def track(self, request_id: str, sent: float) -> None:
        heapq.heappush(self._due, (sent + self.interval_s, request_id))

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._poll_forever)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=True, timeout=5)
        self.client.close()

    def _poll_forever(self) -> None:
        while True:
            if not self._due or self._due[0][0] > time.time():
                gevent.sleep(0.05)
                continue
            _, request_id = heapq.heappop(self._due)
            with self.guard.turn():
                self._poll(request_id)

    def _poll(self, request_id: str) -> None:
        try:
            response = self.client.get(f"/v1/status/{request_id}")
            answer = response.json() if response.status_code == 200 else {}
            status = answer.get("current_status") or ""
            location, host = placement_of(answer)
        except (httpx.HTTPError, ValueError, AttributeError):
            status, location, host = "", None, None
        event = DONE.get(status)
        if event is None:
            self.track(request_id, time.time())
            return
        self.events.add(
            event_record(
                t_received=time.time(),
                event=event,
                request_id=request_id,
                current_status=status,
                source="poll",
                worker=self.worker,
                location=location,
                host=host,
            )
        )
