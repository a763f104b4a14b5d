import tomllib

import pytest

from emulator import ConfigError, load_world
from emulator._distributions import Distribution, parse_distribution
from emulator._world import parse_world

from .conftest import SMALL_WORLD


def test_default_world_has_25_real_cities_on_every_inhabited_continent():
    world = load_world()
    assert len(world.locations) >= 25
    continents = {loc.continent for loc in world.locations}
    assert {"Americas", "Europe", "Africa", "Asia", "Oceania"} <= continents
    assert {"South America"} <= {_subcontinent(loc) for loc in world.locations}
    assert world.knows("my-game", "1.0.0")
    assert not world.knows("my-game", "9.9.9")
    assert {h.status for h in world.private_hosts.values()} == {"ACTIVE", "PENDING"}


def _subcontinent(loc):
    return "South America" if loc.continent == "Americas" and loc.position.latitude < 0 else ""


def test_small_world_reads_every_key(small_world):
    alpha = small_world.locations[0]
    assert (alpha.city, alpha.country, alpha.capacity, alpha.cached) == ("Alpha", "GH", 2, True)
    assert small_world.private_hosts["h-pending"].location.city == "Beta"
    assert small_world.lifecycle.boot_s == Distribution.fixed(2.0)
    assert small_world.max_distance_km == 3000


BAD_WORLDS = [
    ("locations = 3", "locations", "array of tables"),
    ("locations = []\n[[applications]]\nname='a'\nversions=['1']", "locations", "add at least one"),
    ("speed = 1", "speed", "unknown key"),
    (
        "[[locations]]\ncity='X'\ncountry='ZZ'\nlatitude=0\nlongitude=0\ncapacity=1",
        "country",
        "alpha-2",
    ),
    (
        "[[locations]]\ncity='X'\ncountry='FR'\nlatitude=91\nlongitude=0\ncapacity=1",
        "latitude",
        "[-90, 90]",
    ),
    (
        "[[locations]]\ncity='X'\ncountry='FR'\nlatitude=0\nlongitude=0\ncapacity=-1",
        "capacity",
        "negative",
    ),
    (
        "[[locations]]\ncity='X'\ncountry='FR'\nlatitude='0'\nlongitude=0\ncapacity=1",
        "latitude",
        "number",
    ),
    (
        "[[locations]]\ncity='X'\ncountry='FR'\nlatitude=0\nlongitude=0\ncapacity=true",
        "capacity",
        "whole",
    ),
]


@pytest.mark.parametrize(("text", "key", "hint"), BAD_WORLDS)
def test_bad_worlds_name_the_key_and_the_fix(tmp_path, text, key, hint):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_world(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert key in message
    assert hint in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ({"location": "Nowhere"}, "private_hosts[2].location: no location named 'Nowhere'"),
        ({"location": "Alpha", "status": "BROKEN"}, "private_hosts[2].status: unknown status"),
        ({"location": "Alpha", "id": "h-alpha"}, "private_hosts[2].id: 'h-alpha' appears twice"),
    ],
)
def test_bad_references_and_duplicates_are_reported(host, expected):
    raw = tomllib.loads(SMALL_WORLD)
    raw["private_hosts"].append({"id": "x", "capacity": 1} | host)
    with pytest.raises(ConfigError) as caught:
        parse_world(raw)
    assert str(caught.value).startswith(expected)


def test_toml_syntax_errors_and_missing_files_are_config_errors(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[[locations]\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_world(path)
    with pytest.raises(ConfigError, match="not found"):
        load_world(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2, Distribution.fixed(2.0)),
        ({"distribution": "uniform", "low": 1, "high": 3}, Distribution.uniform(1, 3)),
        (
            {"distribution": "lognormal", "median": 3, "sigma": 0.2},
            Distribution.lognormal(3, 0.2),
        ),
        ({"distribution": "exponential", "mean": 5}, Distribution.exponential(5)),
    ],
)
def test_distributions_parse(value, expected):
    assert parse_distribution(value, "x") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"distribution": "gamma"}, "unknown distribution"),
        ({"distribution": "uniform", "low": 3, "high": 1}, "below low"),
        ({"distribution": "fixed"}, "is missing"),
        ({"distribution": "fixed", "value": -1}, "negative"),
        ({"distribution": "fixed", "value": 1, "mean": 2}, "unknown key"),
        ("soon", "number or a table"),
    ],
)
def test_bad_distributions_explain_themselves(value, message):
    with pytest.raises(ConfigError, match=message):
        parse_distribution(value, "lifecycle.boot_s")


def test_distributions_draw_deterministically_under_a_seed():
    import random

    dist = Distribution.lognormal(3.0, 0.25)
    first = [dist.sample(random.Random(4)) for _ in range(3)]
    assert first == [dist.sample(random.Random(4)) for _ in range(3)]
    samples = sorted(dist.sample(random.Random(i)) for i in range(2001))
    assert samples[1000] == pytest.approx(3.0, rel=0.05)


def test_the_assumptions_say_a_default_is_a_default_and_a_match_length_the_scenarios(tmp_path):
    path = tmp_path / "plain.toml"
    path.write_text(
        '[lifecycle]\nboot_s = 2.0\n[[applications]]\nname = "g"\nversions = ["1"]\n'
        '[[locations]]\ncity = "Paris"\ncountry = "FR"\nlatitude = 48.9\nlongitude = 2.3\n'
        "capacity = 10\n"
    )
    world = load_world(path).with_lifetime(Distribution.fixed(600.0))
    said = {row["key"]: row["source"] for row in world.assumptions()}
    assert said["lifecycle.boot_s"] == f"set in {path}"
    assert said["limits.algorithm"] == f"the emulator's default ({path} does not set it)"
    assert said["api.latency_ms"] == f"the emulator's default ({path} does not set it)"
    assert said["lifecycle.lifetime_s"] == "the scenario's demand.match_length"


def test_advice_tables_print_costs_as_plain_numbers():
    from analysis.advice import _cell

    assert _cell(10820.5) == "10,820.50"
    assert _cell(612.0) == "612"
    assert _cell(0.049281) == "0.04928"
