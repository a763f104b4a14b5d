import random
from collections import Counter

import pytest

from edgebench.payloads import FLEET_DEPLOY, PayloadPlan
from edgebench.players import CountryBlocks, PlayerFactory, scatter
from edgebench.scenario import load_scenario
from emulator.geo import Position, great_circle_km, ip_country, is_public_address


@pytest.mark.parametrize("code", ["BR", "US", "DE", "JP", "NG", "AU", "IN", "KR"])
def test_generated_addresses_are_public_and_geolocate_to_their_country(code):
    blocks, rng = CountryBlocks.of(code), random.Random(7)
    addresses = [blocks.address(rng) for _ in range(300)]
    assert all(is_public_address(a) and ip_country(a) == code for a in addresses)
    assert len(set(addresses)) > 290


def test_scatter_stays_within_the_jitter_radius():
    rng, montreal = random.Random(3), Position(45.5, -73.6)
    points = [scatter(montreal, 50, rng) for _ in range(1000)]
    distances = [great_circle_km(montreal, p) for p in points]
    assert max(distances) <= 50.01
    assert sum(d < 25 for d in distances) / len(distances) == pytest.approx(0.25, abs=0.05)
    assert scatter(Position(0, 179.99), 100, random.Random(1)).longitude >= -180


@pytest.fixture
def smoke():
    return load_scenario("scenarios/smoke.toml")


def test_regions_and_party_sizes_follow_their_weights(smoke):
    factory, rng = PlayerFactory(smoke), random.Random(11)
    parties = [factory.party(rng) for _ in range(5000)]
    regions = Counter(region for region, _ in parties)
    sizes = Counter(len(users) for _, users in parties)
    assert regions["north-america"] / 5000 == pytest.approx(0.4, abs=0.03)
    assert regions["asia"] / 5000 == pytest.approx(0.2, abs=0.03)
    assert sizes[2] / 5000 == pytest.approx(0.5, abs=0.03)


def test_ip_users_of_a_region_come_from_its_countries(smoke):
    factory, rng = PlayerFactory(smoke), random.Random(5)
    europe = next(r for r in factory.regions if r.region.name == "europe")
    users = [europe.user(rng) for _ in range(2000)]
    ips = [u["user_data"]["ip_address"] for u in users if u["user_type"] == "ip_address"]
    assert len(ips) / len(users) == pytest.approx(0.7, abs=0.04)
    assert {ip_country(ip) for ip in ips} == {"DE", "FR", "GB"}


def test_arrival_k_is_the_same_request_whoever_sends_it(smoke):
    first, second = PayloadPlan(smoke), PayloadPlan(smoke)
    assert [first.request(k).body for k in range(50)] == [second.request(k).body for k in range(50)]
    assert first.request(3).body != first.request(4).body


def test_bodies_carry_the_mix_tags_webhooks_and_variables(smoke):
    plan = PayloadPlan(smoke, webhook_base="http://127.0.0.1:9999", run_tag="run-1")
    requests = [plan.request(k) for k in range(2000)]
    fleet = [r for r in requests if r.endpoint == FLEET_DEPLOY]
    assert len(fleet) / 2000 == pytest.approx(0.2, abs=0.03)
    assert all(r.body["private_host_ids"] == ["fleet-mtl-1", "fleet-fra-1"] for r in fleet)
    cached = sum(r.body.get("require_cached_locations", False) for r in requests)
    assert cached / 1600 == pytest.approx(0.1, abs=0.03)
    body = requests[0].body
    assert body["tags"] == ["edgebench", "smoke", "run-1"]
    assert body["webhook_on_ready"] == {"url": "http://127.0.0.1:9999/run-1/ready"}
    assert [v["is_hidden"] for v in body["environment_variables"]] == [False, True]
    assert requests[0].players == len(body["users"])
