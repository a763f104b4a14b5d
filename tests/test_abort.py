"""A leaving worker's connections to the target reset when closed, and no other."""

import socket
import struct

from edgebench.traffic.abort import abort_connections_to


def linger(sock: socket.socket) -> tuple[int, int]:
    return struct.unpack("ii", sock.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8))


def test_only_the_connections_to_the_target_reset_when_closed():
    with (
        socket.create_server(("127.0.0.1", 0)) as target,
        socket.create_server(("127.0.0.1", 0)) as other,
    ):
        to_target = socket.create_connection(target.getsockname())
        to_other = socket.create_connection(other.getsockname())
        try:
            port = target.getsockname()[1]
            assert abort_connections_to(f"http://127.0.0.1:{port}") == 1
            assert linger(to_target) == (1, 0)
            assert linger(to_other) == (0, 0)
            to_target.sendall(b"still usable: the fd stays its owner's")
        finally:
            to_target.close()
            to_other.close()


def test_a_url_without_a_host_aborts_nothing():
    assert abort_connections_to("not a url") == 0
