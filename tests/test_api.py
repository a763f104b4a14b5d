"""Each route's behaviour over HTTP, in-process, with every body checked against the spec."""

import time

import pytest

from emulator import Faults, RateLimits

from .conftest import AUTH, TOKEN, deploy_body, geo_user, ip_user
from .spec import LIST_SCHEMA, MESSAGE_SCHEMA, STATUS_SCHEMA, assert_conforms
from .spec import jsonschema as _jsonschema


def conforms(schema, body):
    _jsonschema.Draft202012Validator(schema).validate(body)


def post(client, path, body, headers=AUTH, **kwargs):
    return client.post(path, json=body, headers=headers, **kwargs)


def test_deploy_accepted_is_202_with_a_request_id(client):
    response = post(client, "/v2/deployments", deploy_body(ip_user("200.147.67.142")))
    assert response.status_code == 202
    assert_conforms("/deployments", "post", 202, response.json())
    status = client.get(f"/v1/status/{response.json()['request_id']}", headers=AUTH)
    assert status.status_code == 200
    conforms(STATUS_SCHEMA, status.json())
    assert status.json()["location"]["city"] == "Sao Paulo"
    assert status.json()["current_status"] in ("Status.SEEKING", "Status.DEPLOYING")


def test_fleet_deploy_goes_to_the_listed_host(client):
    body = deploy_body(geo_user(48.8, 2.3), private_host_ids=["fleet-fra-2", "fleet-fra-1"])
    response = post(client, "/v2/private-fleets/deployments", body)
    assert response.status_code == 202
    status = client.get(f"/v1/status/{response.json()['request_id']}", headers=AUTH).json()
    assert status["private_host_id"] == "fleet-fra-1"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"version": "1.0.0", "users": [geo_user(0, 0)]}, "application"),
        (deploy_body(version=3), "version"),
        ({"application": "my-game", "version": "1.0.0", "users": []}, "users"),
        (deploy_body({"user_type": "carrier_pigeon", "user_data": {}}), "users[0].user_type"),
        (
            deploy_body({"user_type": "ip_address", "user_data": {"ip_address": "999.1.1.1"}}),
            "users[0].user_data.ip_address",
        ),
        (deploy_body(geo_user(0, 181)), "users[0].user_data.longitude"),
        (
            deploy_body(
                {"user_type": "geo_coordinates", "user_data": {"latitude": True, "longitude": 0}}
            ),
            "users[0].user_data.latitude",
        ),
        (deploy_body({"user_type": "geo_coordinates"}), "users[0].user_data"),
        (deploy_body(require_cached_locations="yes"), "require_cached_locations"),
        (
            deploy_body(environment_variables=[{"key": "A", "value": "b"}]),
            "environment_variables[0].is_hidden",
        ),
        (
            deploy_body(environment_variables=[{"key": "A", "value": 1, "is_hidden": False}]),
            "environment_variables[0].value",
        ),
        (deploy_body(tags=["ok", 3]), "tags[1]"),
        (deploy_body(webhook_on_ready={"url": "ftp://x"}), "webhook_on_ready.url"),
        (deploy_body(webhook_on_error={}), "webhook_on_error.url"),
        (deploy_body(application="unknown-game"), "application"),
        ([1, 2], "body"),
    ],
)
def test_invalid_deploy_bodies_are_400_naming_the_field(client, body, field):
    response = post(client, "/v2/deployments", body)
    assert response.status_code == 400
    assert_conforms("/deployments", "post", 400, response.json())
    assert response.json()["details"]["field"] == field


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({}, "private_host_ids"),
        ({"private_host_ids": []}, "private_host_ids"),
        ({"private_host_ids": ["a", "a"]}, "private_host_ids"),
        ({"private_host_ids": ["fleet-mtl-1", "ghost"]}, "private_host_ids[1]"),
        ({"private_host_ids": [7]}, "private_host_ids[0]"),
    ],
)
def test_invalid_fleet_bodies_are_400(client, extra, field):
    response = post(client, "/v2/private-fleets/deployments", deploy_body(**extra))
    assert response.status_code == 400
    assert_conforms("/private-fleets/deployments", "post", 400, response.json())
    assert response.json()["details"]["field"] == field


def test_non_json_wrong_type_and_oversized_bodies_are_400(make_client):
    client = make_client(max_body_bytes=1024)
    cases = [
        ({"content-type": "application/json"}, b"{not json"),
        ({"content-type": "text/plain"}, b"{}"),
        ({"content-type": "application/json"}, b" " * 2000),
        ({"content-type": "application/json"}, b"9" * 900),
    ]
    for headers, content in cases:
        response = client.post("/v2/deployments", content=content, headers=AUTH | headers)
        assert response.status_code == 400, content[:20]
        assert set(response.json()) == {"message", "details"}


@pytest.mark.parametrize(
    "header", [None, "", "token", "token ", "Bearer abc", "tokenabc", "token a b"]
)
def test_missing_or_malformed_tokens_are_401(client, header):
    headers = {} if header is None else {"Authorization": header}
    response = post(client, "/v2/deployments", deploy_body(), headers=headers)
    assert response.status_code == 401
    assert_conforms("/deployments", "post", 401, response.json())


def test_the_limit_is_the_organisations_whichever_token_it_uses(make_client):
    other = {"Authorization": "token another-token-of-the-same-organisation"}
    outsider = {"Authorization": "token a-token-of-another-organisation"}
    client = make_client(organisations={outsider["Authorization"][6:]: "rival-studio"})
    codes = [post(client, "/v2/deployments", deploy_body(), headers=h).status_code
             for h in [AUTH, other] * 21]  # fmt: skip
    assert codes.count(202) == 40  # one budget, shared by the organisation's two tokens
    assert post(client, "/v2/deployments", deploy_body(), headers=outsider).status_code == 202


def test_only_accepted_tokens_pass_when_configured(make_client):
    client = make_client(accepted_tokens=frozenset({TOKEN}))
    assert post(client, "/v2/deployments", deploy_body()).status_code == 202
    other = {"Authorization": "token someone-else"}
    assert post(client, "/v2/deployments", deploy_body(), headers=other).status_code == 401


def test_unallocatable_deploys_are_422_with_a_request_id_and_an_error_deployment(
    make_client, small_world
):
    client = make_client(world=small_world, rate_limits=RateLimits(enabled=False))
    body = deploy_body(geo_user(0, 60), application="game", version="1.0")
    response = post(client, "/v2/deployments", body)
    assert response.status_code == 422
    assert_conforms("/deployments", "post", 422, response.json())
    fleet = post(
        client, "/v2/private-fleets/deployments", body | {"private_host_ids": ["h-pending"]}
    )
    assert fleet.status_code == 422
    assert_conforms("/private-fleets/deployments", "post", 422, fleet.json())
    status = client.get(f"/v1/status/{response.json()['request_id']}", headers=AUTH).json()
    assert status["current_status"] == "Status.ERROR"
    metrics = client.get("/_emulator/metrics").json()
    assert metrics["allocation_failures"] == {"out_of_range": 2}


def test_41st_deploy_in_a_second_is_429_with_retry_after(make_client):
    client = make_client()
    codes = [post(client, "/v2/deployments", deploy_body()).status_code for _ in range(41)]
    assert codes == [202] * 40 + [429]
    refused = post(client, "/v2/deployments", deploy_body())
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    conforms(MESSAGE_SCHEMA, refused.json())
    # The fleet endpoint has its own budget; another token of the organisation has none.
    assert (
        post(
            client, "/v2/private-fleets/deployments", deploy_body(private_host_ids=["fleet-mtl-1"])
        ).status_code
        == 202
    )
    assert (
        post(
            client, "/v2/deployments", deploy_body(), headers={"Authorization": "token b"}
        ).status_code
        == 429
    )


def test_status_is_limited_at_20_per_second(make_client):
    client = make_client()
    codes = [client.get("/v1/status/unknown", headers=AUTH).status_code for _ in range(21)]
    assert codes == [400] * 20 + [429]  # an unknown id is a 400, as the live API answers


def test_stop_and_list(make_client, small_world):
    client = make_client(world=small_world, time_scale=5, rate_limits=RateLimits(enabled=False))
    body = deploy_body(geo_user(0, 0), application="game", version="1.0")
    request_id = post(client, "/v2/deployments", body).json()["request_id"]
    listing = client.get("/v1/deployments", headers=AUTH).json()
    conforms(LIST_SCHEMA, listing)
    assert listing["total_count"] == 1
    assert listing["data"][0]["request_id"] == request_id
    early = client.delete(f"/v1/stop/{request_id}", headers=AUTH)
    assert early.status_code == 202
    conforms(MESSAGE_SCHEMA, early.json())
    wait_for_status(client, request_id, "Status.TERMINATED")
    assert client.delete(f"/v1/stop/{request_id}", headers=AUTH).status_code == 410
    assert client.delete("/v1/stop/unknown", headers=AUTH).status_code == 404
    second = post(client, "/v2/deployments", body).json()["request_id"]
    wait_for_status(client, second, "Status.READY")
    stopped = client.delete(f"/v1/stop/{second}", headers=AUTH)
    assert stopped.status_code == 200
    assert stopped.json()["deployment_summary"]["request_id"] == second
    assert client.get("/v1/deployments?page=x", headers=AUTH).status_code == 400


def wait_for_status(client, request_id, wanted, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = client.get(f"/v1/status/{request_id}", headers=AUTH).json()
        conforms(STATUS_SCHEMA, status)
        if status["current_status"] == wanted:
            return status
        time.sleep(0.01)
    raise AssertionError(f"{request_id} never reached {wanted}")


def test_time_scale_runs_a_whole_match_in_a_fraction_of_a_second(make_client, small_world):
    client = make_client(world=small_world, time_scale=200, rate_limits=RateLimits(enabled=False))
    body = deploy_body(geo_user(0, 0), application="game", version="1.0")
    request_id = post(client, "/v2/deployments", body).json()["request_id"]
    ready = wait_for_status(client, request_id, "Status.READY")
    assert ready["running"] is True
    done = wait_for_status(client, request_id, "Status.TERMINATED")
    assert done["removal_time"] is not None
    assert done["elapsed_time"] == 10  # from READY (after 1 s of boot) to the end of a 10 s match


def test_metrics_count_responses_and_capacity_and_reset_clears_them(client):
    post(client, "/v2/deployments", deploy_body())
    post(client, "/v2/deployments", deploy_body(), headers={})
    metrics = client.get("/_emulator/metrics").json()
    assert metrics["responses"]["POST /v2/deployments"] == {"202": 1, "401": 1}
    assert metrics["active_deployments"]["by_location"] == {"Montreal": 1}
    assert metrics["service_time_ms"]["window"] == 2
    assert set(metrics["service_time_ms"]) >= {"p50", "p90", "p95", "p99", "max"}
    assert client.post("/_emulator/reset").status_code == 200
    metrics = client.get("/_emulator/metrics").json()
    assert metrics["responses"] == {}
    assert metrics["active_deployments"]["total"] == 0


def test_injected_errors_and_latency(make_client):
    client = make_client(faults=Faults(error_share=1.0), rate_limits=RateLimits(enabled=False))
    response = post(client, "/v2/deployments", deploy_body())
    assert response.status_code == 500
    assert_conforms("/deployments", "post", 500, response.json())
    client.post(
        "/_emulator/faults",
        json={"error_share": 0, "latency_ms": {"distribution": "fixed", "value": 50}},
    )
    latency = client.get("/_emulator/faults").json()["latency_ms"]
    assert latency == {"distribution": "fixed", "value": 50.0}
    started = time.perf_counter()
    assert post(client, "/v2/deployments", deploy_body()).status_code == 202
    assert time.perf_counter() - started >= 0.05
    bad = client.post("/_emulator/faults", json={"error_share": 2})
    assert bad.status_code == 400
    assert "error_share" in bad.json()["message"]


def test_unknown_routes_and_methods_answer_json(client):
    missing = client.get("/v2/nothing", headers=AUTH)
    assert (missing.status_code, missing.json()) == (404, {"message": "Not Found"})
    wrong = client.get("/v2/deployments", headers=AUTH)
    assert (wrong.status_code, wrong.json()) == (405, {"message": "Method Not Allowed"})


def test_a_tokens_file_names_each_tokens_organisation(tmp_path):
    from edgebench._emulator_cli import read_tokens
    from emulator import ConfigError

    tokens = tmp_path / "tokens.txt"
    tokens.write_text("alpha studio-a\nbeta studio-a\n\ngamma\n")
    assert read_tokens(tokens) == {"alpha": "studio-a", "beta": "studio-a", "gamma": "default"}
    tokens.write_text("alpha studio a\n")
    with pytest.raises(ConfigError, match="line 1 has 3 words"):
        read_tokens(tokens)


def test_prometheus_metrics_count_what_the_emulator_did(make_client, small_world):
    from prometheus_client.parser import text_string_to_metric_families

    client = make_client(world=small_world, rate_limits=RateLimits(enabled=False))
    app = {"application": "game", "version": "1.0"}
    served = post(client, "/v2/deployments", deploy_body(geo_user(0, 1), **app))
    refused = post(client, "/v2/deployments", deploy_body(geo_user(0, 60), **app))
    assert (served.status_code, refused.status_code) == (202, 422)
    client.get("/v1/status/nope", headers=AUTH)
    page = client.get("/metrics")
    assert page.headers["content-type"].startswith("text/plain; version=")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(page.text)
        for s in family.samples
    }
    requests = {k: v for k, v in samples.items() if k[0] == "edgebench_emulator_requests_total"}
    as_json = client.get("/_emulator/metrics").json()["responses"]
    assert {(dict(k[1])["route"], dict(k[1])["status"]): v for k, v in requests.items()} == {
        (route, status): count
        for route, codes in as_json.items()
        for status, count in codes.items()
    }
    active = {dict(k[1])["location"]: v for k, v in samples.items() if "active" in k[0]}
    assert sum(active.values()) == 1
    failures = samples[
        ("edgebench_emulator_allocation_failures_total", (("cause", "out_of_range"),))
    ]
    assert failures == 1
    assert samples[("edgebench_emulator_service_seconds_count", ())] == 3
