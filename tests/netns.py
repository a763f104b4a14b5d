"""A small network of the tests' own: Linux network namespaces joined by a bridge.

Each host is a namespace with one veth link to a bridge in a hub namespace of its own, so
every address lives inside namespaces the test created (never this machine's own), and
cutting a host's link at the hub is a partition: its packets go nowhere, as when a cable
or a node's network fails. Closing kills every process left in the namespaces and
deletes them, the bridge and the links with them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

SUBNET = "10.213.0"  # inside the namespaces only: no route leads there from this machine
PREFIX = "ebt"


def unavailable() -> str | None:
    """unavailable is why namespaces cannot be made here, or None."""
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"{PREFIX}-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


class Network:
    """Network is a bridge and a namespace a host, each host with an address on SUBNET."""

    def __init__(self, hosts: list[str]) -> None:
        self.tag = f"{PREFIX}{os.getpid()}"  # a port name is tag + index: at most 15 characters
        self.hub = f"{self.tag}-hub"
        self.hosts = {name: f"{SUBNET}.{i + 1}" for i, name in enumerate(hosts)}
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> Network:
        remove_stale()
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def namespace(self, host: str) -> str:
        return f"{self.tag}-{host}"

    def address(self, host: str) -> str:
        return self.hosts[host]

    def popen(self, host: str, command: list[str], **options) -> subprocess.Popen:
        """popen starts command in host's namespace (`ip netns exec` execs it: its pid is
        the command's)."""
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.namespace(host), *command], **options
        )
        self.processes.append(process)
        return process

    def run(
        self, host: str, command: list[str], timeout: float = 60, **options
    ) -> subprocess.CompletedProcess:
        namespaced = ["ip", "netns", "exec", self.namespace(host), *command]
        return subprocess.run(
            namespaced, capture_output=True, text=True, timeout=timeout, **options
        )

    def kill_all(self, host: str) -> None:
        """kill_all kills every process in host's namespace outright (SIGKILL): the host died."""
        _kill_in(self.namespace(host))

    def inside(self, host: str, call: Callable, *args, **kwargs):
        """inside is call(*args, **kwargs) made from host's namespace (on a thread of its own
        that enters it: the sockets it opens are host's), for the test to reach the network."""
        outcome: dict = {}

        def enter_and_call() -> None:
            try:
                _enter(self.namespace(host))
                outcome["value"] = call(*args, **kwargs)
            except BaseException as exc:  # re-raised on the caller's thread
                outcome["error"] = exc

        thread = threading.Thread(target=enter_and_call)
        thread.start()
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    def cut(self, host: str) -> None:
        """cut takes host's link down at the bridge: nothing reaches it or leaves it."""
        _ip("-n", self.hub, "link", "set", self._port(host), "down")

    def restore(self, host: str) -> None:
        _ip("-n", self.hub, "link", "set", self._port(host), "up")

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        for host in self.hosts:
            _delete(self.namespace(host))
        _delete(self.hub)

    def _port(self, host: str) -> str:
        return f"{self.tag}{list(self.hosts).index(host)}"

    def _build(self) -> None:
        _ip("netns", "add", self.hub)
        _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hub, "link", "set", "br0", "up")
        for host, address in self.hosts.items():
            namespace, port = self.namespace(host), self._port(host)
            _ip("netns", "add", namespace)
            _ip("-n", namespace, "link", "set", "lo", "up")
            _ip(
                "-n",
                namespace,
                "link",
                "add",
                "eth0",
                "type",
                "veth",
                "peer",
                port,
                "netns",
                self.hub,
            )
            _ip("-n", self.hub, "link", "set", port, "master", "br0")
            _ip("-n", self.hub, "link", "set", port, "up")
            _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", namespace, "link", "set", "eth0", "up")


def remove_stale() -> None:
    """remove_stale deletes the namespaces a test process that died outright left behind."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in listed.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(PREFIX) or "-" not in name:
            continue
        owner = name[len(PREFIX) :].split("-")[0]
        if owner.isdigit() and not _alive(int(owner)):
            _delete(name)


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _delete(namespace: str) -> None:
    """_delete kills what still runs in namespace, then deletes it (no error if it is gone)."""
    _kill_in(namespace)
    subprocess.run(["ip", "netns", "del", namespace], capture_output=True)


def _kill_in(namespace: str) -> None:
    pids = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True)
    for pid in pids.stdout.split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def _enter(namespace: str) -> None:
    """_enter moves the calling thread (only it) into namespace's network."""
    with open(f"/var/run/netns/{namespace}") as handle:
        if _LIBC.setns(handle.fileno(), CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns {namespace}: {os.strerror(errno)}")


CLONE_NEWNET = 0x40000000
_LIBC = ctypes.CDLL(None, use_errno=True)
