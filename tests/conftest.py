"""Shared fixtures: worlds, an in-process client, a real server on a free port, the spec."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from emulator import BackgroundServer, EmulatorConfig, RateLimits, create_app, load_world

TOKEN = "0e4a6e34-test-4000-8000-000000000000"
AUTH = {"Authorization": f"token {TOKEN}"}

SMALL_WORLD = textwrap.dedent(
    """
    [placement]
    max_distance_km = 3000

    [lifecycle]
    boot_s = 2.0
    cached_boot_s = 1.0
    lifetime_s = 10.0
    terminate_s = 1.0
    error_retention_s = 5.0

    [[applications]]
    name = "game"
    versions = ["1.0"]

    [[locations]]
    city = "Alpha"
    country = "GH"
    latitude = 0.0
    longitude = 0.0
    capacity = 2
    cached = true

    [[locations]]
    city = "Beta"
    country = "GA"
    latitude = 0.0
    longitude = 10.0
    capacity = 1

    [[locations]]
    city = "Far"
    country = "ID"
    latitude = 0.0
    longitude = 120.0
    capacity = 5

    [[private_hosts]]
    id = "h-alpha"
    location = "Alpha"
    capacity = 1

    [[private_hosts]]
    id = "h-pending"
    location = "Beta"
    capacity = 1
    status = "PENDING"
    """
)


@pytest.fixture
def small_world_path(tmp_path: Path) -> Path:
    path = tmp_path / "small-world.toml"
    path.write_text(SMALL_WORLD)
    return path


@pytest.fixture
def small_world(small_world_path: Path):
    return load_world(small_world_path)


def geo_user(latitude: float, longitude: float) -> dict:
    return {
        "user_type": "geo_coordinates",
        "user_data": {"latitude": latitude, "longitude": longitude},
    }


def ip_user(address: str) -> dict:
    return {"user_type": "ip_address", "user_data": {"ip_address": address}}


def deploy_body(
    *users: dict, application: str = "my-game", version: str = "1.0.0", **extra
) -> dict:
    return {
        "application": application,
        "version": version,
        "users": list(users) or [geo_user(45.5, -73.6)],
    } | extra


@pytest.fixture
def make_client():
    """make_client builds an in-process client (lifespan running) for a config."""
    clients = []

    def build(**config) -> TestClient:
        client = TestClient(create_app(EmulatorConfig(**config)), raise_server_exceptions=True)
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client(rate_limits=RateLimits(enabled=False))


@pytest.fixture
def live_server():
    """live_server is the emulator on a real socket on a free loopback port."""
    app = create_app(EmulatorConfig(rate_limits=RateLimits(enabled=False), time_scale=50))
    with BackgroundServer(app) as server:
        yield server


def edgebench(*args: str):
    """edgebench runs the edgebench command in-process (click's CliRunner) and returns its Result.

    Result.exit_code, .stdout and .stderr: for commands whose own process proves nothing more.
    """
    from click.testing import CliRunner

    from edgebench.cli import main

    return CliRunner().invoke(main, [str(arg) for arg in args])


def run_fresh(program: str) -> str:
    """run_fresh is what `program` prints, run in a fresh interpreter from the repository
    (what it imports is all it loads); it fails the test if the program fails."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(program)],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def free_port() -> int:
    """free_port is a loopback port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
