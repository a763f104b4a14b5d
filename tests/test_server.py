"""The emulator on real sockets: the `edgebench emulator` process and a background server."""

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from emulator import BackgroundServer, EmulatorConfig, RateLimits, create_app

from .conftest import AUTH, deploy_body, geo_user
from .receivers import WebhookReceiver
from .spec import STATUS_SCHEMA
from .test_api import conforms

# Started processes and servers, timed: one after another, in the second group of live
# tests (the first runs on the other worker: Makefile).
pytestmark = pytest.mark.xdist_group("live2")

EDGEBENCH = [sys.executable, "-m", "edgebench.cli"]


class EmulatorProcess:
    """EmulatorProcess runs `edgebench emulator --port 0` and reads its URL from stdout."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.stderr = ""

    def __enter__(self) -> str:
        self.process = subprocess.Popen(
            [*EDGEBENCH, "emulator", "--port", "0", *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        url = self.process.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            self.__exit__()
            raise AssertionError(self.stderr)
        return url

    def __exit__(self, *exc_info: object) -> None:
        self.process.send_signal(signal.SIGINT)
        _, self.stderr = self.process.communicate(timeout=10)
        self.returncode = self.process.returncode


def test_the_emulator_command_serves_until_ctrl_c():
    emulator = EmulatorProcess("--time-scale", "20", "--seed", "5")
    with emulator as url, httpx.Client(base_url=url, headers=AUTH, timeout=5) as client:
        accepted = client.post("/v2/deployments", json=deploy_body())
        assert accepted.status_code == 202
        status = client.get(f"/v1/status/{accepted.json()['request_id']}")
        conforms(STATUS_SCHEMA, status.json())
    assert emulator.returncode == 0
    assert "Traceback" not in emulator.stderr


def test_the_same_seed_gives_the_same_request_ids():
    ids = []
    for _ in range(2):
        with EmulatorProcess("--seed", "11") as url:
            with httpx.Client(base_url=url, headers=AUTH, timeout=5) as client:
                posts = [client.post("/v2/deployments", json=deploy_body()) for _ in range(3)]
            ids.append([response.json()["request_id"] for response in posts])
    assert ids[0] == ids[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--world", "/nonexistent/world.toml"],
            "Error: world: file /nonexistent/world.toml not found",
        ),
        (["--time-scale", "0"], "Error: --time-scale: 0.0 is not in the range x>0 (see"),
        (["--fault-error-share", "0.7", "--fault-drop-share", "0.7"], "Error: --fault-error-share"),
    ],
)
def test_bad_options_fail_with_one_line_and_exit_2(args, message):
    result = subprocess.run(
        [*EDGEBENCH, "emulator", "--port", "0", *args], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.count("\n") == 1  # one line, Click's checks too
    assert "Traceback" not in result.stderr


def test_a_busy_port_is_a_clear_error():
    with BackgroundServer(create_app()) as server:
        port = server.url.rsplit(":", 1)[1]
        result = subprocess.run(
            [*EDGEBENCH, "emulator", "--port", port], capture_output=True, text=True, timeout=30
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_webhooks_reach_a_real_receiver_with_the_status_shape(small_world):
    config = EmulatorConfig(
        world=small_world, time_scale=100, rate_limits=RateLimits(enabled=False)
    )
    app = create_app(config)
    with WebhookReceiver() as receiver, BackgroundServer(app) as server:
        hooks = {
            "webhook_on_ready": {"url": f"{receiver.url}/ready"},
            "webhook_on_terminated": {"url": f"{receiver.url}/terminated"},
            "webhook_on_error": {"url": f"{receiver.url}/error"},
        }
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=5) as client:
            near = deploy_body(geo_user(0, 0), application="game", version="1.0", **hooks)
            ok = client.post("/v2/deployments", json=near).json()["request_id"]
            client.delete(f"/v1/stop/{ok}")
            far = near | {"users": [geo_user(0, 60)]}  # nothing within 3,000 km
            failed = client.post("/v2/deployments", json=far).json()["request_id"]
        calls = receiver.wait_for(3)
    by_path = {(path, body["request_id"]): body for path, body in calls}
    expected = {("/ready", ok), ("/terminated", ok), ("/error", failed)}
    assert expected <= set(by_path)
    # On a loaded machine the ERROR deployment's clean-up (3 s at 100x) may report too.
    assert set(by_path) - expected <= {("/terminated", failed)}
    for body in by_path.values():
        conforms(STATUS_SCHEMA, body)
    assert by_path["/ready", ok]["current_status"] == "Status.READY"
    assert by_path["/error", failed]["current_status"] == "Status.ERROR"


def test_a_hanging_webhook_receiver_does_not_slow_the_api():
    app = create_app(EmulatorConfig(time_scale=1000, rate_limits=RateLimits(enabled=False)))
    with WebhookReceiver(delay_s=3.0) as receiver, BackgroundServer(app) as server:
        body = deploy_body(webhook_on_ready={"url": f"{receiver.url}/ready"})
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=5) as client:
            for _ in range(30):
                assert client.post("/v2/deployments", json=body).status_code == 202
            # Callbacks in flight and held by the receiver (the sender's pool is busy).
            assert receiver.wait_for_arrivals(1) >= 1
            started = time.perf_counter()
            for _ in range(20):
                assert client.post("/v2/deployments", json=body).status_code == 202
            elapsed = time.perf_counter() - started
    # Twenty requests finish long before one held callback (3 s) would let go.
    assert elapsed < 2.0


def test_remote_webhook_targets_are_never_called(small_world):
    hook = {"url": "http://192.0.2.1/hook"}
    body = deploy_body(geo_user(0, 60), application="game", version="1.0", webhook_on_error=hook)
    app = create_app(EmulatorConfig(world=small_world))
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, headers=AUTH) as client:
        assert client.post("/v2/deployments", json=body).status_code == 422
        metrics = client.get("/_emulator/metrics").json()
    assert metrics["webhooks"] == {"skipped_not_loopback": 1}


def test_dropped_connections_and_5xx_over_a_real_socket(live_server):
    with httpx.Client(base_url=live_server.url, headers=AUTH, timeout=5) as client:
        client.post("/_emulator/faults", json={"drop_share": 1.0})
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            client.post("/v2/deployments", json=deploy_body())
        client.post("/_emulator/faults", json={"drop_share": 0, "error_share": 1.0})
        assert client.post("/v2/deployments", json=deploy_body()).status_code == 500
        client.post("/_emulator/faults", json={"error_share": 0})
        assert client.post("/v2/deployments", json=deploy_body()).status_code == 202
        metrics = client.get("/_emulator/metrics").json()
    assert metrics["responses"]["POST /v2/deployments"] == {"dropped": 1, "500": 1, "202": 1}


def test_the_server_listens_on_ipv6_loopback_too():
    if not os.path.exists("/proc/net/if_inet6"):
        pytest.skip("no IPv6 on this machine")
    with BackgroundServer(create_app(), host="::1") as server:
        assert server.url.startswith("http://[::1]:")
        assert httpx.get(f"{server.url}/_emulator/metrics", timeout=5).status_code == 200
