"""Fleets as studios run them, where deployments went, and what a run cost.

A world's host entry can stand for `count` identical hosts; a region names its own hosts
(or a fleet of the world), tried for its matches before the cloud; each accepted deploy's
record says where it went; a run given prices says what it cost, checked by hand here.
"""

import math

import orjson
import pytest
from click.testing import CliRunner

from analysis.thresholds import metrics
from checks import ThresholdError, parse_one
from edgebench._errors import ScenarioError
from edgebench.cli import main
from edgebench.plan.overrides import Overrides, planned
from edgebench.plan.payloads import FLEET_DEPLOY, PayloadPlan
from edgebench.plan.scenario import load_scenario
from edgebench.records import read_records
from emulator import ConfigError, Distribution
from emulator._world import load_world, parse_world

WORLD_HEAD = """
[lifecycle]
lifetime_s = { distribution = "fixed", value = 60 }
[[applications]]
name = "my-game"
versions = ["1.0.0"]
vcpu = 0.5
memory_gb = 2
[[locations]]
city = "Montreal"
country = "CA"
latitude = 45.5
longitude = -73.57
capacity = 500
[[locations]]
city = "Frankfurt"
country = "DE"
latitude = 50.11
longitude = 8.68
capacity = 500
"""
HOSTS = """
[[private_hosts]]
id = "mtl"
fleet = "fleet-na"
location = "Montreal"
capacity = 2
count = 3
[[private_hosts]]
id = "fra"
fleet = "fleet-eu"
location = "Frankfurt"
capacity = 2
count = 2
"""

SCENARIO = """
name = "two-fleets"
seed = 4
[target]
application = "my-game"
version = "1.0.0"
world = "world.toml"
[mix]
deploy = 0
fleet_deploy = 1
[rate]
mode = "respect"
stages = [{{ kind = "hold", duration = "20s", rate = 4 }}]
[[regions]]
name = "quebec"
cities = [{{ name = "Montreal", country = "CA", latitude = 45.5, longitude = -73.57 }}]
ip_share = 0.0
{quebec}
[[regions]]
name = "germany"
cities = [{{ name = "Frankfurt", country = "DE", latitude = 50.11, longitude = 8.68 }}]
ip_share = 0.0
{germany}
{costs}
"""
COSTS = """
[costs]
note = "example prices"
cloud_vcpu_hour = 0.1
cloud_gb_hour = 0.01
egress_player_hour = 0.002
private = { fleet-na = { per_month = 73 }, fleet-eu = { per_hour = 0.5 } }
"""


def two_fleets(tmp_path, quebec='private_fleet = "fleet-na"', germany='private_fleet = "fleet-eu"',
               costs=""):  # fmt: skip
    (tmp_path / "world.toml").write_text(WORLD_HEAD + HOSTS)
    path = tmp_path / "two-fleets.toml"
    path.write_text(SCENARIO.format(quebec=quebec, germany=germany, costs=costs))
    return path


def test_a_host_entry_with_a_count_is_that_many_numbered_hosts():
    world = parse_world(orjson.loads(orjson.dumps(_toml(WORLD_HEAD + HOSTS))))
    assert list(world.private_hosts) == ["mtl-1", "mtl-2", "mtl-3", "fra-1", "fra-2"]
    assert world.fleet_hosts("fleet-eu") == ["fra-1", "fra-2"]
    assert world.resources == {"my-game": (0.5, 2.0)}
    for bad, key in (("count = 0", "count"), ('count = "2"', "count")):
        with pytest.raises(ConfigError) as caught:
            parse_world(_toml(WORLD_HEAD + HOSTS.replace("count = 2", bad)))
        assert f"private_hosts[1].{key}" in str(caught.value)
    with pytest.raises(ConfigError, match=r"applications\[0\].vcpu"):
        parse_world(_toml(WORLD_HEAD.replace("memory_gb = 2", "") + HOSTS))


def _toml(text: str) -> dict:
    import tomllib

    return tomllib.loads(text)


def test_a_region_names_its_fleet_and_its_fleet_deploys_name_its_hosts(tmp_path):
    scenario = load_scenario(two_fleets(tmp_path))
    assert scenario.fleet_host_ids("quebec") == ["mtl-1", "mtl-2", "mtl-3"]
    assert scenario.fleet_host_ids("germany") == ["fra-1", "fra-2"]
    plan = PayloadPlan(scenario)
    for index in range(40):
        request = plan.request(index)
        assert request.endpoint == FLEET_DEPLOY
        assert request.body["private_host_ids"] == scenario.fleet_host_ids(request.region)
    # The simulator's block form names the same kinds as one party at a time.
    import numpy as np

    block = plan.party_blocks(np.arange(40), np.zeros(40))
    assert block.kinds == [plan.party(k).kind for k in range(40)]
    assert {"fleet:quebec", "fleet:germany"} == set(block.kinds)


@pytest.mark.parametrize(
    ("quebec", "germany", "expected"),
    [
        (
            'private_fleet = "fleet-asia"',
            'private_fleet = "fleet-eu"',
            "regions[0].private_fleet: ",
        ),
        (
            'private_fleet = "fleet-na"\nprivate_host_ids = ["mtl-1"]',
            'private_fleet = "fleet-eu"',
            "not both",
        ),
        ("", "", "mix.fleet_deploy needs private_host_ids"),
    ],
)
def test_fleets_named_wrong_are_one_line_errors(tmp_path, quebec, germany, expected):
    with pytest.raises(ScenarioError) as caught:
        load_scenario(two_fleets(tmp_path, quebec, germany))
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value).strip()


def test_another_world_gives_a_fleet_other_hosts_and_another_inputs_digest(tmp_path):
    path = two_fleets(tmp_path)
    other = tmp_path / "other.toml"
    other.write_text(WORLD_HEAD + HOSTS.replace("count = 2", "count = 4"))
    mine, theirs = planned(path, Overrides()), planned(path, Overrides(world=other))
    assert theirs.fleet_host_ids("germany") == ["fra-1", "fra-2", "fra-3", "fra-4"]
    assert mine.inputs_digest != theirs.inputs_digest  # a worker with the other world refuses


def simulated(tmp_path, scenario, *options) -> dict:
    folder = tmp_path / f"sim{len(list(tmp_path.glob('sim*')))}"
    args = ["simulate", str(scenario), "--no-plots", "--results-dir", str(folder), *options]
    done = CliRunner().invoke(main, args)
    assert done.exit_code in (0, 1), done.output
    return orjson.loads((folder / "summary.json").read_bytes()) | {"_folder": folder}


def test_each_region_fills_its_own_hosts_first_and_the_records_say_where(tmp_path):
    summary = simulated(tmp_path, two_fleets(tmp_path))
    records = [
        record
        for path in summary["_folder"].glob("requests-*.arrow")
        for record in read_records(path)[0]
    ]
    own = {"quebec": "mtl-", "germany": "fra-"}
    for record in records:
        assert record["outcome"] == "accepted"
        assert record["host"] == "cloud" or record["host"].startswith(own[record["region"]])
    placed = summary["placement"]["by_region"]
    # 6 and 4 slots held for 60 s: in 20 s each region fills its own, then overflows.
    assert placed["quebec"]["private"] == 6
    assert placed["germany"]["private"] == 4
    for region, slots in (("quebec", 6), ("germany", 4)):
        counts = placed[region]
        assert counts["cloud"] == counts["accepted"] - slots
        assert counts["share_overflow"] == pytest.approx(counts["cloud"] / counts["accepted"])
    values = metrics(summary)
    assert values["share_overflow:germany"] == placed["germany"]["share_overflow"]
    assert values["share_overflow"] == pytest.approx(summary["fleet"]["overflow_share"])
    assert parse_one("share_overflow:germany < 0.5").metric == "share_overflow:germany"
    with pytest.raises(ThresholdError, match="of the whole run"):
        parse_one("p95_ms:germany < 5")


def test_a_priced_run_says_what_it_cost_as_worked_by_hand(tmp_path):
    summary = simulated(tmp_path, two_fleets(tmp_path, costs=COSTS))
    cost, placed = summary["cost"], summary["placement"]["whole_run"]
    hours_each = 60 / 3600  # the world's fixed match length
    cloud = placed["cloud"] * hours_each * (0.5 * 0.1 + 2 * 0.01)
    private = (3 * 73 / 730 + 2 * 0.5) * summary["duration_s"] / 3600
    egress = 0.002 * hours_each * _players_served(summary["_folder"])
    assert cost["cloud"] == pytest.approx(cloud, abs=1e-4)
    assert cost["private"] == pytest.approx(private, abs=1e-4)
    assert cost["egress"] == pytest.approx(egress, abs=1e-4)
    assert cost["total"] == pytest.approx(cloud + private + egress, abs=1e-3)
    assert cost["per_day"] == pytest.approx(cost["total"] * 86400 / summary["duration_s"], rel=1e-3)
    assert cost["per_match"] == pytest.approx(
        cost["total"] / summary["matches"]["served"], rel=1e-3
    )
    assert cost["note"] == "example prices"
    assert metrics(summary)["cost_per_day"] == cost["per_day"]


def _players_served(folder) -> int:
    return sum(
        record["players"]
        for path in folder.glob("requests-*.arrow")
        for record in read_records(path)[0]
        if record["outcome"] == "accepted"
    )


def test_prices_from_a_file_and_prices_the_world_cannot_bill(tmp_path):
    scenario = two_fleets(tmp_path)
    assert "cost" not in str(simulated(tmp_path, scenario).get("cost") or "")  # no prices: none
    prices = tmp_path / "prices.toml"
    prices.write_text(COSTS)
    summary = simulated(tmp_path, scenario, "--costs", str(prices), "--duration", "5s")
    assert summary["cost"]["total"] > 0
    prices.write_text(COSTS.replace("fleet-eu", "fleet-asia"))
    done = CliRunner().invoke(main, ["simulate", str(scenario), "--costs", str(prices)])
    assert done.exit_code == 2
    assert "costs.private.fleet-asia: no fleet of that name" in done.output
    prices.write_text("[costs]\ncloud_vcpu_hour = -1\n")
    done = CliRunner().invoke(main, ["simulate", str(scenario), "--costs", str(prices)])
    assert done.exit_code == 2
    assert "costs.cloud_vcpu_hour" in done.output


def test_the_shipped_launch_fleet_prices_three_fleets_and_says_they_are_examples():
    scenario = load_scenario("scenarios/launch-fleet.toml")
    assert scenario.costs is not None
    assert scenario.costs.note == "example prices"
    assert [r.private_fleet for r in scenario.regions] == ["fleet-na", "fleet-eu", "fleet-asia"]
    assert all(len(r.hosts) > 1 for r in scenario.regions)
    assert scenario.demand is not None
    assert scenario.demand.origin
    world = load_world(scenario.world_file)
    assert world.lifecycle.lifetime_s.describe() == scenario.match_lifetime
    assert math.isclose(Distribution.lognormal(720, 0.3).survival(720), 0.5)


def test_the_plan_sizes_each_regions_fleet_by_erlang_b(tmp_path):
    scenario = two_fleets(tmp_path)
    done = CliRunner().invoke(main, ["scenario", "plan", str(scenario), "--overflow", "10%"])
    assert done.exit_code == 0, done.output
    assert "Erlang B" in done.output
    assert "approximation" in done.output
    assert "quebec:" in done.output
    assert "germany:" in done.output
    bad = CliRunner().invoke(main, ["scenario", "plan", str(scenario), "--overflow", "150%"])
    assert bad.exit_code == 2
    assert "--overflow '150%': not a share" in bad.output


def test_unknown_hosts_are_named_before_a_simulation_whose_fleet_deploys_get_400s(tmp_path):
    scenario = two_fleets(tmp_path, 'private_host_ids = ["mtl-9"]')
    folder = tmp_path / "sim"
    args = ["simulate", str(scenario), "--no-plots", "--warm-start", "--results-dir", str(folder)]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    assert "regions[0].private_host_ids: 'mtl-9' is not a host of" in done.output
    summary = orjson.loads((folder / "summary.json").read_bytes())
    assert summary["by_region"]["quebec"]["shares_of_sent"]["bad_request"] == 1.0
    assert summary["by_region"]["germany"]["shares_of_sent"]["accepted"] == 1.0


STUDIO_WORLD = """
# A studio's world in a few lines: the shipped one, its two fleets, a cloud that never runs out.
[cloud]
unlimited = true
[[private_hosts]]
id = "fra"
fleet = "fleet-fra"
location = "Frankfurt"
capacity = 4
count = 40
[[private_hosts]]
id = "ash"
fleet = "fleet-ash"
location = "Ashburn"
capacity = 4
count = 3
"""


def test_a_world_names_what_it_adds_to_the_shipped_one(tmp_path):
    from emulator import load_world as load
    from emulator import world_table

    shipped = load()
    path = tmp_path / "studio.toml"
    path.write_text(STUDIO_WORLD)
    world = load(path)
    assert [loc.city for loc in world.locations] == [loc.city for loc in shipped.locations]
    assert {loc.capacity for loc in world.locations} == {10**9}
    assert len(world.fleet_hosts("fleet-fra")) == 40
    assert world.fleet_hosts("fleet-sgp") == shipped.fleet_hosts("fleet-sgp")  # kept
    assert world.lifecycle == shipped.lifecycle
    table = world_table(path)
    assert "extends" not in table  # self-contained: what a probe writes whole
    assert "cloud" not in table
    assert parse_world(table).private_hosts == world.private_hosts
    # A fleet it names replaces the base's hosts of that fleet; a factor scales the cloud.
    again = tmp_path / "again.toml"
    again.write_text(
        'extends = "studio.toml"\n[cloud]\ncapacity_factor = 0.5\n[lifecycle]\nterminate_s = 2\n'
        '[[private_hosts]]\nid = "f"\nfleet = "fleet-fra"\nlocation = "Frankfurt"\ncapacity = 1\n'
    )
    second = load(again)
    assert second.fleet_hosts("fleet-fra") == ["f"]
    assert len(second.fleet_hosts("fleet-ash")) == 3
    assert {loc.capacity for loc in second.locations} == {5 * 10**8}
    assert second.lifecycle.terminate_s.describe() != shipped.lifecycle.terminate_s.describe()
    assert second.lifecycle.boot_s == shipped.lifecycle.boot_s
    assert second.sha256 != world.sha256
    path.write_text(STUDIO_WORLD + "[lifecycle]\nterminate_s = 3\n")
    assert load(again).sha256 != second.sha256  # the base's bytes count too


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('extends = "nowhere.toml"', "extends: 'nowhere.toml' not found"),
        ('extends = "loop.toml"', "extends itself in a loop"),
        ("[cloud]\nunlimited = true\ncapacity_factor = 2", "cloud.capacity_factor"),
        ("[cloud]\nbigger = true", "cloud.bigger: unknown key"),
    ],
)
def test_a_world_that_extends_badly_is_a_one_line_error(tmp_path, text, expected):
    path = tmp_path / "loop.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_world(path)
    assert expected in str(caught.value)
    assert str(path) in str(caught.value)


def test_a_region_without_a_fleet_in_a_fleet_scenario_deploys_to_the_cloud(tmp_path):
    import numpy as np

    from edgebench.plan.payloads import DEPLOY

    scenario = load_scenario(two_fleets(tmp_path, germany=""))
    assert scenario.endpoint_shares == (0.5, 0.5)  # the regions weigh the same
    plan = PayloadPlan(scenario)
    requests = [plan.request(index) for index in range(60)]
    for request in requests:
        fleet = request.region == "quebec"
        assert request.endpoint == (FLEET_DEPLOY if fleet else DEPLOY)
        assert ("private_host_ids" in request.body) == fleet
    block = plan.party_blocks(np.arange(60), np.zeros(60))
    assert block.endpoints == [request.endpoint for request in requests]
    summary = simulated(tmp_path, two_fleets(tmp_path, germany=""))
    placed = summary["placement"]["by_region"]
    assert placed["quebec"]["private"] == 6
    assert "germany" not in placed or not placed["germany"].get("private")


def test_world_stands_in_for_a_missing_world_and_supplies_the_fleet(tmp_path):
    # The scenario names a fleet its own world (the shipped one) lacks, or a world not there.
    path = two_fleets(tmp_path)
    (tmp_path / "world.toml").unlink()
    with pytest.raises(ScenarioError, match=r"target\.world: 'world\.toml' not found"):
        load_scenario(path)
    studio = tmp_path / "studio.toml"
    studio.write_text(WORLD_HEAD + HOSTS)
    scenario = planned(path, Overrides(world=studio))
    assert scenario.fleet_host_ids("germany") == ["fra-1", "fra-2"]
    path.write_text(path.read_text().replace('world = "world.toml"\n', ""))
    with pytest.raises(ScenarioError, match="has no host of fleet 'fleet-na'"):
        load_scenario(path)
    assert planned(path, Overrides(world=studio)).fleet_host_ids("quebec")[0] == "mtl-1"


def test_overrides_and_knobs_pass_the_whole_scenarios_checks(tmp_path):
    from edgebench.plan.overrides import with_limit, with_rate, with_world
    from edgebench.plan.scenario import Scenario

    scenario = planned(two_fleets(tmp_path), Overrides(limit=12, rate_factor="2"))
    assert (scenario.rate.limit, scenario.rate.factor) == (12, 2.0)
    # A resolved fleet is checked again as it is: a probe's knob keeps every check.
    assert Scenario.model_validate(dict(scenario)) == scenario
    other = tmp_path / "other.toml"
    other.write_text(WORLD_HEAD + HOSTS.replace("count = 2", "count = 5"))
    probe = with_rate(with_limit(with_world(scenario, other), 30), "exceed")
    assert len(probe.fleet_host_ids("germany")) == 5
    assert (probe.rate.limit, probe.rate.mode, probe.rate.factor) == (30, "exceed", 2.0)
    # A world given on the command line is held to the scenario's fleets as its own is.
    bare = tmp_path / "bare.toml"
    bare.write_text(WORLD_HEAD + "[[private_hosts]]" + HOSTS.split("[[private_hosts]]")[1])
    with pytest.raises(ScenarioError, match="has no host of fleet 'fleet-eu'"):
        planned(two_fleets(tmp_path), Overrides(world=bare))
