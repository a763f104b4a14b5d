"""A real webhook receiver on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookReceiver:
    """WebhookReceiver records every JSON body POSTed to it, by path; `delay_s` makes it slow."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.arrived = 0  # callbacks received, answered or still held by delay_s
        self.delay_s = delay_s
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.arrived += 1
                time.sleep(receiver.delay_s)
                receiver.calls.append((self.path, json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[tuple[str, dict]]:
        """wait_for waits until count callbacks were answered (at most timeout_s)."""
        deadline = time.monotonic() + timeout_s
        while len(self.calls) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.calls)

    def wait_for_arrivals(self, count: int, timeout_s: float = 10.0) -> int:
        """wait_for_arrivals waits until count callbacks came in, answered or held."""
        deadline = time.monotonic() + timeout_s
        while self.arrived < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.arrived

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
