"""The emulator as a real client of Edgegap's API sees it: every route it serves, its shapes,
the list's query, bulk stop, applications, container logs and private fleet hosts.

Each response is checked against the shapes in tests/spec.py (written from Edgegap's v1 and
v2 OpenAPI documents); one test plays a whole client's sequence over a real socket.
"""

import time

import httpx
import orjson
import pytest
from starlette.routing import Route

from emulator import BackgroundServer, EmulatorConfig, RateLimits, create_app, load_world

from .conftest import AUTH, deploy_body, geo_user
from .spec import (
    APP_VERSION,
    APPLICATION,
    APPS_SCHEMA,
    BULK_STOP_SCHEMA,
    FLEET_HOSTS_SCHEMA,
    LIST_SCHEMA,
    LOGS_SCHEMA,
    MESSAGE_SCHEMA,
    STATUS_SCHEMA,
    STOP_SCHEMA,
    VERSIONS_SCHEMA,
    jsonschema,
)

# Started processes and servers, timed: one after another, in the first group of live
# tests (the second runs on the other worker: Makefile).
pytestmark = pytest.mark.xdist_group("live")

# Every route the emulator serves, with the shape of its success; the control routes
# under /_emulator and Prometheus' /metrics are the emulator's own and have none in
# Edgegap's documents.
ROUTE_SCHEMAS = {
    ("POST", "/v2/deployments"): None,  # checked against the v2 spec itself (test_api.py)
    ("POST", "/v2/private-fleets/deployments"): None,
    ("GET", "/v1/status/{request_id}"): STATUS_SCHEMA,
    ("DELETE", "/v1/stop/{request_id}"): STOP_SCHEMA,
    ("GET", "/v1/deployments"): LIST_SCHEMA,
    ("POST", "/v1/deployments/bulk-stop"): BULK_STOP_SCHEMA,
    ("GET", "/v1/deployment/{request_id}/container-logs"): LOGS_SCHEMA,
    ("GET", "/v1/apps"): APPS_SCHEMA,
    ("GET", "/v1/app/{app_name}"): APPLICATION,
    ("GET", "/v1/app/{app_name}/versions"): VERSIONS_SCHEMA,
    ("GET", "/v1/app/{app_name}/version/{version_name}"): APP_VERSION,
    ("GET", "/v2/private-fleets/{fleet_name}/hosts"): FLEET_HOSTS_SCHEMA,
}


def conforms(schema: dict, response: httpx.Response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    jsonschema.Draft202012Validator(schema).validate(body)
    return body


def test_every_route_the_emulator_serves_has_a_shape_to_check():
    app = create_app(EmulatorConfig())
    served = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, Route)
        and not route.path.startswith("/_emulator")
        and route.path != "/metrics"
        for method in route.methods - {"HEAD"}
    }
    assert served == set(ROUTE_SCHEMAS)


@pytest.fixture(scope="module")
def server():
    """server is the emulator on a real socket, its time 10 times faster (a boot: 150-300
    ms, long enough to list what is still booting on a busy machine), no rate limits."""
    app = create_app(EmulatorConfig(rate_limits=RateLimits(enabled=False), time_scale=10))
    with BackgroundServer(app) as running:
        yield running


@pytest.fixture
def api(server):
    """api is a client of the server, reset to no deployments for each test."""
    with httpx.Client(base_url=server.url, headers=AUTH) as client:
        client.post("/_emulator/reset").raise_for_status()
        yield client


def deploy(api, *tags: str, lat: float = 48.8, lon: float = 2.3) -> str:
    response = api.post("/v2/deployments", json=deploy_body(geo_user(lat, lon), tags=list(tags)))
    assert response.status_code == 202, response.text
    return response.json()["request_id"]


def wait_ready(api, request_id: str) -> dict:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        status = conforms(STATUS_SCHEMA, api.get(f"/v1/status/{request_id}"))
        if status["current_status"] == "Status.READY":
            return status
        time.sleep(0.02)
    raise AssertionError(f"{request_id} never became ready")


def test_a_real_clients_sequence_runs_unchanged(api):
    # A matchmaker checks its application and version exist before deploying.
    apps = conforms(APPS_SCHEMA, api.get("/v1/apps"))
    assert "my-game" in [app["name"] for app in apps["applications"]]
    conforms(APPLICATION, api.get("/v1/app/my-game"))
    versions = conforms(VERSIONS_SCHEMA, api.get("/v1/app/my-game/versions"))
    assert "1.0.0" in [version["name"] for version in versions["versions"]]
    conforms(APP_VERSION, api.get("/v1/app/my-game/version/1.0.0"))
    # Deploy, poll until READY, read the logs.
    first = deploy(api, "match-1", "eu")
    ready = wait_ready(api, first)
    assert ready["location"]["country"] == "France"
    assert ready["elapsed_time"] >= 0
    logs = conforms(LOGS_SCHEMA, api.get(f"/v1/deployment/{first}/container-logs"))
    assert "Server started" in logs["logs"]
    # List by tag: only the tagged deployment, not everything.
    second = deploy(api, "match-2", "eu")
    query = {"filters": [{"field": "tags", "operator": "eq", "value": "match-1"}]}
    listed = conforms(
        LIST_SCHEMA, api.get("/v1/deployments", params={"query": orjson.dumps(query).decode()})
    )
    assert [item["request_id"] for item in listed["data"]] == [first]
    assert listed["total_count"] == 1
    # Stop, and the status after it; then stop the rest by tag in one call.
    stopped = conforms(STOP_SCHEMA, api.delete(f"/v1/stop/{first}"))
    assert stopped["deployment_summary"]["request_id"] == first
    after = conforms(STATUS_SCHEMA, api.get(f"/v1/status/{first}"))
    assert after["current_status"] in ("Status.TERMINATING", "Status.TERMINATED")
    by_tag = {"filters": [{"field": "deployment_tags", "values": ["eu"], "filter_type": "any"}]}
    bulk = conforms(BULK_STOP_SCHEMA, api.post("/v1/deployments/bulk-stop", json=by_tag), 202)
    assert [item["request_id"] for item in bulk["processable"]] == [second]
    assert api.delete(f"/v1/stop/{first}").status_code == 410


def test_an_unknown_request_id_is_a_400_as_on_the_live_api(api):
    unknown = api.get("/v1/status/000000000000")
    assert conforms(MESSAGE_SCHEMA, unknown, 400)["message"] == "Bad Request ID provided"
    conforms(MESSAGE_SCHEMA, api.get("/v1/deployment/000000000000/container-logs"), 404)
    conforms(MESSAGE_SCHEMA, api.get("/v1/app/no-such-app"), 404)
    conforms(MESSAGE_SCHEMA, api.get("/v1/app/no-such-app/versions"), 404)
    conforms(MESSAGE_SCHEMA, api.get("/v1/app/my-game/version/9.9.9"), 404)
    conforms(MESSAGE_SCHEMA, api.get("/v2/private-fleets/no-such-fleet/hosts"), 404)


def listed(api, query: dict, **params) -> list[str]:
    response = api.get("/v1/deployments", params={"query": orjson.dumps(query).decode(), **params})
    return [item["request_id"] for item in conforms(LIST_SCHEMA, response)["data"]]


@pytest.fixture
def slow_api():
    """slow_api is a client of an emulator whose time runs at a tenth of the wall's: its boots
    last 15 s and more, so what it lists is still booting on however busy a machine."""
    app = create_app(EmulatorConfig(rate_limits=RateLimits(enabled=False), time_scale=0.1))
    with (
        BackgroundServer(app) as running,
        httpx.Client(base_url=running.url, headers=AUTH) as client,
    ):
        yield client


def test_the_list_query_filters_and_orders_as_documented(slow_api):
    api = slow_api
    a, b, c = deploy(api, "red"), deploy(api, "blue"), deploy(api, "red", "blue")
    fleet = api.post(
        "/v2/private-fleets/deployments",
        json=deploy_body(geo_user(48.8, 2.3), private_host_ids=["fleet-fra-1"], tags=["fleet"]),
    ).json()["request_id"]

    def where(field, operator, value):
        return {"filters": [{"field": field, "operator": operator, "value": value}]}

    assert listed(api, where("tags", "in", ["red"])) == [a, c]
    assert listed(api, where("tags", "nin", ["red"])) == [b, fleet]
    assert listed(api, where("tags", "neq", "blue")) == [a, fleet]
    assert listed(api, where("request_id", "in", [b, c])) == [b, c]
    assert listed(api, where("application", "eq", "my-game")) == [a, b, c, fleet]
    assert listed(api, where("status", "neq", "ready")) == [a, b, c, fleet]  # all still booting
    assert listed(api, where("fleet_name", "ilike", "FLEET-F%")) == [fleet]
    assert listed(api, where("fleet_name", "eq", "fleet-mtl")) == []
    assert listed(api, where("host_name", "eq", "fleet-fra-1")) == [fleet]
    assert listed(api, where("created_at", "gte", "2000-01-01T00:00:00Z")) == [a, b, c, fleet]
    assert listed(api, where("created_at", "lte", "2000-01-01T00:00:00Z")) == []
    newest = {"order_by": [{"field": "created_at", "order": "desc"}]}
    assert listed(api, newest) == [fleet, c, b, a]
    assert listed(api, newest, page=2, limit=3) == [a]
    params = {"query": orjson.dumps(newest).decode(), "limit": 3}
    page = api.get("/v1/deployments", params=params).json()
    assert page["pagination"]["has_next"] is True
    assert page["pagination"]["paginator"] == {"num_pages": 2}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("{not json", "query"),
        (
            '{"filters": [{"field": "colour", "operator": "eq", "value": "x"}]}',
            "query.filters[0].field",
        ),
        (
            '{"filters": [{"field": "status", "operator": "in", "value": ["ready"]}]}',
            "query.filters[0].operator",
        ),
        (
            '{"filters": [{"field": "tags", "operator": "in", "value": "red"}]}',
            "query.filters[0].value",
        ),
        (
            '{"filters": [{"field": "tags", "operator": "eq", "value": "a"},'
            ' {"field": "tags", "operator": "eq", "value": "b"}]}',
            "query.filters[1].field",
        ),
        (
            '{"filters": [{"field": "created_at", "operator": "gte", "value": "yesterday"}]}',
            "query.filters[0].value",
        ),
        ('{"order_by": [{"field": "players"}]}', "query.order_by[0].field"),
    ],
)
def test_a_bad_query_is_a_400_naming_the_part(api, query, field):
    response = api.get("/v1/deployments", params={"query": query})
    assert response.status_code == 400
    assert response.json()["details"]["field"] == field


def test_bulk_stop_takes_any_all_and_not(api):
    a, b, c = deploy(api, "x"), deploy(api, "x", "y"), deploy(api, "z")

    def stop(filter_type, field, values):
        body = {"filters": [{"field": field, "values": values, "filter_type": filter_type}]}
        answer = api.post("/v1/deployments/bulk-stop", json=body)
        return [
            item["request_id"] for item in conforms(BULK_STOP_SCHEMA, answer, 202)["processable"]
        ]

    assert stop("all", "deployment_tags", ["x", "y"]) == [b]
    assert stop("not", "deployment_tags", ["x"]) == [c]
    # b was asked to stop while still booting: it stops once ready, and is listed again.
    assert stop("any", "request_id", [a, b]) == [a, b]
    bad = api.post("/v1/deployments/bulk-stop", json={"filters": [{"field": "city"}]})
    assert bad.status_code == 400


def test_a_fleets_hosts_show_their_slots_as_cpu_and_memory(api):
    before = conforms(FLEET_HOSTS_SCHEMA, api.get("/v2/private-fleets/fleet-fra/hosts"))["data"]
    world = load_world()
    assert {h["host_id"] for h in before} == {"fleet-fra-1", "fleet-fra-2"}
    body = deploy_body(geo_user(48.8, 2.3), private_host_ids=["fleet-fra-1"])
    assert api.post("/v2/private-fleets/deployments", json=body).status_code == 202
    after = {h["host_id"]: h for h in api.get("/v2/private-fleets/fleet-fra/hosts").json()["data"]}
    host = after["fleet-fra-1"]
    was = next(h for h in before if h["host_id"] == "fleet-fra-1")
    assert host["allocated_cpu_units"] - was["allocated_cpu_units"] == 1024
    assert host["allocatable_cpu_units"] == 1024 * world.private_hosts["fleet-fra-1"].capacity
    assert host["city"] == "Frankfurt"
    assert host["country"] == "Germany"
