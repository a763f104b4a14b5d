import itertools
import random
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import pytest

from edgebench._errors import ScenarioError
from edgebench.plan.draws import unit_draw_blocks, unit_draws, unit_draws_matrix
from edgebench.plan.payloads import FLEET_DEPLOY, PayloadPlan
from edgebench.plan.players import CountryBlocks, PlayerFactory, scatter
from edgebench.plan.scenario import load_scenario
from edgebench.plan.schedule import Schedule
from edgebench.simulate.batch import BatchParties
from emulator import locate_user
from geo import Position, centre, great_circle_km, ip_country, is_public_address


@pytest.mark.parametrize("code", ["BR", "US", "DE", "JP", "NG", "AU", "IN", "KR"])
def test_generated_addresses_are_public_and_geolocate_to_their_country(code):
    blocks, rng = CountryBlocks.of(code), random.Random(7)
    addresses = [blocks.address(rng.random) for _ in range(300)]
    assert all(is_public_address(a) and ip_country(a) == code for a in addresses)
    assert len(set(addresses)) > 290


def test_scatter_stays_within_the_jitter_radius():
    rng, montreal = random.Random(3), Position(45.5, -73.6)
    points = [scatter(montreal, 50, rng.random) for _ in range(1000)]
    distances = [great_circle_km(montreal, p) for p in points]
    assert max(distances) <= 50.01
    assert sum(d < 25 for d in distances) / len(distances) == pytest.approx(0.25, abs=0.05)
    assert scatter(Position(0, 179.99), 100, random.Random(1).random).longitude >= -180


@pytest.fixture
def smoke():
    return load_scenario("scenarios/smoke.toml")


def test_regions_and_party_sizes_follow_their_weights(smoke):
    factory, rng = PlayerFactory(smoke), random.Random(11)
    parties = [factory.party(rng.random) for _ in range(5000)]
    regions = Counter(region for region, _ in parties)
    sizes = Counter(len(users) for _, users in parties)
    assert regions["north-america"] / 5000 == pytest.approx(0.4, abs=0.03)
    assert regions["asia"] / 5000 == pytest.approx(0.2, abs=0.03)
    assert sizes[2] / 5000 == pytest.approx(0.5, abs=0.03)


def test_ip_users_of_a_region_come_from_its_countries(smoke):
    factory, rng = PlayerFactory(smoke), random.Random(5)
    europe = next(r for r in factory.regions if r.region.name == "europe")
    users = [europe.user(rng.random) for _ in range(2000)]
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


def test_players_come_back_from_a_population_of_distinct_players(smoke):
    players = smoke.players.model_copy(update={"population": 40})
    scenario = smoke.model_copy(update={"players": players})
    plan = PayloadPlan(scenario)
    bodies = [plan.request(k).body for k in range(3000)]
    parties = [[orjson.dumps(user) for user in body["users"]] for body in bodies]
    assert all(len(set(party)) == len(party) for party in parties)  # nobody plays twice at once
    players = Counter(player for party in parties for player in party)
    regions = len(scenario.regions)
    assert len(players) <= 40 * regions
    assert min(players.values()) > 5  # each keeps coming back


def test_a_player_is_the_same_whichever_request_draws_it_first(smoke):
    first, second = PlayerFactory(smoke), PlayerFactory(smoke)
    region_first, region_second = first.regions[1], second.regions[1]
    slots = [7, 3, 9999, 7]
    drawn_first = [region_first.player(slot) for slot in slots]
    drawn_backwards = [region_second.player(slot) for slot in reversed(slots)]
    assert drawn_first == drawn_backwards[::-1]
    assert region_first.player(7) != region_first.player(8)
    assert first.regions[0].player(7) != region_first.player(7)


def test_a_population_smaller_than_the_largest_party_is_refused(tmp_path):
    smoke_text = Path("scenarios/smoke.toml").read_text()
    text = smoke_text.replace("[players]", "[players]\npopulation = 2", 1)
    path = tmp_path / "small.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert "small.toml: players: population 2 is smaller than the largest party" in str(
        caught.value
    )
    assert "give population at least 4" in str(caught.value)


def test_draws_are_even_along_a_stream_and_across_keys():
    along = unit_draws(5, 0)
    one_stream = [next(along) for _ in range(20_000)]
    first_of_each_key = [next(unit_draws(5, key)) for key in range(20_000)]
    for draws in (one_stream, first_of_each_key):
        bins = Counter(int(d * 10) for d in draws)
        assert all(abs(bins[b] - 2000) < 200 for b in range(10))
        assert all(0 <= d < 1 for d in draws)


@pytest.mark.parametrize(
    ("path", "count"),
    [
        ("scenarios/launch-forecast.toml", 2000),  # regions that move with the forecast
        ("scenarios/fleet-overflow.toml", 600),  # fleet deploys beside cloud ones
        ("scenarios/capacity-step.toml", 600),  # a city and countries, IPs and coordinates
    ],
)
def test_parties_drawn_in_bulk_are_the_plans_own(path, count):
    scenario = load_scenario(Path(path))
    plan = PayloadPlan(scenario)
    arrivals = list(itertools.islice(Schedule.from_scenario(scenario).arrivals(), count))
    indices = np.array([a.index for a in arrivals])
    bulk = BatchParties(plan).parties(indices, np.array([a.due_s for a in arrivals]))
    for arrival, drawn in zip(arrivals, bulk, strict=True):
        party = plan.party(arrival.index, arrival.due_s)
        assert (drawn.endpoint, drawn.region, drawn.players, drawn.kind) == (
            party.endpoint, party.region, len(party.users), party.kind
        )  # fmt: skip
        located = [locate_user(orjson.loads(user)) for user in party.users]
        expected = centre([position for position in located if position is not None])
        assert drawn.centre == pytest.approx(expected, abs=1e-9)


def test_bulk_draws_are_the_streams_own():
    keys = np.array([0, 1, 7, 123_456_789])
    matrix = unit_draws_matrix(42, keys, 5)
    for row, key in enumerate(keys.tolist()):
        assert matrix[row].tolist() == list(itertools.islice(unit_draws(42, key), 5))


def test_a_stream_in_blocks_is_the_stream_itself():
    blocks = unit_draw_blocks(42, 9, 4)
    first_ten = list(itertools.chain.from_iterable(next(blocks).tolist() for _ in range(3)))[:10]
    assert first_ten == list(itertools.islice(unit_draws(42, 9), 10))
