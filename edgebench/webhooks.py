"""A webhook receiver on a loopback port: when did each deployment become ready?

Each traffic process runs one on a free port; with a public webhook URL (the
real API cannot call loopback), worker 0 runs one on `webhook_port`, where the
user's tunnel forwards that URL. Edgegap (or the emulator) POSTs the deployment's
status to `<url>/ready`, `/error` or `/terminated`; every callback becomes a line
of `events-<worker>.jsonl`, and the analysis joins them to the requests by
request_id to get the time to ready. A body that is not a status is answered
400 and not recorded.
"""

from __future__ import annotations

import time

import orjson
from gevent.pywsgi import WSGIServer

from edgebench._errors import EdgebenchError
from edgebench.records import RecordWriter

EVENTS = ("ready", "error", "terminated")
MAX_BODY_BYTES = 256 * 1024


class WebhookReceiver:
    """WebhookReceiver records status callbacks; `url` is its base address."""

    def __init__(
        self, events: RecordWriter, worker: str, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.events = events
        self.worker = worker
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

    def _app(self, environ, start_response):
        event = environ.get("PATH_INFO", "").strip("/")
        if environ.get("REQUEST_METHOD") != "POST" or event not in EVENTS:
            start_response("404 Not Found", [("Content-Length", "0")])
            return [b""]
        status = self._record(event, environ["wsgi.input"].read(MAX_BODY_BYTES + 1))
        start_response(status, [("Content-Length", "0")])
        return [b""]

    def _record(self, event: str, body: bytes) -> str:
        try:
            status = orjson.loads(body) if len(body) <= MAX_BODY_BYTES else None
        except orjson.JSONDecodeError:
            status = None
        request_id = status.get("request_id") if isinstance(status, dict) else None
        if not isinstance(request_id, str):
            return "400 Bad Request"
        self.events.add(
            {
                "t_received": round(time.time(), 6),
                "event": event,
                "request_id": request_id,
                "current_status": status.get("current_status"),
                "source": "webhook",
                "worker": self.worker,
            }
        )
        return "204 No Content"
