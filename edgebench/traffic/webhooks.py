"""A webhook receiver on a loopback port: when did each deployment become ready?

Each traffic process runs one on a free port; with a public webhook URL (the
real API cannot call loopback), worker 0 runs one on `webhook_port`, where the
user's tunnel forwards that URL. Edgegap (or the emulator) POSTs the deployment's
status to `<url>/<run tag>/ready`, `/error` or `/terminated`; every callback becomes a line
of `events-<run>-<worker>.jsonl`, and the analysis joins them to the requests by
request_id to get the time to ready. A body that is not a status is answered
400 and not recorded.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import orjson
from gevent.pywsgi import WSGIServer

from edgebench._errors import EdgebenchError
from edgebench.records import EVENTS, event_record, placement_of

MAX_BODY_BYTES = 256 * 1024


class WebhookReceiver:
    """WebhookReceiver records status callbacks for one run; `url` is its base address.

    Callbacks come to `<url>/<run tag>/<event>`; anything else is answered and counted
    in `rejected` by reason (unknown path, too large, not a status, unknown
    request_id when `known` can tell), never recorded.
    """

    def __init__(
        self,
        events,
        worker: str,
        run_tag: str,
        host: str = "127.0.0.1",
        port: int = 0,
        known: Callable[[str], bool] | None = None,
    ) -> None:
        self.events, self.worker, self.run_tag, self.known = events, worker, run_tag, known
        self.recorded = 0
        self.rejected: Counter[str] = Counter()
        self._server = WSGIServer((host, port), self._app, log=None, error_log=None)
        try:
            self._server.init_socket()
        except OSError as exc:
            raise EdgebenchError(
                f"webhook receiver: cannot listen on {host}:{port} ({exc.strerror}); "
                "free the port or set requests.webhook_port"
            ) from None
        self.url = f"http://{host}:{self._server.server_port}"

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop(timeout=1)

    def counts(self) -> dict:
        """counts is what the receiver did with the callbacks: recorded, and rejected by reason."""
        return {"worker": self.worker, "recorded": self.recorded, "rejected": dict(self.rejected)}

    def _app(self, environ, start_response):
        tag, _, event = environ.get("PATH_INFO", "").strip("/").partition("/")
        if environ.get("REQUEST_METHOD") != "POST" or tag != self.run_tag or event not in EVENTS:
            self.rejected["unknown_path"] += 1
            start_response("404 Not Found", [("Content-Length", "0")])
            return [b""]
        status = self._record(event, environ["wsgi.input"].read(MAX_BODY_BYTES + 1))
        start_response(status, [("Content-Length", "0")])
        return [b""]

    def _record(self, event: str, body: bytes) -> str:
        if len(body) > MAX_BODY_BYTES:
            return self._reject("too_large", "413 Content Too Large")
        try:
            status = orjson.loads(body)
        except orjson.JSONDecodeError:
            status = None
        request_id = status.get("request_id") if isinstance(status, dict) else None
        if not isinstance(request_id, str):
            return self._reject("not_a_status", "400 Bad Request")
        if self.known and not self.known(request_id):
            return self._reject("unknown_request_id", "404 Not Found")
        current_status = status.get("current_status")
        location, host = placement_of(status)
        self.events.add(
            event_record(
                t_received=time.time(),
                event=event,
                request_id=request_id,
                current_status=current_status if isinstance(current_status, str) else None,
                source="webhook",
                worker=self.worker,
                location=location,
                host=host,
            )
        )
        self.recorded += 1
        return "204 No Content"

    def _reject(self, reason: str, status: str) -> str:
        self.rejected[reason] += 1
        return status
