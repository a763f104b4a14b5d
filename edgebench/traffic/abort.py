"""Abortive close of the connections to the target, for a worker that leaves mid-run.

A request written into a socket is the kernel's to deliver: when a worker cut off from its
master quits, the requests it wrote before the cut sit in its sockets' send queues, and a
plain close lets the kernel go on retransmitting them after the process is gone. When the
link comes back they reach the API late, on top of the rate of the workers that took the
schedule over (a test that cut a worker's link for 10 s saw a 429 at the restore). With
SO_LINGER set to 0 a close resets the connection and drops what is queued.
"""

from __future__ import annotations

import _socket  # the C socket: gevent's would set the borrowed fd non-blocking
import os
import socket
import stat
import struct
from pathlib import Path
from urllib.parse import urlsplit

RESET_ON_CLOSE = struct.pack("ii", 1, 0)  # struct linger: on, 0 s
DEFAULT_PORTS = {"http": 80, "https": 443}


def abort_connections_to(url: str, fds: Path = Path("/proc/self/fd")) -> int:
    """abort_connections_to makes every TCP connection of this process to url's host and port
    reset when closed (dropping what it has queued): how many. Where /proc is not there
    (not Linux) there is nothing to list: 0."""
    target = _endpoints(url)
    if not target or not fds.is_dir():
        return 0
    aborted = 0
    for name in os.listdir(fds):
        aborted += _reset_on_close_if_to(int(name), target)
    return aborted


def _endpoints(url: str) -> set[tuple[str, int]]:
    parts = urlsplit(url)
    if not parts.hostname:
        return set()
    port = parts.port or DEFAULT_PORTS.get(parts.scheme, 80)
    try:
        found = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except OSError:
        return set()
    return {(str(info[4][0]), port) for info in found}


def _reset_on_close_if_to(fd: int, target: set[tuple[str, int]]) -> int:
    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            return 0
        sock = _socket.socket(fileno=fd)
    except OSError:  # closed meanwhile, or not a socket Python can wrap
        return 0
    try:
        peer = sock.getpeername()
        if sock.type != socket.SOCK_STREAM or (peer[0], peer[1]) not in target:
            return 0
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_ON_CLOSE)
        return 1
    except (OSError, TypeError, IndexError):  # not connected, or not an internet socket
        return 0
    finally:
        sock.detach()  # the fd stays its owner's
