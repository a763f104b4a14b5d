"""Serving the emulator: in the foreground (the CLI) or on a background thread.

with BackgroundServer(create_app()) as server:
    httpx.get(f"{server.url}/_emulator/metrics")
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

import uvicorn

from emulator._errors import ConfigError

STARTUP_TIMEOUT_S = 10.0


class _DropNotices(logging.Filter):
    """_DropNotices hides uvicorn's note about each connection dropped on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


def bind(host: str, port: int) -> socket.socket:
    """bind opens the listening socket first, so port 0 yields a known free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            "port", f"cannot listen on {host}:{port}: {exc.strerror}", "pick another --port"
        ) from None
    sock.listen(2048)
    return sock


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def make_server(app, log_level: str = "warning") -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        loop="auto",
        http="auto",
        lifespan="on",
        timeout_keep_alive=30,
        backlog=2048,
    )
    logging.getLogger("uvicorn.error").addFilter(_DropNotices())
    return uvicorn.Server(config)


def serve(app, host: str, port: int, on_ready: Callable[[str], None]) -> None:
    """serve runs the app until Ctrl-C, calling on_ready with the base URL once listening."""
    sock = bind(host, port)
    server = make_server(app)
    on_ready(base_url(sock))
    server.run(sockets=[sock])


class BackgroundServer:
    """BackgroundServer serves an app on a free loopback port from a daemon thread."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0) -> None:
        self._sock = bind(host, port)
        self.url = base_url(self._sock)
        self._server = make_server(app)
        self._thread = threading.Thread(target=self._run, name="emulator", daemon=True)

    def _run(self) -> None:
        self._server.run(sockets=[self._sock])

    def start(self) -> BackgroundServer:
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(STARTUP_TIMEOUT_S / 0.01)):
            if self._server.started or not self._thread.is_alive():
                break
            deadline.wait(0.01)
        if not self._server.started:
            raise RuntimeError("the emulator did not start")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=STARTUP_TIMEOUT_S)
        self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
